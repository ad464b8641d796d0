"""`build_micro`: from an int8 .tflite to a measured, budget-checked TFLite Micro firmware project.

Steps, each with real tools: refuse ops TFLM lacks (naming the layer); run the model in the
TFLM interpreter on the eval set (accuracy, and the arena from its recording allocator) and
the same file in LiteRT (accuracy must match); LUT-compress low-cardinality layers with
TFLM's compressor, keeping a layer uncompressed when its decoded copy would break the RAM
budget, and keep the compressed model only if its TFLM outputs equal the original's on every
sample; pick the smallest build that fits the profile's RAM and flash or refuse with the
figures; write and compile the firmware project; estimate latency from the MAC count.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecompress.errors import ProfileError
from edgecompress.micro import budget as budget_mod
from edgecompress.micro import compress as lut
from edgecompress.micro import cores, estimate, firmware, image, ops, slicing, tflm
from edgecompress.micro.graph import stored_constants

REPORT_FILE = "micro_build.json"


@dataclass
class _Variant:
    """One candidate build: a model file, its measured arena and its TFLM run."""

    label: str  # 'compressed' | 'uncompressed'
    model: bytes
    path: Path
    arena: tflm.ArenaMeasurement
    run: tflm.RunResult
    op_names: list[str]
    budget: budget_mod.BudgetCheck | None = None  # set once the variant is checked (see `checked`)
    named: bytes = b""  # the model before slimming (names for reports); empty: `model` is not slimmed
    slimming: dict[str, Any] = field(default_factory=dict)  # what slim.py saved, and how it was checked

    @property
    def reported(self) -> bytes:
        """The model with its tensor names: what per-layer figures are read from."""
        return self.named or self.model

    @property
    def checked(self) -> budget_mod.BudgetCheck:
        assert self.budget is not None, "every variant is checked against the budget before it is compared"
        return self.budget


@dataclass
class MicroBuild:
    """What was built for the microcontroller and the evidence that it works and fits."""

    name: str
    profile: str
    tflite_path: Path
    compressed_tflite_path: Path | None
    shipped: str  # which build the firmware carries: 'compressed' or 'uncompressed'
    ops: list[str]
    io: tflm.ModelIo
    arena: tflm.ArenaMeasurement
    flash_bytes: dict[str, Any]
    tflm_accuracy: dict[str, Any]
    litert_accuracy_detail: dict[str, Any]
    tflm_vs_litert: dict[str, Any]
    uncompressed_bytes: int
    compressed_bytes: int | None
    compression: dict[str, Any]
    macs: dict[str, Any]
    latency: estimate.LatencyEstimate
    budget: budget_mod.BudgetCheck
    candidates: dict[str, dict[str, Any]]
    firmware: firmware.FirmwareBuild
    flash_by_tensor: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    image: image.WholeFirmware | None = None  # the linked firmware, when it could be built
    whole_firmware_status: str = "not requested"

    @property
    def arena_bytes(self) -> int:
        """Smallest arena the TFLM interpreter accepted for the shipped model (measured)."""
        return self.arena.minimum_bytes

    @property
    def arena_with_margin(self) -> int:
        return self.arena.with_margin_bytes

    @property
    def accuracy(self) -> float | None:
        """Top-1 accuracy in TFLM (None for a model of another task: the host judges its outputs)."""
        overall = self.tflm_accuracy["overall"]
        return None if overall is None else float(overall)

    @property
    def per_class(self) -> dict[str, Any]:
        return self.tflm_accuracy["per_class"]

    @property
    def litert_accuracy(self) -> float | None:
        overall = self.litert_accuracy_detail["overall"]
        return None if overall is None else float(overall)

    @property
    def latency_estimate_ms(self) -> float:
        return self.latency.milliseconds

    @property
    def fits(self) -> dict[str, Any]:
        return self.budget.to_dict()

    @property
    def firmware_dir(self) -> Path:
        return self.firmware.directory

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "profile": self.profile,
            "tflite_path": str(self.tflite_path),
            "compressed_tflite_path": str(self.compressed_tflite_path) if self.compressed_tflite_path else None,
            "shipped": self.shipped,
            "ops": self.ops,
            "io": self.io.to_dict(),
            "arena_bytes": self.arena_bytes,
            "arena_with_margin": self.arena_with_margin,
            "arena": self.arena.to_dict(),
            "flash_bytes": self.flash_bytes,
            "flash_by_tensor": self.flash_by_tensor,
            "accuracy": self.accuracy,
            "per_class": self.per_class,
            "tflm_accuracy": self.tflm_accuracy,
            "litert_accuracy": self.litert_accuracy,
            "litert_artifact": str(self.tflite_path),
            "tflm_vs_litert": self.tflm_vs_litert,
            "sizes": {"uncompressed_bytes": self.uncompressed_bytes, "compressed_bytes": self.compressed_bytes},
            "compression": self.compression,
            "macs": self.macs,
            "latency_estimate_ms": self.latency_estimate_ms,
            "latency_estimate": self.latency.to_dict(),
            "fits": self.fits,
            "candidates": self.candidates,
            "firmware_dir": str(self.firmware_dir),
            "firmware": self.firmware.to_dict(),
            "linked_firmware": self.image.to_dict() if self.image else None,
            "whole_firmware": self.whole_firmware_status,
            "arena_32bit": self.image.arena if self.image else None,
            "firmware_image": str(self.image.image) if self.image else None,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class _Shipped:
    """The first candidate whose measured figures fit, with what was built for it."""

    variant: _Variant
    build: firmware.FirmwareBuild
    linked: image.WholeFirmware | None  # the linked firmware, when it could be built
    flash: dict[str, Any]


def build_micro(
    tflite_bytes: bytes,
    *,
    profile: Any,
    eval_npz: Path,
    out_dir: Path,
    compress: bool = True,
    name: str = "model",
    firmware_options: FirmwareOptions | None = None,
) -> MicroBuild:
    """Build, measure and check a TFLM firmware for `profile` in `out_dir`.

    For a Cortex-M profile the whole firmware is compiled and linked (see image.py) when a
    TFLM tree and the Arm toolchain are there (`firmware_options.mode`: 'auto' builds it when
    it can and says why not otherwise, 'require' fails without it, 'skip' never builds it);
    its ELF's flash and RAM are then the figures checked against the budgets.

    Raises ModelError for ops TFLM cannot run (naming the layer), DataError for eval data that
    does not fit the model, BudgetError (every figure) when no build fits the budgets -- unless
    `firmware_options.keep_over_budget`: the linked build is then kept, its check saying how far over it is --
    and ToolError for a missing tool or tree. Figures: out_dir/micro_build.json.
    """
    _require_microcontroller(profile)
    options = firmware_options or FirmwareOptions()
    tflite_bytes = bytes(tflite_bytes)
    eval_npz, out_dir = Path(eval_npz), Path(out_dir)
    op_names = ops.require_tflm_ops(tflite_bytes)
    out_dir.mkdir(parents=True, exist_ok=True)
    plain_path = out_dir / f"{name}.tflite"
    plain_path.write_bytes(tflite_bytes)
    core = cores.profile_core(profile)
    whole, whole_status = whole_firmware_possible(core, options)
    plain, litert, io = _measure_plain(tflite_bytes, plain_path, eval_npz, op_names)

    compressed, compression = (
        _compressed_variant(plain, profile, io, eval_npz, out_dir, name) if compress else (None, {"requested": False})
    )
    variants = [_slimmed(v, eval_npz) for v in (compressed, plain) if v is not None]
    order = _link_order(variants, profile, io, whole, options.keep_over_budget)
    candidates = {v.label: _candidate_dict(v) for v in variants}
    if not order:
        raise _refusal(out_dir, profile, {v.label: v.checked for v in variants}, candidates, compression, plain)

    shipped = _ship_first_that_fits(
        order, profile, io, eval_npz, out_dir, name, core, options, whole, candidates, compression, plain
    )
    _save_reference_outputs(shipped.variant, shipped.build.directory)
    result = _summary(name, profile, plain, compressed, shipped, litert, io, compression, candidates, whole_status)
    _write_report(out_dir, result.to_dict())
    return result


def _measure_plain(
    tflite_bytes: bytes, plain_path: Path, eval_npz: Path, op_names: list[str]
) -> tuple[_Variant, Any, tflm.ModelIo]:
    """The uncompressed model run in TFLM and LiteRT: the baseline every candidate is checked against, and its I/O."""
    plain_arena = tflm.measure_arena(tflite_bytes)
    plain = _Variant(
        "uncompressed",
        tflite_bytes,
        plain_path,
        plain_arena,
        tflm.evaluate_tflm(tflite_bytes, eval_npz, plain_arena.with_margin_bytes),
        op_names,
    )
    litert = tflm.evaluate_litert(plain_path, eval_npz)
    io = tflm.model_io(tflm.open_interpreter(tflite_bytes, plain_arena.with_margin_bytes), tflite_bytes)
    return plain, litert, io


def _link_order(variants: list[_Variant], profile: Any, io: Any, whole: bool, keep: bool = False) -> list[_Variant]:
    """Estimates choose the order; the linked firmware, when it can be built, has the last word.
    A variant the estimate refuses is still linked when its model array alone fits the flash
    budget (the kernel code and arena figures are the uncertain part of the estimate), or
    whatever its size when over-budget builds are kept."""
    for variant in variants:
        variant.budget = budget_mod.check_budget(
            profile,
            arena_with_margin=variant.arena.with_margin_bytes,
            input_bytes=io.input.bytes,
            model_flash_bytes=len(variant.model),
            op_count=len(variant.op_names),
        )
    return [v for v in variants if v.checked.fits] + (
        [v for v in variants if not v.checked.fits and (keep or len(v.model) <= profile.flash_budget_bytes)]
        if whole
        else []
    )


def _summary(
    name: str,
    profile: Any,
    plain: _Variant,
    compressed: _Variant | None,
    outcome: _Shipped,
    litert: Any,
    io: Any,
    compression: dict[str, Any],
    candidates: dict[str, Any],
    whole_status: str,
) -> MicroBuild:
    """What was built and measured, for micro_build.json and the report."""
    shipped, build, linked, flash = outcome.variant, outcome.build, outcome.linked, outcome.flash
    macs = estimate.count_macs(shipped.reported)
    return MicroBuild(
        name=name,
        profile=profile.name,
        tflite_path=plain.path,
        compressed_tflite_path=compressed.path if compressed else None,
        shipped=shipped.label,
        ops=shipped.op_names,
        io=io,
        arena=shipped.arena,
        flash_bytes=flash,
        tflm_accuracy=shipped.run.accuracy,
        litert_accuracy_detail=litert.accuracy,
        tflm_vs_litert=tflm.compare_runs(plain.run, litert),
        uncompressed_bytes=len(plain.model),
        compressed_bytes=len(compressed.model) if compressed else None,
        compression={**compression, "slimming": shipped.slimming},
        macs=macs,
        latency=estimate.estimate_latency(macs["total"], profile=profile, clock_mhz=profile.cpu.clock_mhz),
        budget=shipped.checked,
        candidates=candidates,
        firmware=build,
        flash_by_tensor=stored_constants(shipped.reported),
        notes=_notes(shipped, compressed, compression, linked, whole_status),
        image=linked,
        whole_firmware_status=whole_status,
    )


def _ship_first_that_fits(
    order: list[_Variant],
    profile: Any,
    io: Any,
    eval_npz: Path,
    out_dir: Path,
    name: str,
    core: Any,
    options: FirmwareOptions,
    whole: bool,
    candidates: dict[str, Any],
    compression: dict[str, Any],
    plain: _Variant,
) -> _Shipped:
    """Write (and, when possible, link) each candidate in order; the first whose measured figures fit is
    shipped; with `options.keep_over_budget` and none fitting, the last one built (its project is the one on disk)."""
    refused: dict[str, budget_mod.BudgetCheck] = {}
    last: _Shipped | None = None
    for shipped in order:
        build = _write_project(shipped, profile, io, eval_npz, out_dir, name)
        linked = _link(build.directory, shipped, core, io, eval_npz, options, profile) if whole else None
        if linked is not None:
            _write_project(shipped, profile, io, eval_npz, out_dir, name, arena=linked.arena)
        build = firmware.compile_firmware(build.directory, shipped.model, mcpu=firmware.cortex_m_cpu(profile))
        flash = _flash_figures(shipped, build, linked)
        shipped.budget = (
            budget_mod.check_firmware(profile, linked.device)
            if linked is not None
            else budget_mod.check_budget(
                profile,
                arena_with_margin=shipped.arena.with_margin_bytes,
                input_bytes=io.input.bytes,
                model_flash_bytes=flash["used_for_budget"],
                op_count=len(shipped.op_names),
            )
        )
        candidates[shipped.label] = _candidate_dict(shipped)
        last = _Shipped(shipped, build, linked, flash)
        if shipped.budget.fits:
            return last
        refused[shipped.label] = shipped.budget
    if options.keep_over_budget and last is not None and last.linked is not None:
        return last
    raise _refusal(out_dir, profile, refused, candidates, compression, plain)


@dataclass(frozen=True)
class FirmwareOptions:
    """How the whole firmware is built: where TFLM is, which kernels, which emulated board."""

    mode: str = "auto"  # 'auto' | 'require' | 'skip'
    tflm_dir: str | None = None
    kernels: str = "cmsis_nn"  # 'cmsis_nn' | 'reference'
    board: str | None = None  # a QEMU board; None: the core's own
    emulate: bool = True  # measure arena and stack on the emulated board when QEMU is there
    keep_over_budget: bool = False  # a build that does not fit is kept (to compare with), its check saying so


def whole_firmware_possible(core: cores.Core | None, options: FirmwareOptions) -> tuple[bool, str]:
    """Can the whole firmware be built here? (yes/no, and the reason a person reads in the report)."""
    from edgecompress.errors import ToolError
    from edgecompress.micro import tflm_tree
    from edgecompress.micro.toolchain import arm_tool

    if options.mode == "skip":
        return False, "not requested"
    if core is None:
        if options.mode == "require":
            raise ToolError(
                "This profile's CPU is not a Cortex-M: edgecompress builds and emulates Cortex-M firmware "
                "only (no Xtensa or RISC-V toolchain or emulator here).",
                "Deploy without --target qemu; flash and latency stay estimates for this profile.",
            )
        return False, (
            "the profile's CPU is not a Cortex-M (no toolchain or emulator for it here): flash and "
            "latency are estimates"
        )
    try:
        arm_tool("g++")
        try:
            tflm_tree.find_tree(options.tflm_dir)
        except ToolError:
            if options.tflm_dir or not (tflm_tree.third_party_dir() / "SHA256SUMS").is_file():
                raise
            tflm_tree.prepare_tree()  # offline, from the pinned archives next to the repository
    except ToolError as error:
        if options.mode == "require":
            raise
        return False, f"whole firmware not built: {error.problem} {error.fix}"
    return True, "built"


def _link(
    directory: Path,
    shipped: _Variant,
    core: cores.Core,
    io: tflm.ModelIo,
    eval_npz: Path,
    options: FirmwareOptions,
    profile: Any,
) -> image.WholeFirmware:
    runner = tflm.runner_module()
    data = runner.EvalData(str(eval_npz))
    sample = image.quantized_bytes(data.head(1), io.input.dtype, io.input.scale, io.input.zero_point)
    extra = {
        "input": io.input.to_dict(),
        "output": io.output.to_dict(),
        "clock_mhz": profile.cpu.clock_mhz,
        "profile": profile.name,
        "model_bytes": len(shipped.model),
        "reference_scores": REFERENCE_OUTPUTS,
        "shipped": shipped.label,
    }
    return image.build_firmware(
        directory,
        core=core,
        kernels=options.kernels,
        host_arena_bytes=shipped.arena.with_margin_bytes,
        probe=image.ProbeInput(sample, io.input.bytes, io.output.bytes, io.output.dtype),
        tflm_dir=options.tflm_dir,
        board=options.board,
        emulate=options.emulate,
        manifest_extra=extra,
    )


#: TFLM Python's outputs for the shipped model on every eval sample, beside the firmware, so
#: the emulated board's outputs can be compared with them sample by sample.
REFERENCE_OUTPUTS = "tflm_python_outputs.npz"


def _save_reference_outputs(shipped: _Variant, directory: Path) -> None:
    np.savez(
        directory / REFERENCE_OUTPUTS, scores=shipped.run.scores.astype(np.float32), predicted=shipped.run.predicted
    )


def _require_microcontroller(profile: Any) -> None:
    if profile.device_class != "microcontroller" or profile.flash_budget_bytes is None:
        raise ProfileError(
            f"Profile '{profile.name}' is a {profile.device_class}, not a microcontroller with a flash budget; "
            "TFLite Micro builds are for microcontroller profiles.",
            "Use a microcontroller profile (e.g. esp32-s3, arduino-nano-33-ble, stm32h7) or deploy to the board over SSH.",
        )


#: Samples the slimmed model is checked on in TFLM (its outputs must equal the unslimmed one's); on an
#: emulated board the firmware is then compared with TFLM on every sample (vs_tflm_python).
SLIM_CHECK_SAMPLES = 256


def _slimmed(variant: _Variant, eval_npz: Path) -> _Variant:
    """The variant with what TFLM never reads dropped (slim.py), if TFLM's outputs stay identical."""
    from edgecompress.micro import slim as slim_mod

    slimmed = slim_mod.slim(variant.model)
    subset = _eval_head(eval_npz, variant.path.with_name(variant.path.stem + ".slim-check.npz"))
    arena = tflm.measure_arena(slimmed.model)
    check = tflm.evaluate_tflm(slimmed.model, subset, arena.with_margin_bytes)
    samples = len(check.scores)
    same = bool(np.array_equal(check.scores, variant.run.scores[:samples]))
    subset.unlink()
    report: dict[str, Any] = {**slimmed.to_dict(), "checked_samples": samples, "identical_outputs": same}
    if not same:
        return dataclasses.replace(variant, slimming={**report, "result": "discarded: TFLM outputs changed"})
    path = variant.path.with_name(variant.path.stem + ".micro.tflite")
    path.write_bytes(slimmed.model)
    report["result"] = f"{slimmed.saved_bytes:,} B saved; TFLM outputs identical on {samples} samples"
    return dataclasses.replace(
        variant, model=slimmed.model, path=path, arena=arena, named=variant.model, slimming=report
    )


def _eval_head(eval_npz: Path, path: Path) -> Path:
    """The first SLIM_CHECK_SAMPLES evaluation samples as an eval set of their own."""
    with np.load(eval_npz, allow_pickle=False) as data:
        np.savez(
            path, **{key: data[key][:SLIM_CHECK_SAMPLES] if key in ("x", "y") else data[key] for key in data.files}
        )
    return path


def _compressed_variant(
    plain: _Variant, profile: Any, io: tflm.ModelIo, eval_npz: Path, out_dir: Path, name: str
) -> tuple[_Variant | None, dict[str, Any]]:
    """LUT-compress what the RAM budget allows and keep it only if TFLM's outputs are unchanged.

    Decoded tensors live in the arena. When the largest one's decoded copy breaks the RAM
    budget, its layer is first split into slices of output units (a Dense layer only; see
    slicing.py) so that only one slice is decoded at a time; if no slicing fits, that tensor
    is left uncompressed, and so on down the list until the measured arena fits.
    """
    plan = lut.plan_lut(plain.model)
    report: dict[str, Any] = {
        "requested": True,
        "plan": plan.to_dict(),
        "attempts": [],
        "kept_uncompressed_for_ram": [],
        "sliced_layers": [],
    }
    chosen, model, arena = _fit_to_ram(plain.model, plan, profile, io, report)
    if not chosen or arena is None:
        report["result"] = "not compressed: " + (
            "no tensor has few enough distinct values"
            if not plan.chosen
            else "no compressed tensor's decoded copy fits the RAM budget"
        )
        return None, report
    run = tflm.evaluate_tflm(model, eval_npz, arena.with_margin_bytes)
    comparison = tflm.compare_runs(plain.run, run)
    report["verification"] = {**comparison, "samples": int(len(run.scores))}
    if not comparison["identical_outputs"]:
        report["result"] = (
            "discarded: TFLM outputs changed after LUT compression (a decoding fault); shipping uncompressed"
        )
        return None, report
    sliced_note = "".join(f", layer '{row['layer']}' in {row['slices']} slices" for row in report["sliced_layers"])
    report["result"] = (
        f"compressed {len(chosen)} tensor(s){sliced_note}; TFLM outputs identical on all {len(run.scores)} samples"
    )
    report["compressed_tensors"] = [t.name for t in chosen]
    path = out_dir / f"{name}.lut.tflite"
    path.write_bytes(model)
    return _Variant("compressed", model, path, arena, run, ops.require_tflm_ops(model)), report


def _fit_to_ram(
    base: bytes, plan: lut.LutPlan, profile: Any, io: tflm.ModelIo, report: dict[str, Any]
) -> tuple[list[lut.LutTensor], bytes, tflm.ArenaMeasurement | None]:
    """Decoded tensors live in the arena: slice or drop the largest until the measured RAM fits the budget."""
    chosen = sorted(plan.chosen, key=lambda t: t.original_bytes)
    model, arena = b"", None
    while chosen:
        model = lut.apply_lut(base, chosen)
        arena = tflm.measure_arena(model)
        ram_needed = arena.with_margin_bytes + io.input.bytes
        report["attempts"].append(
            {
                "tensors": [t.name for t in chosen],
                "file_bytes": len(model),
                "arena_with_margin": arena.with_margin_bytes,
                "ram_needed": ram_needed,
            }
        )
        if ram_needed <= profile.model_memory_budget_bytes:
            break
        sliced = _slice_to_fit(base, chosen, profile, io, report)
        if sliced is not None:
            base, chosen, model, arena = sliced
            break
        dropped = chosen.pop()
        report["kept_uncompressed_for_ram"].append(
            {
                "name": dropped.name,
                "layer": dropped.layer,
                "decoded_bytes": dropped.original_bytes,
                "why": f"with it compressed the build needs {ram_needed:,} B of RAM; the budget is {profile.model_memory_budget_bytes:,} B",
            }
        )
    return chosen, model, arena


#: Slices are sized so that one decoded slice takes at most this share of the RAM budget at first.
_SLICE_SHARE_OF_RAM = 0.25


def _slice_to_fit(
    base: bytes, chosen: list[lut.LutTensor], profile: Any, io: tflm.ModelIo, report: dict[str, Any]
) -> tuple[bytes, list[lut.LutTensor], bytes, tflm.ArenaMeasurement] | None:
    """Split the largest chosen tensor's Dense layer until its compressed model fits the RAM budget."""
    largest = chosen[-1]
    units = slicing.sliceable(base, largest.name)
    if units is None:
        return None
    budget = profile.model_memory_budget_bytes
    slices = 2
    while largest.original_bytes / slices > budget * _SLICE_SHARE_OF_RAM and slices * 2 <= min(
        units, slicing.MAX_SLICES
    ):
        slices *= 2
    others = {t.name for t in chosen[:-1]}
    while slices <= min(units, slicing.MAX_SLICES) and units % slices == 0:
        candidate, layer = slicing.slice_dense(base, largest.name, slices)
        plan = lut.plan_lut(candidate)
        picked = sorted(
            (t for t in plan.chosen if t.name in others or t.name.startswith(largest.name + "/slice")),
            key=lambda t: t.original_bytes,
        )
        model = lut.apply_lut(candidate, picked)
        arena = tflm.measure_arena(model)
        ram_needed = arena.with_margin_bytes + io.input.bytes
        report["attempts"].append(
            {
                "tensors": [t.name for t in picked],
                "sliced": layer.to_dict(),
                "file_bytes": len(model),
                "arena_with_margin": arena.with_margin_bytes,
                "ram_needed": ram_needed,
            }
        )
        if ram_needed <= budget:
            report["sliced_layers"].append(layer.to_dict())
            return candidate, picked, model, arena
        slices *= 2
    return None


def _candidate_dict(variant: _Variant) -> dict[str, Any]:
    return {
        "file": str(variant.path),
        "file_bytes": len(variant.model),
        "arena": variant.arena.to_dict(),
        "tflm_accuracy": variant.run.accuracy["overall"],
        "budget": variant.budget.to_dict() if variant.budget else None,
    }


def _write_project(
    shipped: _Variant,
    profile: Any,
    io: tflm.ModelIo,
    eval_npz: Path,
    out_dir: Path,
    name: str,
    arena: dict[str, Any] | None = None,
) -> firmware.FirmwareBuild:
    """Fill the templates; `arena` (the 32-bit figures from the linked firmware) replaces the host figure."""
    runner = tflm.runner_module()
    data = runner.EvalData(str(eval_npz))
    sample = runner.quantize(data.head(1), io.input.dtype, (io.input.scale, io.input.zero_point))
    class_names = budget_mod.stored_class_names(data.class_names, data.labelled, io.output.elements)
    if arena is not None and arena.get("measured_32bit_bytes"):
        minimum, size, note = (
            arena["smallest_working_bytes"],
            arena["size_bytes"],
            "measured on the emulated 32-bit core",
        )
    else:
        minimum, size, note = (
            shipped.arena.minimum_bytes,
            shipped.arena.with_margin_bytes,
            f"measured in the TFLM interpreter ({tflm.tflm_version()}, 64-bit host)",
        )
    inputs = firmware.FirmwareInputs(
        name=name,
        profile_name=profile.name,
        model=shipped.model,
        model_file=shipped.path.name,
        io=io,
        op_names=shipped.op_names,
        arena_minimum=minimum,
        arena_bytes=size,
        arena_note=note,
        sample_input=np.asarray(sample),
        sample_label=int(data.y[0]) if data.labelled else 0,
        class_names=class_names,
        output_kind=data.output_kind,
        binary_threshold=float(runner.BINARY_THRESHOLDS.get(data.output_kind, 0.0)),
    )
    return firmware.FirmwareBuild(firmware.write_firmware(inputs, out_dir / "firmware"))


def _flash_figures(
    shipped: _Variant, build: firmware.FirmwareBuild, linked: image.WholeFirmware | None
) -> dict[str, Any]:
    """Flash: the whole linked firmware when built, else the compiled model object (Cortex-M, else host)."""
    figures: dict[str, Any] = {"model_array": len(shipped.model)}
    if linked is not None:
        figures.update(
            {
                "used_for_budget": linked.device.flash_bytes,
                "model_in_elf": linked.device.flash["model"],
                "itemised": linked.device.flash,
                "source": f"linked firmware.elf ({linked.core.family}, {linked.kernels} kernels): text + rodata + data",
            }
        )
        return figures
    model_objects = [o for o in build.objects if o.unit == firmware.COMPILED_UNITS[0]]
    for obj in model_objects:
        figures[f"object_{obj.target}"] = obj.flash_bytes
    source = next((o for o in model_objects if o.target != "host"), None) or build.object_for("host")
    figures["used_for_budget"] = source.flash_bytes if source else len(shipped.model)
    figures["source"] = (
        f"size of the compiled model_data.o ({source.target})" if source else "model array length (no compiler)"
    )
    return figures


def _refusal(
    out_dir: Path,
    profile: Any,
    checks: dict[str, budget_mod.BudgetCheck],
    candidates: dict[str, Any],
    compression: dict[str, Any],
    plain: _Variant,
) -> Exception:
    """Write the refused build's figures to the report file and return the BudgetError to raise."""
    _write_report(
        out_dir, {"profile": profile.name, "refused": True, "candidates": candidates, "compression": compression}
    )
    return budget_mod.refuse(profile.name, checks, _biggest_contributor(plain), _ram_notes(compression))


def _biggest_contributor(plain: _Variant) -> str:
    largest = (stored_constants(plain.model) or [{"layer": "-", "tensor": "-", "bytes": 0}])[0]
    return (
        f"in flash, layer '{largest['layer']}' ({largest['tensor']}) holds {largest['bytes']:,} of the model's "
        f"{len(plain.model):,} bytes; in RAM, the tensor arena needs {plain.arena.with_margin_bytes:,} B with margin"
    )


def _ram_notes(compression: dict[str, Any]) -> list[str]:
    """Why layers that LUT compression could shrink stayed uncompressed: their decoded copy needs RAM."""
    return [
        f"Layer '{row['layer']}' was left uncompressed: TFLM decodes it into {row['decoded_bytes']:,} B of arena, "
        f"and {row['why']}."
        for row in compression.get("kept_uncompressed_for_ram", [])
    ]


def _notes(
    shipped: _Variant,
    compressed: _Variant | None,
    compression: dict[str, Any],
    linked: image.WholeFirmware | None,
    whole_status: str,
) -> list[str]:
    notes = [
        "latency_estimate is from the MAC count; the emulated board (--target qemu) counts instructions",
        *_ram_notes(compression),
    ]
    if not shipped.checked.fits:
        notes.append(
            "built although it does not fit the profile's budgets, to be measured beside the builds that do: "
            + "; ".join(shipped.checked.shortfalls())
        )
    if linked is None:
        notes.append(f"flash and RAM are estimates ({whole_status})")
    else:
        notes.extend(linked.notes)
    if compressed is not None and shipped is compressed:
        notes.append(
            "LiteRT cannot run TFLM's DECODE op, so LiteRT accuracy is for the uncompressed file; "
            "the compressed file's TFLM outputs were checked identical to it on every sample"
        )
    return notes


def _write_report(out_dir: Path, document: dict[str, Any]) -> None:
    (out_dir / REPORT_FILE).write_text(json.dumps(document, indent=2, default=str))
