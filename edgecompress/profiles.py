"""Device profiles: what a board can run, how much room the model gets, and how to compress for it.

A profile is a small YAML (or TOML) file. Bundled ones live in `profiles/`; users write
their own for boards we do not ship. Profiles are where most user typos happen and a
typo here silently changes what gets built, so the schema forbids unknown fields
everywhere, checks that the fields agree with each other (an int8-only accelerator cannot
be fed an fp16 model), and every error names the file, the field path, the bad value and
what would be accepted.

Sizes may be written as integers (bytes) or as strings with a unit, see `parse_size`.
Importing this module must stay cheap: it never touches TensorFlow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from edgecompress.config_files import did_you_mean, explain_validation, read_mapping, yaml_value
from edgecompress.errors import ProfileError
from edgecompress.hardware import CORES, CoreName
from edgecompress.resources import bundled_dir

# --------------------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------------------

#: Units a size string may carry. Case matters: spec sheets write "8 Mb" for megabits,
#: and silently reading that as megabytes would be off by 8x, so only these spellings pass.
SIZE_UNITS: dict[str, int] = {
    "B": 1,
    "KB": 10**3,
    "kB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
}
_SIZE_RE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[A-Za-z]*)\s*$")
_SIZE_HELP = (
    "Write a whole number of bytes, or a number with one of the units "
    + ", ".join(SIZE_UNITS)
    + " (e.g. 256KiB, 4GiB, 1MB)."
)


def parse_size(value: int | str) -> int:
    """Bytes from `value`: an int, or a string such as '256KiB', '1.5 GiB' or '8MB'.

    KiB/MiB/GiB are powers of 1024, KB/MB/GB powers of 1000 (IEC 80000-13).
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"not a size. {_SIZE_HELP}")
    number: float
    if isinstance(value, int):
        number, unit = value, "B"
    else:
        match = _SIZE_RE.match(value)
        if match is None:
            raise ValueError(f"not a size. {_SIZE_HELP}")
        number, unit = float(match["number"]), match["unit"] or "B"
        if unit not in SIZE_UNITS:
            hint = did_you_mean(unit, SIZE_UNITS, cutoff=0.3)
            raise ValueError(f"unknown unit '{unit}'{hint}. {_SIZE_HELP}")
    size = number * SIZE_UNITS[unit]
    if size != math.floor(size):
        raise ValueError(f"is not a whole number of bytes ({size}). {_SIZE_HELP}")
    return int(size)


def format_size(n_bytes: int) -> str:
    """Human-readable size that round-trips when exact: 262144 -> '256 KiB', 10**6 -> '1 MB'."""
    for unit in ("GiB", "MiB", "KiB", "GB", "MB", "KB"):
        if n_bytes >= SIZE_UNITS[unit] and n_bytes % SIZE_UNITS[unit] == 0:
            return f"{n_bytes // SIZE_UNITS[unit]} {unit}"
    for unit in ("GiB", "MiB", "KiB"):
        if n_bytes >= SIZE_UNITS[unit]:
            return f"{n_bytes / SIZE_UNITS[unit]:.1f} {unit}"
    return f"{n_bytes} B"


def _size_or_none(value: Any) -> Any:
    return None if value is None else parse_size(value)


Size = Annotated[int, BeforeValidator(parse_size), Field(ge=1)]
OptionalSize = Annotated[Annotated[int, Field(ge=1)] | None, BeforeValidator(_size_or_none)]

# --------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------

DeviceClass = Literal["linux-board", "phone", "microcontroller"]
CpuArch = Literal[
    "aarch64", "armv7l", "armv6l", "x86_64", "xtensa", "armv6-m", "armv7-m", "armv7e-m", "armv8-m", "riscv32", "riscv64"
]
Accelerator = Literal["none", "gpu", "npu", "dsp", "edgetpu"]
Runtime = Literal["litert", "tflite-micro", "onnxruntime", "edgetpu"]
PtqMode = Literal["int8", "fp16", "dynamic", "float32"]
IoDtype = Literal["float32", "int8"]
#: mildest first, as in edgecompress.compression.recipes.STRATEGIES (a tight budget may move right); 'auto':
#: the mildest that fits the budget, measured after export (compression.plan)
Strategy = Literal["auto", "ptq-only", "clustering", "cqat", "cqat-binary", "mixed-precision", "binary"]
LayerPrecision = Literal["int8", "float32"]
#: what the device wants most under its budget (see edgecompress.compression.recipes.STRUCTURES)
PlanPreference = Literal["size", "speed"]  # what the plan optimises under the budget
SpeedRecipe = Literal["twonn-prune", "uniform-prune", "lowrank"]
FinalArtifact = Literal["tflite", "tflite-micro"]


class _Strict(BaseModel):
    """Unknown keys are errors, not silently ignored: a typo must never change what is built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Cpu(_Strict):
    arch: CpuArch = Field(description="instruction set as `uname -m` or the MCU core family names it")
    cores: int = Field(ge=1, le=256, description="CPU cores the model can use")
    clock_mhz: int = Field(ge=1, le=10_000, description="peak clock in MHz (e.g. 1800 for 1.8 GHz)")
    model: str = Field(
        min_length=1, description="SoC / core, e.g. 'Broadcom BCM2711, 4x Cortex-A72' (free text, for people)"
    )
    core: CoreName | None = Field(
        default=None,
        description="the core that runs the model; decides firmware flags, the emulated board and cost figures (required for microcontrollers)",
    )


class Compression(_Strict):
    """The compression the profile implies unless the user overrides it."""

    ptq: PtqMode = Field(description="post-training quantization of the shipped model")
    io_dtype: IoDtype = Field(default="float32", description="dtype of the model's input and output tensors")
    significance_delta: float = Field(
        default=20.0,
        gt=0,
        description="TwoNN significance threshold: layers whose intrinsic-dimension change is below it count as insignificant",
    )
    clusters: int = Field(default=16, ge=2, le=256, description="weight clusters per layer for clustering / CQAT")
    strategy: Strategy = Field(
        default="cqat",
        description="how the model is compressed before export: 'auto' picks the mildest strategy whose measured size "
        "fits the budget; a named one is used as given (a tighter budget may force a more aggressive one)",
    )
    mixed_precision_bits: int = Field(
        default=2,
        ge=1,
        le=7,
        description="bits per weight of significant layers under the mixed-precision strategy (insignificant layers are binarised)",
    )
    first_last_precision: LayerPrecision = Field(
        default="float32",
        description="precision of the first and last layers, which are most sensitive to quantization",
    )
    final_artifact: FinalArtifact = Field(default="tflite", description="what is shipped to the device")
    finetune_steps: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="optimizer steps per fine-tuning stage at most (batches of 64 drawn from the whole training set)",
    )
    finetune_minutes: float | None = Field(
        default=None,
        gt=0,
        description="wall-clock budget for all fine-tuning of one deploy, in minutes (none: no limit)",
    )
    prefer: PlanPreference = Field(
        default="size",
        description="the smallest artifact under the budget (size), or the fastest (speed): speed adds the speed_recipe's smaller layer shapes to the strategy",
    )
    speed_recipe: SpeedRecipe = Field(
        default="twonn-prune",
        description="how a speed-preferring plan cuts MACs: structured pruning sized by layer ID, uniform pruning, or low rank",
    )


Preference = Literal["size", "latency", "accuracy"]
LatencyStatistic = Literal["median", "p90"]


class Acceptance(_Strict):
    """The rules an artifact must pass to be recommended, and the preference among those that do.

    Defaults apply to every profile that does not say otherwise; `deploy` and `report`
    override single fields from the command line (decision/rules.py maps the options)."""

    max_accuracy_drop_points: float = Field(
        default=1.0,
        ge=0,
        le=100,
        description="largest overall accuracy loss against the baseline, in percentage points",
    )
    max_class_drop_points: float | None = Field(
        default=5.0, ge=0, le=100, description="largest recall loss of any single class, in points (null: not checked)"
    )
    max_impacted_classes: int | None = Field(
        default=None,
        ge=0,
        description="most classes allowed to be impacted (sigma rule; with several seeds Welch's t-test, false discovery rate controlled; null: reported, not checked)",
    )
    max_latency_ms: float | None = Field(
        default=None,
        gt=0,
        description="latency ceiling per inference in ms, on `latency_statistic` (null: not checked)",
    )
    latency_statistic: LatencyStatistic = Field(
        default="median",
        description="which latency figure the ceiling applies to: median or p90 of the timed batch-1 runs",
    )
    max_peak_memory_bytes: OptionalSize = Field(
        default=None,
        description="ceiling on the runner's peak resident memory while the model runs (null: not checked)",
    )
    prefer: Preference = Field(
        default="size",
        description="which passing artifact to recommend: the smallest, the fastest or the most accurate",
    )
    size_tolerance_percent: float = Field(
        default=5.0,
        ge=0,
        lt=100,
        description="when choosing among passing artifacts, sizes within this percentage of each other count as "
        "equally small (the next figure decides)",
    )
    latency_tolerance: float = Field(
        default=3.0,
        ge=0,
        description="when choosing among passing artifacts, latencies within this many times the board's timing "
        "noise count as equally fast (without timing rounds: overlapping 95% intervals)",
    )
    allow_baseline: bool = Field(
        default=False, description="the uncompressed baseline may be recommended when it passes"
    )
    alpha: float = Field(
        default=0.05,
        gt=0,
        lt=0.5,
        description="significance level of the paired tests (McNemar, Wilcoxon, bootstrap) and Welch's",
    )
    max_metric_drop: float | None = Field(
        default=None,
        ge=0,
        description="largest loss of the task's figure against the baseline, in its own units: accuracy points "
        "(classification; overrides max_accuracy_drop_points), MAE in the targets' units (regression: a rise), "
        "ROC AUC points (anomaly). null: the task's default (max_accuracy_drop_points; 5% of the baseline's "
        "MAE; 1 AUC point)",
    )
    min_sqnr_db: float | None = Field(
        default=None,
        description="lowest SQNR (dB) of any output against the baseline's outputs (null: not checked, except "
        "in fidelity mode: 20 dB)",
    )
    min_agreement: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="lowest top-1 agreement with the baseline on score vectors, 0..1 (null: not checked, except "
        "in fidelity mode: 0.95)",
    )

    def describe(self) -> list[str]:
        """One phrase per active rule, as the verdict prints them (the task's own limits: decision.checks)."""
        lines = [
            f"accuracy drop <= {self.max_accuracy_drop_points:g} pt"
            if self.max_metric_drop is None
            else f"task figure drop <= {self.max_metric_drop:g} (in its units)"
        ]
        if self.min_sqnr_db is not None:
            lines.append(f"SQNR >= {self.min_sqnr_db:g} dB")
        if self.min_agreement is not None:
            lines.append(f"top-1 agreement >= {self.min_agreement:.0%}")
        if self.max_class_drop_points is not None:
            lines.append(f"any class's recall drop <= {self.max_class_drop_points:g} pt")
        if self.max_impacted_classes is not None:
            lines.append(f"impacted classes <= {self.max_impacted_classes}")
        if self.max_latency_ms is not None:
            lines.append(f"{self.latency_statistic} latency <= {self.max_latency_ms:g} ms")
        if self.max_peak_memory_bytes is not None:
            lines.append(f"peak memory <= {self.max_peak_memory_bytes:,} bytes")
        lines.append("fits the profile's size budget")
        lines.append(
            f"prefer {self.prefer}, counting sizes within {self.size_tolerance_percent:g} % and latencies within "
            f"{self.latency_tolerance:g}x the timing noise as ties"
        )
        return lines


class Programmer(_Strict):
    """How a microcontroller board is usually flashed: `edgecompress ship` prints the command for the
    firmware it bundled (flashing stays with the board's own tool)."""

    tool: str = Field(min_length=1, description="the board's usual flashing tool, e.g. openocd")
    command: str = Field(
        min_length=1, description="the command line that flashes the firmware; {elf} and {bin} stand for its files"
    )
    note: str = Field(default="", description="what the command assumes: probe, bootloader, flash address")


class Profile(_Strict):
    """One device: what it can execute, its memory, and the compression defaults that follow."""

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9._-]*$", description="short lowercase id used on the command line, e.g. rpi4"
    )
    description: str = Field(min_length=1, description="one line a person recognises the device by")
    device_class: DeviceClass = Field(description="linux-board, phone or microcontroller")
    cpu: Cpu
    ram_bytes: Size = Field(description="main RAM (on a microcontroller: on-chip SRAM)")
    external_ram_bytes: OptionalSize = Field(
        default=None, description="extra RAM the model may use, e.g. a microcontroller module's PSRAM"
    )
    model_memory_budget_bytes: Size = Field(
        description="RAM the model may take while running: weights + activations on Linux/phones, the tensor arena on microcontrollers"
    )
    flash_budget_bytes: OptionalSize = Field(
        default=None,
        description="microcontrollers: the flash the whole TFLite Micro firmware may take (model, interpreter, "
        "kernels, start-up and application), i.e. what the bootloader, RTOS and radio stack leave; the plan "
        "estimates the firmware against it, the firmware build checks the linked ELF against it",
    )
    model_flash_budget_bytes: OptionalSize = Field(
        default=None,
        description="microcontrollers, optional: the flash the model itself may take (weights, value tables and "
        "graph, as model_data.o in the firmware), when the application reserves a region for it; plans and "
        "strategy auto's ladder are then sized against it, measured exactly on each exported model, and the "
        "firmware's map checks it again",
    )
    int8: bool = Field(description="int8 inference is a fast path on the device's main compute unit")
    fp16: bool = Field(description="float16 arithmetic is a fast path on the device's main compute unit")
    accelerator: Accelerator = Field(default="none", description="the unit models are offloaded to, if any")
    accelerator_int8_only: bool = Field(default=False, description="the accelerator runs nothing but fully int8 models")
    preferred_runtimes: list[Runtime] = Field(min_length=1, description="inference runtimes to use, best first")
    compression: Compression
    acceptance: Acceptance = Field(
        default_factory=Acceptance,
        description="what an artifact must show, measured, to be recommended (see `edgecompress deploy --help`)",
    )
    sources: list[str] = Field(
        default_factory=list, description="where the figures come from (datasheets, product pages)"
    )
    programmer: Programmer | None = Field(
        default=None, description="how the board is usually flashed (microcontrollers; printed by `edgecompress ship`)"
    )

    @model_validator(mode="after")
    def _fields_agree(self) -> Profile:
        broken = [rule for rule in CONSISTENCY_RULES if rule.broken(self)]
        if broken:
            raise ValueError("\n".join(rule.explain(self) for rule in broken))
        return self

    @model_validator(mode="after")
    def _verdict_follows_the_plan(self) -> Profile:
        """A profile whose plan prefers speed recommends the fastest passing artifact, unless its
        acceptance block says otherwise."""
        if self.compression.prefer == "speed" and "prefer" not in self.acceptance.model_fields_set:
            object.__setattr__(self, "acceptance", self.acceptance.model_copy(update={"prefer": "latency"}))
        return self

    #: what loading the file noticed (decimal size units on a microcontroller), see `warnings`
    _file_warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """Things that are allowed but probably not meant: said on the console and in deploy.log."""
        return [*self._file_warnings, *runtime_wheel_warnings(self)]

    @property
    def usable_ram_bytes(self) -> int:
        """All RAM a model could be placed in: on-chip plus external (PSRAM/SDRAM)."""
        return self.ram_bytes + (self.external_ram_bytes or 0)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (sizes in bytes) that loads back into an equal Profile."""
        return self.model_dump(mode="json")

    def summary_rows(self) -> list[tuple[str, str]]:
        """(field path, human value) for every field, in schema order, for display."""
        return _rows(self, prefix="")


def _rows(model: BaseModel, prefix: str) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            rows.extend(_rows(value, prefix=f"{path}."))
        else:
            rows.append((path, _display(name, value)))
    return rows


def _display(name: str, value: Any) -> str:
    if value is None:
        return "—"
    if name.endswith("_bytes"):
        return f"{format_size(value)} ({value:,} bytes)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "\n".join(value) if name == "sources" else ", ".join(value)
    return str(value)


# --------------------------------------------------------------------------------------
# Consistency rules: one row per thing that cannot be true at the same time
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """`broken(profile)` is True when the profile contradicts itself; `why` and `fix` may use {p}."""

    field: str
    broken: Callable[[Profile], bool]
    why: str
    fix: str

    def explain(self, profile: Profile) -> str:
        value: Any = profile
        for part in self.field.split("."):
            value = getattr(value, part)
        shown = "is not set" if value is None else f"= {yaml_value(value)}"
        return f"{self.field} {shown}: {self.why.format(p=profile)} {self.fix.format(p=profile)}"


def _int8_only(p: Profile) -> bool:
    return p.accelerator_int8_only


def _mcu(p: Profile) -> bool:
    return p.device_class == "microcontroller"


CONSISTENCY_RULES: tuple[Rule, ...] = (
    Rule(
        "compression.ptq",
        lambda p: p.compression.ptq == "int8" and not p.int8,
        "int8 quantization needs a fast int8 path, but int8 is false.",
        "Set int8: true, or choose compression.ptq fp16, dynamic or float32.",
    ),
    Rule(
        "compression.ptq",
        lambda p: p.compression.ptq == "fp16" and not p.fp16,
        "float16 quantization needs a fast float16 path, but fp16 is false.",
        "Set fp16: true, or choose compression.ptq int8, dynamic or float32.",
    ),
    Rule(
        "compression.io_dtype",
        lambda p: p.compression.io_dtype == "int8" and p.compression.ptq != "int8",
        "int8 inputs and outputs exist only in a fully int8 model, but compression.ptq is {p.compression.ptq}.",
        "Set compression.io_dtype: float32, or compression.ptq: int8.",
    ),
    Rule(
        "accelerator_int8_only",
        lambda p: _int8_only(p) and p.accelerator == "none",
        "there is no accelerator (accelerator is none).",
        "Name the accelerator (gpu, npu, dsp, edgetpu), or set accelerator_int8_only: false.",
    ),
    Rule(
        "int8",
        lambda p: _int8_only(p) and not p.int8,
        "the accelerator runs only int8 models (accelerator_int8_only is true).",
        "Set int8: true.",
    ),
    Rule(
        "compression.ptq",
        lambda p: _int8_only(p) and p.compression.ptq != "int8",
        "the {p.accelerator} accelerator runs only fully int8 models (accelerator_int8_only is true).",
        "Set compression.ptq: int8.",
    ),
    Rule(
        "compression.io_dtype",
        lambda p: _int8_only(p) and p.compression.io_dtype != "int8",
        "the int8-only {p.accelerator} accelerator cannot take float tensors; the graph would fall back to the CPU.",
        "Set compression.io_dtype: int8.",
    ),
    Rule(
        "compression.first_last_precision",
        lambda p: _int8_only(p) and p.compression.first_last_precision != "int8",
        "float layers cannot run on the int8-only {p.accelerator} accelerator.",
        "Set compression.first_last_precision: int8.",
    ),
    Rule(
        "accelerator_int8_only",
        lambda p: p.accelerator == "edgetpu" and not p.accelerator_int8_only,
        "the Edge TPU executes only fully int8-quantized models.",
        "Set accelerator_int8_only: true.",
    ),
    Rule(
        "preferred_runtimes",
        lambda p: "edgetpu" in p.preferred_runtimes and p.accelerator != "edgetpu",
        "the edgetpu runtime needs an Edge TPU, but accelerator is {p.accelerator}.",
        "Set accelerator: edgetpu, or remove edgetpu from preferred_runtimes.",
    ),
    Rule(
        "preferred_runtimes",
        lambda p: len(set(p.preferred_runtimes)) != len(p.preferred_runtimes),
        "a runtime is listed twice.",
        "List each runtime once, best first.",
    ),
    Rule(
        "flash_budget_bytes",
        lambda p: _mcu(p) and p.flash_budget_bytes is None,
        "a microcontroller keeps the model in flash, so its size must be bounded.",
        "Add flash_budget_bytes (e.g. 512KiB): the flash the TFLite Micro firmware may take (model, interpreter, "
        "kernels, application), what the bootloader and RTOS leave.",
    ),
    Rule(
        "model_flash_budget_bytes",
        lambda p: p.model_flash_budget_bytes is not None and not _mcu(p),
        "only a microcontroller keeps its model in flash; a {p.device_class} is budgeted by model_memory_budget_bytes.",
        "Remove model_flash_budget_bytes, or set device_class: microcontroller.",
    ),
    Rule(
        "model_flash_budget_bytes",
        lambda p: (
            _mcu(p)
            and p.model_flash_budget_bytes is not None
            and p.flash_budget_bytes is not None
            and p.model_flash_budget_bytes >= p.flash_budget_bytes
        ),
        "the model's share of flash ({p.model_flash_budget_bytes:,} bytes) must leave room in the whole firmware's "
        "({p.flash_budget_bytes:,} bytes) for the TFLite Micro interpreter and kernels.",
        "Lower model_flash_budget_bytes, or raise flash_budget_bytes.",
    ),
    Rule(
        "compression.final_artifact",
        lambda p: _mcu(p) and p.compression.final_artifact != "tflite-micro",
        "a microcontroller runs TFLite Micro.",
        "Set compression.final_artifact: tflite-micro.",
    ),
    Rule(
        "compression.final_artifact",
        lambda p: not _mcu(p) and p.compression.final_artifact == "tflite-micro",
        "TFLite Micro is for microcontrollers, but device_class is {p.device_class}.",
        "Set compression.final_artifact: tflite, or device_class: microcontroller.",
    ),
    Rule(
        "preferred_runtimes",
        lambda p: _mcu(p) and "tflite-micro" not in p.preferred_runtimes,
        "tflite-micro is the only runtime a microcontroller can run.",
        "Set preferred_runtimes: [tflite-micro].",
    ),
    Rule(
        "preferred_runtimes",
        lambda p: not _mcu(p) and "tflite-micro" in p.preferred_runtimes,
        "tflite-micro is for microcontrollers, but device_class is {p.device_class}.",
        "Use litert or onnxruntime, or set device_class: microcontroller.",
    ),
    Rule(
        "compression.ptq",
        lambda p: p.compression.final_artifact == "tflite-micro" and p.compression.ptq not in ("int8", "float32"),
        "TFLite Micro has kernels only for int8 and float32 models.",
        "Set compression.ptq: int8 (or float32).",
    ),
    Rule(
        "cpu.core",
        lambda p: _mcu(p) and p.cpu.core is None,
        "a microcontroller's core decides how its firmware is compiled and what its latency estimate assumes.",
        "Add cpu.core (e.g. cortex-m4f, cortex-m7, xtensa-lx7).",
    ),
    Rule(
        "cpu.core",
        lambda p: p.cpu.core is not None and CORES[p.cpu.core].arch != p.cpu.arch,
        "that core is not an {p.cpu.arch} core.",
        "Correct cpu.arch or cpu.core so they name the same processor.",
    ),
    Rule(
        "model_memory_budget_bytes",
        lambda p: p.model_memory_budget_bytes > p.usable_ram_bytes,
        "the budget is more than the RAM the model can use ({p.usable_ram_bytes:,} bytes: ram_bytes + external_ram_bytes).",
        "Lower the budget, or correct ram_bytes / external_ram_bytes.",
    ),
)

# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------

PROFILE_SUFFIXES = (".yaml", ".yml", ".toml")


#: fields holding a microcontroller's memory, where a datasheet's "256 KB" means KiB
MEMORY_FIELDS = (
    "ram_bytes",
    "external_ram_bytes",
    "model_memory_budget_bytes",
    "flash_budget_bytes",
    "model_flash_budget_bytes",
)
DECIMAL_UNITS = {"KB": "KiB", "kB": "KiB", "MB": "MiB", "GB": "GiB"}


def decimal_unit_warnings(document: dict[str, Any]) -> list[str]:
    """'ram_bytes: 320 KB' on a microcontroller is 320,000 bytes, not the 327,680 its datasheet means."""
    if document.get("device_class") != "microcontroller":
        return []
    found = []
    for field in MEMORY_FIELDS:
        value = document.get(field)
        match = _SIZE_RE.match(value) if isinstance(value, str) else None
        if isinstance(value, str) and match and match["unit"] in DECIMAL_UNITS:
            binary = DECIMAL_UNITS[match["unit"]]
            found.append(
                f"{field}: {value} is decimal, {parse_size(value):,} bytes; microcontroller datasheets mean "
                f"{match['number']} {binary} ({parse_size(match['number'] + binary):,} bytes). "
                f"Write {match['number']}{binary} if that is what you mean."
            )
    return found


#: CPU architectures PyPI has wheels of each runtime for (pip install --dry-run --platform, 2026-12), and
#: what to install where there is none; the runner uses whichever it finds (firmware/runner)
RUNTIME_WHEELS: dict[str, tuple[str, ...]] = {"litert": ("x86_64", "aarch64"), "onnxruntime": ("x86_64", "aarch64")}
NO_WHEEL_ADVICE = {
    "armv7l": "install tflite-runtime instead (PyPI has armv7l wheels for Python 3.9-3.11; the runner uses it "
    "for .tflite models), or run a 64-bit (aarch64) OS if the board can",
    "armv6l": "no runtime on PyPI has armv6l wheels: build tflite-runtime on the board from TensorFlow's "
    "tensorflow/lite/tools/pip_package, or install a piwheels build of tflite-runtime if one exists for its Python",
}


def runtime_wheel_warnings(profile: Profile) -> list[str]:
    """A Linux board whose architecture has no wheel of a preferred runtime: say what to install instead."""
    if profile.device_class == "microcontroller":
        return []
    arch = profile.cpu.arch
    missing = [r for r in profile.preferred_runtimes if r in RUNTIME_WHEELS and arch not in RUNTIME_WHEELS[r]]
    if not missing:
        return []
    advice = NO_WHEEL_ADVICE.get(arch, "install a runtime built for it on the board")
    return [
        f"Profile {profile.name} runs on {arch}, for which {' and '.join(missing)} "
        f"{'has' if len(missing) == 1 else 'have'} no wheel on PyPI: {advice}."
    ]


def profile_names() -> list[str]:
    """Names of the bundled profiles, sorted."""
    return sorted(path.stem for path in _bundled_files())


def list_profiles() -> list[Profile]:
    """Every bundled profile, sorted by name."""
    return [load_profile(name) for name in profile_names()]


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a bundled profile by name ('rpi4') or the user's own file ('./my-board.yaml').

    Anything containing a path separator or ending in .yaml/.yml/.toml is a file; any
    other string is a bundled name.
    """
    text = str(name_or_path).strip()
    if is_profile_file(text):
        return _load_file(Path(text).expanduser())
    path = _bundled_path(text)
    profile = _load_file(path)
    if profile.name != path.stem:
        raise ProfileError(
            f"{path}: name is '{profile.name}' but the file is {path.name}.",
            "Bundled profiles are named after their file; rename one of them.",
        )
    return profile


def with_overrides(profile: Profile, overrides: dict[str, Any] | None) -> Profile:
    """`profile` with some fields changed ({"compression": {"clusters": 8}}), re-checked by the whole schema.

    A candidate plan of `edgecompress tune` is such a change: one that the schema or the
    consistency rules refuse is refused exactly like a profile file with the same values.
    """
    if not overrides:
        return profile

    def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for key, value in changes.items():
            out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        return out

    try:
        return Profile.model_validate(merged(profile.to_dict(), overrides))
    except ValidationError as error:
        problems = explain_validation(error, Profile)
        raise ProfileError(
            f"Profile '{profile.name}' with {_flat(overrides)}: " + "; ".join(problems),
            "Change the overridden values (a tune search space, or profile_overrides of a deploy request) to ones the profile schema accepts.",
        ) from None


def _flat(overrides: dict[str, Any], prefix: str = "") -> str:
    parts = []
    for key, value in overrides.items():
        if isinstance(value, dict):
            parts.append(_flat(value, f"{prefix}{key}."))
        else:
            parts.append(f"{prefix}{key} = {yaml_value(value)}")
    return ", ".join(parts)


def schema_help() -> Path:
    """The profile-writing guide that ships with the bundled profiles (wherever they were installed)."""
    return bundled_dir("profiles") / "README.md"


def is_profile_file(text: str) -> bool:
    """True when a --profile value names a file rather than a bundled profile."""
    return "/" in text or "\\" in text or text.lower().endswith(PROFILE_SUFFIXES)


def _bundled_files() -> list[Path]:
    return [p for p in bundled_dir("profiles").iterdir() if p.suffix in PROFILE_SUFFIXES and p.is_file()]


def _bundled_path(name: str) -> Path:
    by_name = {path.stem: path for path in _bundled_files()}
    if name in by_name:
        return by_name[name]
    hint = did_you_mean(name, by_name, cutoff=0.5)
    raise ProfileError(
        f"There is no bundled profile named '{name}'{hint}. Available: {', '.join(sorted(by_name))}.",
        "Run `edgecompress profiles list` to compare them, or pass the path of your own profile file "
        f"(e.g. ./my-board.yaml; {schema_help()} describes the fields).",
    )


def _load_file(path: Path) -> Profile:
    if path.suffix.lower() not in PROFILE_SUFFIXES:
        raise ProfileError(
            f"{path} is not a profile file: profiles end in {', '.join(PROFILE_SUFFIXES)}.",
            "Rename the file or pass the right one.",
        )
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ProfileError(
            f"The profile file {path} {what}.",
            "Check the path, or use a bundled profile name (`edgecompress profiles list`).",
        )
    document = read_mapping(
        path,
        ProfileError,
        "profile file",
        f"Start from a bundled profile (`edgecompress profiles show rpi4 --json`); {schema_help()} describes the fields.",
    )
    try:
        profile = Profile.model_validate(document)
    except ValidationError as error:
        problems = explain_validation(error, Profile)
        heading = f"{path} has {len(problems)} problems:" if len(problems) > 1 else f"{path}:"
        raise ProfileError(
            heading + ("\n  - " + "\n  - ".join(problems) if len(problems) > 1 else f" {problems[0]}"),
            f"Edit {path.name}; {schema_help()} describes every field, its units and allowed values.",
        ) from None
    profile._file_warnings = decimal_unit_warnings(document)
    return profile


__all__ = [
    "CONSISTENCY_RULES",
    "Compression",
    "Cpu",
    "Profile",
    "ProfileError",
    "Rule",
    "SIZE_UNITS",
    "format_size",
    "list_profiles",
    "load_profile",
    "parse_size",
    "profile_names",
    "runtime_wheel_warnings",
    "commented_yaml",
    "decimal_unit_warnings",
    "schema_help",
    "with_overrides",
]


# --------------------------------------------------------------------------------------
# A profile to start from
# --------------------------------------------------------------------------------------


def commented_yaml(profile: Profile, *, name: str, source: str) -> str:
    """`profile` as a YAML file a person edits: every field with its meaning from the schema as a
    comment, sizes in binary units, `name` in place of the original's. Loads back into the same profile
    (but for name and description)."""
    document = profile.to_dict()
    document.update(name=name, description=f"{profile.description} (copied from {profile.name}: describe your board)")
    lines = [
        f"# Device profile {name}, started from the bundled profile {source} (`edgecompress profiles init`).",
        f"# Every field is explained in {schema_help()}; check the file with `edgecompress profiles show ./{name}.yaml`.",
        "# Sizes take units: KiB/MiB/GiB are powers of 1024, KB/MB/GB powers of 1000.",
    ]
    lines += _yaml_block(document, Profile, indent="")
    return "\n".join(lines) + "\n"


def _yaml_block(document: dict[str, Any], model: type[BaseModel], indent: str) -> list[str]:
    lines = []
    for key, value in document.items():
        if value is None or value == [] and key == "sources":
            continue
        field = model.model_fields.get(key)
        if field is not None and field.description:
            lines.append(f"{indent}# {field.description}")
        nested = _nested_model(field)
        if isinstance(value, dict) and nested is not None:
            lines.append(f"{indent}{key}:")
            lines += _yaml_block(value, nested, indent + "  ")
        elif key.endswith("_bytes") and isinstance(value, int):
            lines.append(f"{indent}{key}: {format_size(value).replace(' ', '')}")
        else:
            lines.append(f"{indent}{key}: {yaml_value(value)}")
    return lines


def _nested_model(field: Any) -> type[BaseModel] | None:
    annotation = getattr(field, "annotation", None)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
