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

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecompress.errors import ProfileError
from edgecompress.micro import budget as budget_mod
from edgecompress.micro import compress as lut
from edgecompress.micro import estimate, firmware, ops, tflm
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
    budget: budget_mod.BudgetCheck | None = None


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

    @property
    def arena_bytes(self) -> int:
        """Smallest arena the TFLM interpreter accepted for the shipped model (measured)."""
        return self.arena.minimum_bytes

    @property
    def arena_with_margin(self) -> int:
        return self.arena.with_margin_bytes

    @property
    def accuracy(self) -> float:
        return float(self.tflm_accuracy["overall"])

    @property
    def per_class(self) -> dict[str, Any]:
        return self.tflm_accuracy["per_class"]

    @property
    def litert_accuracy(self) -> float:
        return float(self.litert_accuracy_detail["overall"])

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
            "notes": self.notes,
        }


def build_micro(
    tflite_bytes: bytes,
    *,
    profile: Any,
    eval_npz: Path,
    out_dir: Path,
    compress: bool = True,
    name: str = "model",
) -> MicroBuild:
    """Build, measure and check a TFLM firmware project for `profile` in `out_dir`.

    Raises ModelError for ops TFLM cannot run (naming the layer), DataError for eval data
    that does not fit the model, BudgetError (with every figure) when no build fits the
    profile's RAM and flash budgets. The figures are also in out_dir/micro_build.json.
    """
    _require_microcontroller(profile)
    tflite_bytes = bytes(tflite_bytes)
    eval_npz, out_dir = Path(eval_npz), Path(out_dir)
    op_names = ops.require_tflm_ops(tflite_bytes)
    out_dir.mkdir(parents=True, exist_ok=True)
    plain_path = out_dir / f"{name}.tflite"
    plain_path.write_bytes(tflite_bytes)

    plain_arena = tflm.measure_arena(tflite_bytes)
    plain = _Variant("uncompressed", tflite_bytes, plain_path, plain_arena,
                     tflm.evaluate_tflm(tflite_bytes, eval_npz, plain_arena.with_margin_bytes), op_names)
    litert = tflm.evaluate_litert(plain_path, eval_npz)
    io = tflm.model_io(tflm.open_interpreter(tflite_bytes, plain_arena.with_margin_bytes))

    compressed, compression = (_compressed_variant(plain, profile, io, eval_npz, out_dir, name) if compress
                               else (None, {"requested": False}))
    variants = [v for v in (compressed, plain) if v is not None]
    for variant in variants:
        variant.budget = budget_mod.check_budget(profile, arena_with_margin=variant.arena.with_margin_bytes,
                                                 input_bytes=io.input.bytes, model_flash_bytes=len(variant.model),
                                                 op_count=len(variant.op_names))
    candidates = {v.label: _candidate_dict(v) for v in variants}
    shipped = next((v for v in variants if v.budget.fits), None)
    if shipped is None:
        raise _refusal(out_dir, profile, {v.label: v.budget for v in variants}, candidates, compression, plain)

    build = _firmware(shipped, profile, io, eval_npz, out_dir, name)
    flash = _flash_figures(shipped, build)
    shipped.budget = budget_mod.check_budget(profile, arena_with_margin=shipped.arena.with_margin_bytes,
                                             input_bytes=io.input.bytes, model_flash_bytes=flash["used_for_budget"],
                                             op_count=len(shipped.op_names))
    candidates[shipped.label] = _candidate_dict(shipped)
    if not shipped.budget.fits:  # the compiled object outgrew the array (alignment, class names)
        raise _refusal(out_dir, profile, {shipped.label: shipped.budget}, candidates, compression, plain)

    macs = estimate.count_macs(shipped.model)
    result = MicroBuild(
        name=name,
        profile=profile.name,
        tflite_path=plain_path,
        compressed_tflite_path=compressed.path if compressed else None,
        shipped=shipped.label,
        ops=shipped.op_names,
        io=io,
        arena=shipped.arena,
        flash_bytes=flash,
        tflm_accuracy=shipped.run.accuracy,
        litert_accuracy_detail=litert.accuracy,
        tflm_vs_litert=tflm.compare_runs(plain.run, litert),
        uncompressed_bytes=len(tflite_bytes),
        compressed_bytes=len(compressed.model) if compressed else None,
        compression=compression,
        macs=macs,
        latency=estimate.estimate_latency(macs["total"], arch=profile.cpu.arch, cpu_model=profile.cpu.model,
                                          clock_mhz=profile.cpu.clock_mhz),
        budget=shipped.budget,
        candidates=candidates,
        firmware=build,
        flash_by_tensor=stored_constants(shipped.model),
        notes=_notes(shipped, compressed, compression),
    )
    _write_report(out_dir, result.to_dict())
    return result


def _require_microcontroller(profile: Any) -> None:
    if profile.device_class != "microcontroller" or profile.flash_budget_bytes is None:
        raise ProfileError(
            f"Profile '{profile.name}' is a {profile.device_class}, not a microcontroller with a flash budget; "
            "TFLite Micro builds are for microcontroller profiles.",
            "Use a microcontroller profile (e.g. esp32-s3, arduino-nano-33-ble, stm32h7) or deploy to the board over SSH.",
        )


def _compressed_variant(plain: _Variant, profile: Any, io: tflm.ModelIo, eval_npz: Path, out_dir: Path,
                        name: str) -> tuple[_Variant | None, dict[str, Any]]:
    """LUT-compress what the RAM budget allows and keep it only if TFLM's outputs are unchanged.

    Decoded tensors live in the arena, so the largest ones are un-chosen one at a time
    until the measured arena fits the profile's RAM budget.
    """
    plan = lut.plan_lut(plain.model)
    report: dict[str, Any] = {"requested": True, "plan": plan.to_dict(), "attempts": [], "kept_uncompressed_for_ram": []}
    chosen = sorted(plan.chosen, key=lambda t: t.original_bytes)
    model, arena = b"", None
    while chosen:
        model = lut.apply_lut(plain.model, chosen)
        arena = tflm.measure_arena(model)
        ram_needed = arena.with_margin_bytes + io.input.bytes
        report["attempts"].append({"tensors": [t.name for t in chosen], "file_bytes": len(model),
                                   "arena_with_margin": arena.with_margin_bytes, "ram_needed": ram_needed})
        if ram_needed <= profile.model_memory_budget_bytes:
            break
        dropped = chosen.pop()
        report["kept_uncompressed_for_ram"].append(
            {"name": dropped.name, "layer": dropped.layer, "decoded_bytes": dropped.original_bytes,
             "why": f"with it compressed the build needs {ram_needed:,} B of RAM; the budget is {profile.model_memory_budget_bytes:,} B"})
    if not chosen:
        report["result"] = "not compressed: " + ("no tensor has few enough distinct values" if not plan.chosen
                                                 else "no compressed tensor's decoded copy fits the RAM budget")
        return None, report
    run = tflm.evaluate_tflm(model, eval_npz, arena.with_margin_bytes)
    comparison = tflm.compare_runs(plain.run, run)
    report["verification"] = {**comparison, "samples": int(len(run.scores))}
    if not comparison["identical_outputs"]:
        report["result"] = "discarded: TFLM outputs changed after LUT compression (a decoding fault); shipping uncompressed"
        return None, report
    report["result"] = f"compressed {len(chosen)} tensor(s); TFLM outputs identical on all {len(run.scores)} samples"
    report["compressed_tensors"] = [t.name for t in chosen]
    path = out_dir / f"{name}.lut.tflite"
    path.write_bytes(model)
    return _Variant("compressed", model, path, arena, run, ops.require_tflm_ops(model)), report


def _candidate_dict(variant: _Variant) -> dict[str, Any]:
    return {
        "file": str(variant.path),
        "file_bytes": len(variant.model),
        "arena": variant.arena.to_dict(),
        "tflm_accuracy": variant.run.accuracy["overall"],
        "budget": variant.budget.to_dict() if variant.budget else None,
    }


def _firmware(shipped: _Variant, profile: Any, io: tflm.ModelIo, eval_npz: Path, out_dir: Path,
              name: str) -> firmware.FirmwareBuild:
    runner = tflm.runner_module()
    data = runner.EvalData(str(eval_npz))
    sample = runner.quantize(data.head(1), io.input.dtype, (io.input.scale, io.input.zero_point))
    n_classes = max(len(data.class_names), 2 if io.output.elements == 1 else io.output.elements)
    class_names = [data.class_names[i] if i < len(data.class_names) else str(i) for i in range(n_classes)]
    inputs = firmware.FirmwareInputs(
        name=name, profile_name=profile.name, model=shipped.model, model_file=shipped.path.name, io=io,
        op_names=shipped.op_names, arena_minimum=shipped.arena.minimum_bytes, arena_bytes=shipped.arena.with_margin_bytes,
        sample_input=np.asarray(sample), sample_label=int(data.y[0]), class_names=class_names,
        output_kind=data.output_kind, binary_threshold=float(runner.BINARY_THRESHOLDS[data.output_kind]),
    )
    directory = firmware.write_firmware(inputs, out_dir / "firmware")
    return firmware.compile_firmware(directory, shipped.model, mcpu=firmware.cortex_m_cpu(profile.cpu.arch, profile.cpu.model))


def _flash_figures(shipped: _Variant, build: firmware.FirmwareBuild) -> dict[str, Any]:
    """Model flash from the compiled object: the Cortex-M one when built, else the host one."""
    figures: dict[str, Any] = {"model_array": len(shipped.model)}
    model_objects = [o for o in build.objects if o.unit == firmware.COMPILED_UNITS[0]]
    for obj in model_objects:
        figures[f"object_{obj.target}"] = obj.flash_bytes
    source = next((o for o in model_objects if o.target != "host"), None) or build.object_for("host")
    figures["used_for_budget"] = source.flash_bytes if source else len(shipped.model)
    figures["source"] = f"size of the compiled model_data.o ({source.target})" if source else "model array length (no compiler)"
    return figures


def _refusal(out_dir: Path, profile: Any, checks: dict[str, budget_mod.BudgetCheck], candidates: dict[str, Any],
             compression: dict[str, Any], plain: _Variant) -> Exception:
    """Write the refused build's figures to the report file and return the BudgetError to raise."""
    _write_report(out_dir, {"profile": profile.name, "refused": True, "candidates": candidates, "compression": compression})
    return budget_mod.refuse(profile.name, checks, _biggest_contributor(plain), _ram_notes(compression))


def _biggest_contributor(plain: _Variant) -> str:
    largest = (stored_constants(plain.model) or [{"layer": "-", "tensor": "-", "bytes": 0}])[0]
    return (f"in flash, layer '{largest['layer']}' ({largest['tensor']}) holds {largest['bytes']:,} of the model's "
            f"{len(plain.model):,} bytes; in RAM, the tensor arena needs {plain.arena.with_margin_bytes:,} B with margin")


def _ram_notes(compression: dict[str, Any]) -> list[str]:
    """Why layers that LUT compression could shrink stayed uncompressed: their decoded copy needs RAM."""
    return [f"Layer '{row['layer']}' was left uncompressed: TFLM decodes it into {row['decoded_bytes']:,} B of arena, "
            f"and {row['why']}." for row in compression.get("kept_uncompressed_for_ram", [])]


def _notes(shipped: _Variant, compressed: _Variant | None, compression: dict[str, Any]) -> list[str]:
    notes = ["latency is an estimate from the MAC count, not a measurement", *_ram_notes(compression)]
    if compressed is not None and shipped is compressed:
        notes.append("LiteRT cannot run TFLM's DECODE op, so LiteRT accuracy is for the uncompressed file; "
                     "the compressed file's TFLM outputs were checked identical to it on every sample")
    return notes


def _write_report(out_dir: Path, document: dict[str, Any]) -> None:
    (out_dir / REPORT_FILE).write_text(json.dumps(document, indent=2, default=str))
