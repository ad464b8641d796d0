"""Compile only the TFLM sources a firmware needs, cache the objects, and link the ELF.

Building TFLM's whole `microlite` library for one core takes about 20 CPU-minutes, most of
it kernels the model never calls. Here the firmware's own units are compiled first and the
linker's question is asked directly: which symbols are still undefined? Each one is traced
to the TFLM, kernel or CMSIS-NN source that defines it (from the source lists TFLM's makefile
reports, see tflm_make), that source is compiled, and the question is asked again until
nothing is missing. Because the op resolver registers only the model's ops, only those ops'
kernels (and the CMSIS-NN functions they call) are ever compiled.

Objects are cached by (TFLM revision, core, kernels, flags, source), under
`<cache>/objects/`, so a second model for the same core compiles only its own files.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecompress.errors import ToolError
from edgecompress.micro.tflm_make import BuildRecipe
from edgecompress.micro.tflm_tree import TflmTree, cache_root
from edgecompress.micro.toolchain import arm_tool, gcc_version

#: The optimisation every unit is compiled with: microcontroller firmware is sized for flash.
OPTIMIZATION = "-Os"
ENV_JOBS = "EDGECOMPRESS_BUILD_JOBS"
_COMPILE_TIMEOUT_S = 900
_LINK_TIMEOUT_S = 300
_MAX_ROUNDS = 25
#: Runtime libraries the link pulls in after the objects; their symbols need no TFLM source.
_RUNTIME_LIBRARIES = ("libc_nano.a", "libm.a", "libgcc.a", "libstdc++_nano.a", "libsupc++_nano.a", "libnosys.a")
#: Namespaces of TFLM, CMSIS and the C++ library: a qualified name whose parent is one of these is a free function.
_NAMESPACES = {
    "tflite",
    "ops",
    "micro",
    "reference_ops",
    "reference_integer_ops",
    "optimized_ops",
    "internal",
    "testing",
    "micro_profiler",
    "tflm_signal",
    "flatbuffers",
    "gemmlowp",
    "ruy",
    "std",
    "(anonymous namespace)",
    "decode",
    "cmsis_nn",
    "tensor_utils",
    "portable_tensor_utils",
}
#: Symbols the linker script (firmware/tflm/cortex_m.ld.in) defines.
LINKER_SCRIPT_SYMBOLS = frozenset(
    {
        "__data_load",
        "__data_start",
        "__data_end",
        "__bss_start",
        "__bss_end",
        "__stack_bottom",
        "__stack_top",
        "end",
        "__exidx_start",
        "__exidx_end",
        "__preinit_array_start",
        "__preinit_array_end",
        "__init_array_start",
        "__init_array_end",
        "__fini_array_start",
        "__fini_array_end",
        "__edgecompress_arena_start",
        "__edgecompress_arena_end",
    }
)


@dataclass(frozen=True)
class Unit:
    """One compiled source and the role it plays in the firmware."""

    source: str  # path relative to the TFLM tree, or absolute for the firmware's own files
    object_path: Path
    origin: str  # 'application' | 'framework' | 'kernel' | 'third-party'
    cached: bool
    defined: frozenset[str]
    undefined: frozenset[str]


@dataclass
class LinkedFirmware:
    """A linked ELF and how it came about."""

    elf: Path
    map_file: Path
    units: list[Unit]
    link_command: list[str]
    compile_seconds: float
    link_seconds: float
    rounds: int
    compiled_now: int
    from_cache: int
    warnings: list[str] = field(default_factory=list)

    def origin_of(self) -> dict[str, str]:
        """Object file path -> origin, for itemising the map file."""
        return {str(unit.object_path): unit.origin for unit in self.units}

    def to_dict(self) -> dict[str, Any]:
        by_origin: dict[str, list[str]] = {}
        for unit in self.units:
            by_origin.setdefault(unit.origin, []).append(unit.source)
        return {
            "elf": str(self.elf),
            "map_file": str(self.map_file),
            "sources": {origin: sorted(sources) for origin, sources in by_origin.items()},
            "compiled_now": self.compiled_now,
            "from_cache": self.from_cache,
            "rounds": self.rounds,
            "compile_seconds": round(self.compile_seconds, 2),
            "link_seconds": round(self.link_seconds, 2),
            "link_command": shlex.join(self.link_command),
        }


class Builder:
    """Compiles and links firmware for one (tree, recipe); reusable across firmware variants."""

    def __init__(self, tree: TflmTree, recipe: BuildRecipe, cache: Path | None = None) -> None:
        self.tree, self.recipe = tree, recipe
        self.cxx, self.cc = arm_tool("g++"), arm_tool("gcc")
        flags_key = hashlib.sha256(
            json.dumps([gcc_version(), OPTIMIZATION, recipe.cxxflags, recipe.cflags, recipe.includes]).encode()
        ).hexdigest()[:12]
        self.object_dir = (
            (cache or cache_root()) / "objects" / tree.revision / f"{recipe.tflm_arch}-{recipe.kernels}-{flags_key}"
        )
        self.jobs = max(1, int(os.environ.get(ENV_JOBS) or os.cpu_count() or 1))
        self._origins = {
            **{s: "framework" for s in recipe.framework_sources},
            **{s: "kernel" for s in recipe.kernel_sources},
            **{s: "third-party" for s in recipe.third_party_sources},
        }
        self._texts: dict[str, str] = {}
        self._keys: dict[str, Path] = {}  # source -> its preprocessed-content slot in the shared store

    # ------------------------------------------------------------------ flags

    @property
    def cpu_flags(self) -> list[str]:
        """-mcpu/-mfpu/-mfloat-abi/-mthumb exactly as TFLM compiles with them (the link must agree)."""
        return [f for f in self.recipe.cxxflags if f.startswith(("-mcpu=", "-mfpu=", "-mfloat-abi=")) or f == "-mthumb"]

    def _command(self, source: Path, output: Path, extra_includes: Iterable[Path] = ()) -> list[str]:
        is_c = source.suffix == ".c"
        flags = self.recipe.cflags if is_c else self.recipe.cxxflags
        includes = [f"-I{p}" for p in (*map(str, extra_includes), *self.recipe.includes)]
        return [self.cc if is_c else self.cxx, *flags, OPTIMIZATION, *includes, "-c", str(source), "-o", str(output)]

    # ------------------------------------------------------------------ compiling

    def compile_application(self, sources: list[Path], out_dir: Path, defines: Iterable[str] = ()) -> list[Unit]:
        """The firmware's own units (main, model data, harness), in `out_dir`.

        An object is reused only while its source and command are unchanged (the
        firmware's variants share most units: only the arena size differs between them).
        """
        out_dir.mkdir(parents=True, exist_ok=True)
        jobs, ready = [], []
        for source in sources:
            command = self._command(source, out_dir / "unit.o", extra_includes=[source.parent])
            command[1:1] = list(defines)
            key = hashlib.sha256(json.dumps([command, _sha256(source)]).encode()).hexdigest()[:16]
            output = out_dir / f"{source.name}.{key}.o"
            command[-1] = str(output)
            if output.is_file() and output.with_suffix(".o.json").is_file():
                stored = json.loads(output.with_suffix(".o.json").read_text())
                ready.append(
                    Unit(
                        str(source),
                        output,
                        "application",
                        True,
                        frozenset(stored["defined"]),
                        frozenset(stored["undefined"]),
                    )
                )
            else:
                jobs.append((str(source), output, command))
        built = self._run_jobs(jobs, origin=lambda s: "application", cached=False)
        for unit in built:
            unit.object_path.with_suffix(".o.json").write_text(
                json.dumps({"defined": sorted(unit.defined), "undefined": sorted(unit.undefined)})
            )
        return ready + built

    def compile_library(self, sources: Iterable[str]) -> list[Unit]:
        """TFLM / CMSIS-NN sources (paths relative to the tree), from the object cache when there.

        Two levels, like ccache's preprocessor mode: an object is looked up by (tree, flags,
        source) first; on a miss the source is preprocessed and looked up by what the compiler
        would really see, so the interpreter's files -- identical whichever kernel set is
        linked -- are compiled once for both CMSIS-NN and reference kernels.
        """
        jobs, ready = [], []
        for source in sources:
            output = self.object_dir / (source + ".o")
            unit = self._cached_unit(source, output) or self._shared_unit(source, output)
            if unit is not None:
                ready.append(unit)
            else:
                jobs.append((source, output, self._command(self.tree.root / source, output)))
        built = self._run_jobs(jobs, origin=lambda s: self._origins.get(s, "framework"), cached=False)
        for unit in built:
            self._share(unit)
        return ready + built

    def _preprocessed_key(self, source: str) -> str | None:
        base = self._command(self.tree.root / source, Path("-"))[:-4]  # without "-c SOURCE -o OUTPUT"
        command = [*base, "-E", str(self.tree.root / source)]
        result = subprocess.run(
            command, cwd=self.tree.root, capture_output=True, timeout=_COMPILE_TIMEOUT_S, check=False
        )
        if result.returncode != 0:
            return None
        flags = [f for f in base[1:] if not f.startswith(("-D", "-I"))]
        return hashlib.sha256(json.dumps([gcc_version(), flags]).encode() + result.stdout).hexdigest()

    def _shared_unit(self, source: str, output: Path) -> Unit | None:
        key = self._preprocessed_key(source)
        if key is None:
            return None
        shared = self.object_dir.parent / "shared" / key[:2] / f"{key}.o"
        self._keys[source] = shared
        if not (shared.is_file() and shared.with_suffix(".o.json").is_file()):
            return None
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared, output)
        stored = json.loads(shared.with_suffix(".o.json").read_text())
        stored["source_sha256"] = _sha256(self.tree.root / source)
        output.with_suffix(".o.json").write_text(json.dumps(stored))
        return Unit(
            source,
            output,
            self._origins.get(source, "framework"),
            True,
            frozenset(stored["defined"]),
            frozenset(stored["undefined"]),
        )

    def _share(self, unit: Unit) -> None:
        shared = self._keys.get(unit.source)
        if shared is None:
            return
        shared.parent.mkdir(parents=True, exist_ok=True)
        partial = shared.with_name(f".{shared.name}.{os.getpid()}.tmp")
        shutil.copyfile(unit.object_path, partial)
        partial.replace(shared)
        shared.with_suffix(".o.json").write_text(unit.object_path.with_suffix(".o.json").read_text())

    def _cached_unit(self, source: str, output: Path) -> Unit | None:
        meta = output.with_suffix(".o.json")
        if not (output.is_file() and meta.is_file()):
            return None
        stored = json.loads(meta.read_text())
        if stored.get("source_sha256") != _sha256(self.tree.root / source):
            return None
        return Unit(
            source,
            output,
            self._origins.get(source, "framework"),
            True,
            frozenset(stored["defined"]),
            frozenset(stored["undefined"]),
        )

    def _run_jobs(self, jobs: list[tuple[str, Path, list[str]]], origin: Any, cached: bool) -> list[Unit]:
        if not jobs:
            return []

        def one(job: tuple[str, Path, list[str]]) -> Unit:
            source, output, command = job
            output.parent.mkdir(parents=True, exist_ok=True)
            partial = output.with_name(f".{output.name}.{os.getpid()}.tmp")
            command = [*command[:-1], str(partial)]
            result = subprocess.run(
                command, cwd=self.tree.root, capture_output=True, text=True, timeout=_COMPILE_TIMEOUT_S, check=False
            )
            if result.returncode != 0:
                partial.unlink(missing_ok=True)
                raise ToolError(
                    f"Compiling {source} for {self.recipe.tflm_arch} failed:\n{result.stderr.strip()[-3000:]}",
                    f"The command was: {shlex.join(command)}",
                )
            partial.replace(output)
            defined, undefined = symbols(output)
            if origin(source) != "application":
                output.with_suffix(".o.json").write_text(
                    json.dumps(
                        {
                            "source_sha256": _sha256(self.tree.root / source),
                            "command": command,
                            "defined": sorted(defined),
                            "undefined": sorted(undefined),
                        }
                    )
                )
            return Unit(source, output, origin(source), cached, frozenset(defined), frozenset(undefined))

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            return list(pool.map(one, jobs))

    # ------------------------------------------------------------------ closure

    def close_over(self, application: list[Unit]) -> tuple[list[Unit], int, float]:
        """Add library units until every undefined symbol is defined by a unit or a runtime library."""
        units = list(application)
        have = {u.source for u in units}
        tried: dict[str, set[str]] = {}
        library_symbols = runtime_library_symbols(tuple(self.cpu_flags)) | LINKER_SCRIPT_SYMBOLS
        started, rounds = time.monotonic(), 0
        while True:
            rounds += 1
            defined = set().union(*(u.defined for u in units))
            missing = set().union(*(u.undefined for u in units)) - defined - library_symbols
            if not missing:
                break
            wanted = self._sources_for(missing, have, tried)
            if not wanted or rounds > _MAX_ROUNDS:
                raise self._unresolved(missing)
            units += self.compile_library(sorted(wanted))
            have |= wanted
        return units, rounds, time.monotonic() - started

    def _sources_for(self, missing: set[str], have: set[str], tried: dict[str, set[str]]) -> set[str]:
        wanted: set[str] = set()
        demangled = demangle(sorted(missing))
        for symbol in sorted(missing):
            for source in self._candidates(symbol, demangled.get(symbol, symbol)):
                if source in have or source in tried.setdefault(symbol, set()):
                    continue
                tried[symbol].add(source)
                wanted.add(source)
                break
        return wanted

    def _candidates(self, symbol: str, readable: str) -> list[str]:
        """Sources that define `symbol`, best first."""
        lookup = symbol_lookup(symbol, readable)
        if lookup is None:
            return []
        name, owner, kind = lookup
        found = self._defining(name, owner, kind)
        if not found and owner:  # the owner was a namespace this module does not know: look for the bare name
            found = self._defining(name, "", kind)
        return found

    def _defining(self, name: str, owner: str, kind: str) -> list[str]:
        sources = self.recipe.all_sources
        by_stem = [s for s in sources if Path(s).stem == name]
        found = []
        for source in by_stem + [s for s in sources if s not in by_stem]:
            text = self._text(source)
            if name not in text:
                continue
            if kind == "class" and re.search(rf"\b{re.escape(name)}::~?\w+\s*\(", text):
                found.append(source)
            elif kind == "data" and _defines_data(text, name):
                found.append(source)
            elif kind == "function" and _defines_function(text, f"{owner}::{name}" if owner else name):
                found.append(source)
        return found

    def _text(self, source: str) -> str:
        if source not in self._texts:
            self._texts[source] = _strip_comments((self.tree.root / source).read_text(errors="replace"))
        return self._texts[source]

    def _unresolved(self, missing: set[str]) -> ToolError:
        names = sorted(demangle(sorted(missing)).values())
        return ToolError(
            f"The firmware needs symbols no TFLM source of this tree defines ({self.recipe.tflm_arch}, "
            f"{self.recipe.kernels} kernels): {', '.join(names[:12])}{' ...' if len(names) > 12 else ''}.",
            "A kernel for one of the model's ops may be missing from this TFLM revision or from the chosen kernel set; "
            "try --kernels reference, or a newer tflite-micro tree.",
        )

    # ------------------------------------------------------------------ linking

    def link(
        self, units: list[Unit], linker_script: Path, elf: Path, extra_flags: Iterable[str] = ()
    ) -> tuple[list[str], float, list[str]]:
        """Link `units` with newlib-nano (no semihosting library: the firmware does its own)."""
        map_file = elf.with_suffix(".map")
        objects = sorted(str(u.object_path) for u in units)
        command = [
            self.cxx,
            *self.cpu_flags,
            OPTIMIZATION,
            *self.recipe.ldflags,
            "-nostartfiles",
            "--specs=nano.specs",
            "--specs=nosys.specs",
            f"-T{linker_script}",
            f"-Wl,-Map={map_file}",
            "-Wl,--cref",
            *extra_flags,
            "-o",
            str(elf),
            *objects,
            *self.recipe.libs,
            "-lm",
        ]
        command = [flag for flag in command if flag != "-Wl,--fatal-warnings"]  # newlib's nosys stubs warn by design
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, timeout=_LINK_TIMEOUT_S, check=False)
        if result.returncode != 0:
            raise ToolError(
                f"Linking {elf.name} failed:\n{result.stderr.strip()[-3000:]}",
                f"The command was: {shlex.join(command)}",
            )
        warnings = [
            line
            for line in result.stderr.splitlines()
            if "warning" in line and "is not implemented and will always fail" not in line
        ]
        return command, time.monotonic() - started, warnings


# --------------------------------------------------------------------------- symbols


def symbols(obj: Path) -> tuple[set[str], set[str]]:
    """(defined global symbols, undefined symbols) of an object file, from arm-none-eabi-nm."""
    result = subprocess.run([arm_tool("nm"), "-g", "-P", str(obj)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ToolError(
            f"arm-none-eabi-nm could not read {obj}: {result.stderr.strip()}",
            "The object may be damaged; delete the cache folder.",
        )
    defined, undefined = set(), set()
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind not in ("w", "v"):
            defined.add(name)
    return defined, undefined


@functools.cache
def runtime_library_symbols(cpu_flags: tuple[str, ...]) -> frozenset[str]:
    """Every symbol newlib-nano, libm, libgcc and libstdc++ define for this core's multilib."""
    names: set[str] = set()
    for library in _RUNTIME_LIBRARIES:
        path = subprocess.run(
            [arm_tool("gcc"), *cpu_flags, f"-print-file-name={library}"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if not Path(path).is_absolute():
            continue
        listing = subprocess.run(
            [arm_tool("nm"), "-g", "-P", "--defined-only", path], capture_output=True, text=True, check=False
        ).stdout
        names.update(
            line.split()[0]
            for line in listing.splitlines()
            if line and not line.endswith(":") and len(line.split()) >= 2
        )
    return frozenset(names)


def demangle(names: list[str]) -> dict[str, str]:
    if not names:
        return {}
    result = subprocess.run([arm_tool("c++filt")], input="\n".join(names), capture_output=True, text=True, check=False)
    readable = result.stdout.splitlines()
    return dict(zip(names, readable)) if len(readable) == len(names) else {n: n for n in names}


def symbol_lookup(symbol: str, readable: str) -> tuple[str, str, str] | None:
    """(name to search for, owning class or '', kind) for an undefined symbol; None when no source can define it."""
    for prefix, kind in (("vtable for ", "class"), ("VTT for ", "class")):
        if readable.startswith(prefix):
            return _last_component(readable[len(prefix) :]), "", kind
    if readable.startswith(("typeinfo", "guard variable", "construction vtable")):
        return None
    if not symbol.startswith("_Z"):
        return symbol, "", "function"  # a C symbol: CMSIS-NN, DebugLog, ...
    qualified = _without_parameters(readable)
    parts = _split_scope(qualified)
    name = _strip_template(parts[-1])
    owner = _strip_template(parts[-2]) if len(parts) > 1 and parts[-2] not in _NAMESPACES else ""
    kind = "function" if qualified != readable else "data"
    if name.startswith("operator"):
        return None
    return name, owner, kind


def _without_parameters(readable: str) -> str:
    text = readable.strip()
    for suffix in (" const", " volatile", " &", " &&"):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    if not text.endswith(")"):
        return text
    depth = 0
    for index in range(len(text) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(text[index], 0)
        if depth == 0:
            return text[:index]
    return text


def _split_scope(qualified: str) -> list[str]:
    parts, depth, current = [], 0, ""
    index = 0
    while index < len(qualified):
        char = qualified[index]
        depth += {"<": 1, ">": -1, "(": 1, ")": -1}.get(char, 0)
        if depth == 0 and qualified.startswith("::", index):
            parts.append(current)
            current, index = "", index + 2
            continue
        current += char
        index += 1
    parts.append(current)
    return [p.strip() for p in parts]


def _strip_template(name: str) -> str:
    return name.split("<", 1)[0].strip()


def _last_component(qualified: str) -> str:
    return _strip_template(_split_scope(qualified)[-1])


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _defines_function(text: str, qualified: str) -> bool:
    """Does `text` hold a definition (not a call or declaration) of `qualified(...)`?"""
    for match in re.finditer(rf"(?<![\w.>:]){re.escape(qualified)}\s*\(", text):
        depth, index = 1, match.end()
        while index < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[index], 0)
            index += 1
        rest = text[index : index + 200]
        rest = re.sub(r"^\s*(const|noexcept|override|final|volatile|\s)*", "", rest)
        if rest.startswith(("{", ":")) and not rest.startswith("::"):
            return True
    return False


def _defines_data(text: str, name: str) -> bool:
    pattern = rf"^(?!\s*extern)[^\n;()]*\b{re.escape(name)}\b\s*(\[[^\]]*\]\s*)*(=|\{{)"
    return re.search(pattern, text, flags=re.M) is not None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
