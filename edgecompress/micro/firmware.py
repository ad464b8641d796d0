"""Write the TFLM firmware project for one model from `firmware/tflm/`, and check its model data.

The project is the model as an aligned C array, a header with I/O shapes, quantization and
arena size, one quantized sample for a demo loop, an op resolver registering exactly the model's ops,
a main loop that times inferences and prints them over serial, a Cortex-M start-up file and
the emulator harness. The model-data unit is built here with the host g++ and run (the
array must be byte-identical to the .tflite) and, when Debian's gcc-arm-none-eabi is
installed, compiled for the profile's core: that object is the flash figure when the whole
firmware cannot be linked (no TFLM tree, or a core that is not a Cortex-M). Linking the
whole firmware against TFLM is image.py's job.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import string
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecompress.micro import c_literals as c
from edgecompress.micro.cores import profile_core
from edgecompress.micro.ops import resolver_methods
from edgecompress.micro.tflm import ModelIo, TensorIo, tflm_version
from edgecompress.resources import bundled_dir

TEMPLATE_FILES = ("model_data.h.in", "model_data.cc.in", "sample_input.cc.in", "op_resolver.h.in", "main.cc.in")
#: Units compiled here; the first is the model, whose object size is the model's flash figure.
COMPILED_UNITS = ("model_data.cc", "sample_input.cc")
STATIC_FILES = (
    "model_data_check.cc",
    "README.md",
    "startup_cortex_m.c",
    "cortex_m.ld.in",
    "semihosting.h",
    "semihosting.c",
    "systick_time.cc",
    "emulator_main.cc",
)
#: Non-Arm profiles still get a Cortex-M object: the model array's size is the same on any
#: 32-bit target, and it proves the unit builds freestanding.
GENERIC_CORTEX_M = "cortex-m4"
_COMPILE_FLAGS = ("-std=c++17", "-Os", "-Wall", "-Wextra", "-Werror")
_ARM_FLAGS = ("-mthumb", "-ffreestanding", "-fno-exceptions", "-fno-rtti")
_COMPILE_TIMEOUT_S = 600


@dataclass(frozen=True)
class FirmwareInputs:
    """Everything the templates need, gathered by build_micro."""

    name: str
    profile_name: str
    model: bytes
    model_file: str
    io: ModelIo
    op_names: list[str]
    arena_minimum: int
    arena_bytes: int  # with margin
    arena_note: str  # where the minimum was measured
    sample_input: np.ndarray  # one quantized sample, in the input tensor's dtype
    sample_label: int
    class_names: list[str]
    output_kind: str
    binary_threshold: float
    runs: int = 0


def cortex_m_cpu(profile: object) -> str:
    """-mcpu for the profile's core (`cpu.core`), or a generic Cortex-M4 for other CPUs."""
    core = profile_core(profile)
    return core.mcpu if core is not None and core.mcpu is not None else GENERIC_CORTEX_M


def write_firmware(inputs: FirmwareInputs, out_dir: Path) -> Path:
    """Fill the templates into `out_dir` (created; existing generated files are replaced)."""
    values = _template_values(inputs)  # first: a value no literal can hold stops before any file is written
    out_dir.mkdir(parents=True, exist_ok=True)
    templates = bundled_dir("firmware") / "tflm"
    for name in TEMPLATE_FILES:
        text = string.Template((templates / name).read_text()).substitute(values)
        (out_dir / name.removesuffix(".in")).write_text(text)
    for name in STATIC_FILES:
        shutil.copyfile(templates / name, out_dir / name)
    return out_dir


def _template_values(inputs: FirmwareInputs) -> dict[str, str]:
    """Every template field, each a literal from c_literals or comment text made safe by it."""
    io = inputs.io
    methods = resolver_methods(inputs.op_names)
    return {
        "model_name": c.c_comment(inputs.name),
        "model_name_literal": c.c_string(inputs.name),
        "model_file": c.c_comment(inputs.model_file),
        "model_bytes": c.c_int(len(inputs.model), "int32"),
        "model_sha256": hashlib.sha256(inputs.model).hexdigest(),
        "profile_name": c.c_comment(inputs.profile_name),
        "tflm_version": c.c_comment(f"tflite-micro {tflm_version()}"),
        "arena_minimum": str(inputs.arena_minimum),
        "arena_margin": str(inputs.arena_bytes - inputs.arena_minimum),
        "arena_note": c.c_comment(inputs.arena_note),
        "arena_bytes": c.c_int(inputs.arena_bytes, "int32"),
        "op_count": c.c_int(len(inputs.op_names), "int32"),
        "op_names": c.c_comment(", ".join(inputs.op_names)),
        "register_calls": "\n".join(f"  if (resolver.{m}() != kTfLiteOk) return kTfLiteError;" for m in methods),
        **_tensor_fields("input", io.input),
        **_tensor_fields("output", io.output),
        "output_kind": c.c_comment(inputs.output_kind),
        "binary_threshold": c.c_float(
            inputs.binary_threshold, f"the decision threshold for {inputs.output_kind} scores"
        ),
        "class_count": c.c_int(len(inputs.class_names), "int32"),
        "class_names": ", ".join(c.c_string(n) for n in inputs.class_names),
        "sample_label": c.c_int(int(inputs.sample_label), "int32"),
        "model_array": c.c_bytes(inputs.model),
        "sample_array": c.c_array_items(inputs.sample_input, "the sample input"),
        "runs": c.c_int(inputs.runs, "int32"),
    }


def _tensor_fields(prefix: str, tensor: TensorIo) -> dict[str, str]:
    """Template fields describing one I/O tensor: C type, shape, element count, quantization."""
    named = f"the {prefix} tensor" + (f" '{tensor.name}'" if tensor.name else "")
    return {
        f"{prefix}_ctype": c.c_type(tensor.dtype),
        f"{prefix}_dims": c.c_int(len(tensor.shape), "int32"),
        f"{prefix}_shape": ", ".join(c.c_int(d, "int32") for d in tensor.shape),
        f"{prefix}_elements": c.c_int(tensor.elements, "int32"),
        f"{prefix}_scale": c.c_float(tensor.scale, f"{named}'s quantization scale"),
        f"{prefix}_zero_point": c.c_int(tensor.zero_point, "int32"),
    }


# --------------------------------------------------------------------------- compiling


@dataclass(frozen=True)
class CompiledObject:
    target: str  # 'host' or the -mcpu value
    unit: str  # source file
    compiler: str
    command: list[str]
    object_path: str
    text: int
    data: int
    bss: int

    @property
    def flash_bytes(self) -> int:
        """What the object puts in flash: code and read-only data (text) plus initialised data."""
        return self.text + self.data

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "flash_bytes": self.flash_bytes}


@dataclass
class FirmwareBuild:
    directory: Path
    objects: list[CompiledObject] = field(default_factory=list)
    host_check: dict[str, Any] | None = None
    not_compiled: dict[str, str] = field(default_factory=dict)

    def object_for(self, target: str, unit: str = COMPILED_UNITS[0]) -> CompiledObject | None:
        return next((o for o in self.objects if o.target == target and o.unit == unit), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "objects": [o.to_dict() for o in self.objects],
            "host_check": self.host_check,
            "not_compiled": self.not_compiled,
        }


def compile_firmware(directory: Path, model: bytes, *, mcpu: str) -> FirmwareBuild:
    """Compile the model-data units for the host and (if the toolchain exists) for Cortex-M `mcpu`.

    The host build is linked with model_data_check.cc and run: it writes the array back out,
    which must equal `model` byte for byte.
    """
    build = FirmwareBuild(directory)
    build.not_compiled["main.cc, op_resolver.h"] = (
        "compiled with the TFLM sources when edgecompress links the whole firmware (see micro_build.json's "
        "linked_firmware); otherwise build them in a TFLM project, see README.md"
    )
    host = shutil.which("g++")
    if host is None:
        build.not_compiled["host"] = "no g++ on PATH (Debian: apt-get install g++)"
    else:
        build.objects += [_compile(host, "host", directory, (), unit) for unit in COMPILED_UNITS]
        build.host_check = _run_host_check(host, directory, model)
    arm = shutil.which("arm-none-eabi-g++")
    if arm is None:
        build.not_compiled[mcpu] = "no arm-none-eabi-g++ on PATH (Debian: apt-get install gcc-arm-none-eabi)"
    else:
        build.objects += [
            _compile(arm, mcpu, directory, (f"-mcpu={mcpu}", *_ARM_FLAGS), unit) for unit in COMPILED_UNITS
        ]
    return build


def _compile(compiler: str, target: str, directory: Path, extra: tuple[str, ...], unit: str) -> CompiledObject:
    out = directory / "build" / target
    out.mkdir(parents=True, exist_ok=True)
    obj = out / unit.replace(".cc", ".o")
    command = [compiler, *_COMPILE_FLAGS, *extra, "-c", unit, "-o", str(obj.relative_to(directory))]
    _run(command, directory)
    text, data, bss = _section_sizes(compiler, obj)
    return CompiledObject(target, unit, _version(compiler), command, str(obj), text, data, bss)


def _section_sizes(compiler: str, obj: Path) -> tuple[int, int, int]:
    """Berkeley `size` of `obj` with the binutils matching `compiler` (arm-none-eabi-size for ARM)."""
    size_tool = shutil.which(compiler.rsplit("g++", 1)[0] + "size") or shutil.which("size")
    if size_tool is None:
        raise FileNotFoundError("binutils' size is not installed (Debian: apt-get install binutils)")
    lines = _run([size_tool, "--format=berkeley", str(obj)], obj.parent).splitlines()
    text, data, bss = (int(v) for v in lines[1].split()[:3])
    return text, data, bss


def _run_host_check(compiler: str, directory: Path, model: bytes) -> dict[str, Any]:
    out = directory / "build" / "host"
    exe, copy = out / "model_data_check", out / "model_copy.tflite"
    _run(
        [compiler, *_COMPILE_FLAGS, "model_data_check.cc", *COMPILED_UNITS, "-o", str(exe.relative_to(directory))],
        directory,
    )
    report = json.loads(_run([str(exe), str(copy)], directory))
    report["array_matches_tflite"] = copy.read_bytes() == bytes(model)
    copy.unlink()
    return report


def _run(command: list[str], cwd: Path) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=_COMPILE_TIMEOUT_S)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed in {cwd} (exit {result.returncode}):\n{result.stderr or result.stdout}"
        )
    return result.stdout


def _version(compiler: str) -> str:
    return _run([compiler, "--version"], Path.cwd()).splitlines()[0]
