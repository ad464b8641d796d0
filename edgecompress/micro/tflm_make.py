"""Ask TFLM's own makefile how it builds for a Cortex-M core: compiler flags, include paths and
the source lists of the interpreter, its kernels and CMSIS-NN.

Reading these from `tensorflow/lite/micro/tools/make/Makefile` (the same lists TFLM's
`create_tflm_tree.py` project generator reads) keeps the build in step with whatever TFLM
revision the tree holds; a hand-kept list of sources would rot with the next TFLM release.
The answer is cached next to the tree, per (core, kernels).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from edgecompress.errors import ToolError
from edgecompress.micro.tflm_tree import MAKE_DIR, TflmTree

KERNELS = ("cmsis_nn", "reference")
#: Make variables read from the makefile; the source lists are relative to the tree root.
_VARIABLES = (
    "CXXFLAGS",
    "CCFLAGS",
    "INCLUDES",
    "LDFLAGS",
    "MICROLITE_LIBS",
    "MICROLITE_CC_SRCS",
    "MICROLITE_CC_KERNEL_SRCS",
    "THIRD_PARTY_CC_SRCS",
    "THIRD_PARTY_KERNEL_CC_SRCS",
)
#: Flags of TFLM's make rules that make no sense outside them: dependency files.
_DROPPED_FLAGS = ("-MD",)
_MAKE_TIMEOUT_S = 300
_SCHEMA = 1


@dataclass(frozen=True)
class BuildRecipe:
    """How TFLM's makefile compiles for one (core, kernels): flags and the sources it may draw from."""

    tflm_arch: str
    kernels: str  # 'cmsis_nn' | 'reference'
    cxxflags: tuple[str, ...]
    cflags: tuple[str, ...]
    includes: tuple[str, ...]  # absolute -I paths
    ldflags: tuple[str, ...]
    libs: tuple[str, ...]
    framework_sources: tuple[str, ...]  # interpreter, allocators, planners, schema utils...
    kernel_sources: tuple[str, ...]  # TFLM kernels (optimized ones substituted by the makefile)
    third_party_sources: tuple[str, ...]  # CMSIS-NN's C sources (empty for reference kernels)

    @property
    def all_sources(self) -> tuple[str, ...]:
        return self.framework_sources + self.kernel_sources + self.third_party_sources

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def make_arguments(tflm_arch: str, kernels: str) -> list[str]:
    if kernels not in KERNELS:
        raise ToolError(f"Unknown kernel set '{kernels}'.", f"Use one of: {', '.join(KERNELS)}.")
    arguments = ["TARGET=cortex_m_generic", f"TARGET_ARCH={tflm_arch}", "TOOLCHAIN=gcc"]
    if kernels == "cmsis_nn":
        arguments.append("OPTIMIZED_KERNEL_DIR=cmsis_nn")
    return arguments


def build_recipe(tree: TflmTree, tflm_arch: str, kernels: str) -> BuildRecipe:
    """The makefile's answer for (core, kernels), read once and cached beside the tree."""
    cache = tree.root.parent / f"recipe-{tflm_arch}-{kernels}.json"
    if cache.is_file():
        stored = json.loads(cache.read_text())
        if stored.get("schema") == _SCHEMA and stored.get("root") == str(tree.root):
            return BuildRecipe(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored["recipe"].items()})  # type: ignore[arg-type]
    values = _query_make(tree, make_arguments(tflm_arch, kernels))
    recipe = _recipe(tree, tflm_arch, kernels, values)
    try:
        cache.write_text(json.dumps({"schema": _SCHEMA, "root": str(tree.root), "recipe": recipe.to_dict()}, indent=1))
    except OSError:
        pass  # a read-only tree (a user's checkout) still builds; it just asks make again next time
    return recipe


def _query_make(tree: TflmTree, arguments: list[str]) -> dict[str, list[str]]:
    """Print each variable on its own line through a rule injected with --eval."""
    recipe = "".join(f"\t@echo '{name}=$({name})'\n" for name in _VARIABLES)
    rule = f"edgecompress_print_variables:\n{recipe}"
    # The makefile runs python3 (specialize_files.py, generate_cc_arrays.py for the bundled
    # examples while it reads them): make ours, which has NumPy and Pillow, the one it finds.
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    command = [
        "make",
        "-s",
        "-f",
        str(MAKE_DIR / "Makefile"),
        *arguments,
        "--eval",
        rule,
        "edgecompress_print_variables",
    ]
    try:
        result = subprocess.run(
            command, cwd=tree.root, capture_output=True, text=True, timeout=_MAKE_TIMEOUT_S, env=env, check=False
        )
    except FileNotFoundError as error:
        raise ToolError(
            "GNU make is not installed; TFLM's makefile is read to learn its sources and flags.",
            "Install it: apt-get install -y make",
        ) from error
    if result.returncode != 0:
        raise ToolError(
            f"TFLM's makefile refused `{shlex.join(arguments)}` in {tree.root}: "
            f"{(result.stderr or result.stdout).strip()[-1500:]}",
            "Check that the tree is complete (edgecompress micro setup --force re-prepares it).",
        )
    values: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        name, sep, rest = line.partition("=")
        if sep and name in _VARIABLES:
            values[name] = shlex.split(rest)
    missing = [name for name in _VARIABLES if name not in values]
    if missing:
        raise ToolError(
            f"TFLM's makefile did not report {', '.join(missing)}.", "The tree may be damaged; re-prepare it."
        )
    return values


def _recipe(tree: TflmTree, tflm_arch: str, kernels: str, values: dict[str, list[str]]) -> BuildRecipe:
    def flags(name: str) -> tuple[str, ...]:
        return tuple(f for f in values[name] if f not in _DROPPED_FLAGS)

    includes = []
    for flag in values["INCLUDES"]:
        path = flag[2:] if flag.startswith("-I") else None
        if path is None or "/genfiles" in path:
            continue  # generated example headers are not part of the library
        absolute = str((tree.root / path).resolve())
        if absolute not in includes:
            includes.append(absolute)
    exists = lambda paths: tuple(p for p in paths if (tree.root / p).is_file())  # noqa: E731
    return BuildRecipe(
        tflm_arch=tflm_arch,
        kernels=kernels,
        cxxflags=flags("CXXFLAGS"),
        cflags=flags("CCFLAGS"),
        includes=tuple(includes),
        ldflags=flags("LDFLAGS"),
        libs=flags("MICROLITE_LIBS"),
        framework_sources=exists(values["MICROLITE_CC_SRCS"]),
        kernel_sources=exists(values["MICROLITE_CC_KERNEL_SRCS"]),
        third_party_sources=exists([*values["THIRD_PARTY_CC_SRCS"], *values["THIRD_PARTY_KERNEL_CC_SRCS"]]),
    )
