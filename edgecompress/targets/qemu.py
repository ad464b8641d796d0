"""An emulated Cortex-M board as a target: `--target qemu` or `--target qemu:mps2-an386`.

It measures what a microcontroller deploy builds -- the linked TFLite Micro firmware -- by
running it in qemu-system-arm with semihosting: the firmware reads the evaluation images
(quantized, as the device would get them), writes its raw outputs back, and counts
executed instructions per inference and per operator. The outputs are scored with the
board-side runner's own functions, so accuracy, per-class figures and per-sample
predictions mean exactly what they mean for any other board.

Time here is executed instructions (QEMU does not model cycles); the result carries an
estimated time at the profile's clock with its cycles-per-instruction assumption beside it,
and never a `latency_ms` that would pass for a measurement.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgecompress.errors import EdgeCompressError, TargetError
from edgecompress.targets.base import MeasureJob, Measurement, Target

SCHEME = "qemu"


def is_qemu_spec(spec: str) -> bool:
    return spec == SCHEME or spec.startswith(SCHEME + ":")


def board_of(spec: str) -> str | None:
    """'qemu' -> None (the board follows the profile's core), 'qemu:mps2-an386' -> 'mps2-an386'."""
    return spec.split(":", 1)[1] or None if ":" in spec else None


class QemuTarget(Target):
    """qemu-system-arm running edgecompress's firmware harness on an emulated Cortex-M board."""

    def __init__(self, board: str | None = None, timeout_s: float | None = None) -> None:
        from edgecompress.micro.cores import BOARDS

        if board is not None and board not in BOARDS:
            raise TargetError(
                f"There is no emulated board called '{board}'.",
                f"Use --target qemu (board chosen from the profile's core) or one of: "
                f"{', '.join('qemu:' + name for name in sorted(BOARDS))}.",
            )
        self.board = board
        self.timeout_s = timeout_s
        self.name = f"{SCHEME}:{board}" if board else SCHEME

    def accepts(self, artifact: Path) -> bool:
        """Only firmware built by edgecompress (an image with its firmware.json beside it)."""
        from edgecompress.micro.image import MANIFEST

        return artifact.suffix == ".bin" and (artifact.parent / MANIFEST).is_file()

    def reference(self) -> Target:
        """Where the fp32 baseline is scored for this board, which runs firmware only: the host runner."""
        from edgecompress.targets.host_reference import HostReference

        return HostReference(self.name)

    def probe(self) -> dict[str, Any]:
        from edgecompress.errors import ToolError
        from edgecompress.micro.toolchain import qemu_system, qemu_version_text

        try:
            qemu_system()
        except ToolError as error:
            raise TargetError(error.problem, error.fix) from None
        return {
            "platform": {
                "machine": "Cortex-M (emulated)",
                "system": f"{qemu_version_text()}",
                "board": self.board or "chosen from the profile's core",
            },
            "python": None,
            "runtimes": {"tflite-micro firmware": "built by edgecompress"},
        }

    def measure(self, job: MeasureJob) -> Measurement:
        from edgecompress.micro.cores import BOARDS, board_for, core_by_mcpu
        from edgecompress.micro.emulator import run_firmware
        from edgecompress.micro.image import MANIFEST, read_manifest

        if not self.accepts(job.model):
            raise TargetError(
                f"{self.name} runs microcontroller firmware built by edgecompress, not {job.model.name}.",
                "Deploy with a microcontroller profile; its firmware is measured on the emulated board.",
            )
        project = job.model.parent
        manifest = read_manifest(project / MANIFEST)
        core = core_by_mcpu(manifest["core"])
        try:
            board = board_for(core, self.board) if core is not None else BOARDS[self.board or manifest["board"]]
        except EdgeCompressError as error:
            raise TargetError(error.problem, error.fix) from None
        if manifest.get("board") and board.name != manifest["board"]:
            raise TargetError(
                f"The firmware was sized on {manifest['board']}, not {board.name}.",
                f"Use --target qemu:{manifest['board']}.",
            )
        data, inputs = _quantized_inputs(job.eval_data, manifest)
        with tempfile.TemporaryDirectory(prefix="edgecompress-qemu-") as scratch:
            run = run_firmware(
                project / manifest["emulator_elf"],
                board,
                inputs,
                input_bytes=manifest["input_bytes"],
                output_bytes=manifest["output_bytes"],
                output_dtype=manifest["output_dtype"],
                workdir=Path(scratch),
                timeout_s=self.timeout_s or job.timeout_s,
                instructions_hint=manifest.get("instructions_first_sample"),
            )
        result = _result(run, manifest, data, board, project)
        result["model"].update(_file_facts(job.model))
        device = {"board": board.name, "core": manifest["core_family"], "emulator": run.command[0]}
        return Measurement(target=self.name, result=result, device=device, log=run.console)


def _file_facts(path: Path) -> dict[str, Any]:
    """What was run, as for any board: the image's size and SHA-256 (how the report finds its predictions)."""
    from edgecompress.model_io import sha256_of

    return {"path": str(path), "bytes": path.stat().st_size, "sha256": sha256_of(path)}


def _quantized_inputs(eval_npz: Path, manifest: dict[str, Any]) -> tuple[Any, bytes]:
    from edgecompress.micro.tflm import runner_module

    runner = runner_module()
    try:
        data = runner.EvalData(str(eval_npz))
    except runner.RunnerError as error:
        raise TargetError(error.message, error.fix) from None
    io = manifest["input"]
    chunks = [
        np.ascontiguousarray(runner.quantize(batch, np.dtype(io["dtype"]), (io["scale"], io["zero_point"]))).tobytes()
        for batch in data.batches(256)
    ]
    inputs = b"".join(chunks)
    if len(inputs) != data.n * manifest["input_bytes"]:
        raise TargetError(
            f"The evaluation samples ({list(data.shape[1:])}) do not fill the firmware's "
            f"{manifest['input_bytes']}-byte input tensor.",
            "Use the eval set written for this model.",
        )
    return data, inputs


class _Replay:
    """Hands the firmware's outputs to the runner's scoring, one sample per call, in eval order."""

    batch = 1

    def __init__(self, scores: np.ndarray) -> None:
        self.scores, self.next = scores, 0

    def run(self, x: np.ndarray) -> np.ndarray:
        row = self.scores[self.next : self.next + len(x)]
        self.next += len(x)
        return row

    def try_batch(self, batch: int) -> bool:
        return batch == 1


def _result(run: Any, manifest: dict[str, Any], data: Any, board: Any, project: Path) -> dict[str, Any]:
    from edgecompress.micro import estimate
    from edgecompress.micro.tflm import runner_module

    runner = runner_module()
    out = manifest["output"]
    scores = runner.dequantize(run.outputs.reshape(run.samples, -1), (out["scale"], out["zero_point"])).astype(
        np.float32
    )
    accuracy = runner.evaluate(_Replay(scores), data, 1, scores[0], lambda message: None)
    per_inference = _per_inference(run, manifest, board)
    result: dict[str, Any] = {
        "runner_version": None,
        "runtime": {
            "name": f"tflite-micro firmware ({_kernel_name(manifest['kernels'])})",
            "version": manifest.get("tflm_revision"),
        },
        "model": {"firmware": manifest.get("device_elf"), "model_bytes": manifest.get("model_bytes")},
        "platform": {
            "machine": manifest["core"],
            "system": f"QEMU {board.name} (emulated)",
            "cpu_model": f"{manifest['core_family']} (emulated: {board.description})",
        },
        "threads": 1,
        "load_ms": None,
        "first_inference_ms": None,
        "latency_ms": {},  # nothing here is wall-clock time on a device
        "instructions": {
            "per_inference": per_inference,
            "per_op": _per_op(run.events, run.calibration.instructions_per_tick),
        },
        "latency_estimate": estimate.time_from_instructions(
            per_inference["median"], mcpu=manifest["core"], clock_mhz=int(manifest["clock_mhz"])
        ),
        "memory": _memory(run, manifest),
        "accuracy": accuracy,
        "emulator_seconds": round(run.seconds, 2),
    }
    reference = manifest.get("reference_scores")
    if reference:
        result["vs_tflm_python"] = _compare(scores, accuracy["predictions"], project / reference, manifest)
    return result


def _per_inference(run: Any, manifest: dict[str, Any], board: Any) -> dict[str, Any]:
    """Executed instructions per inference, labelled as emulated counts (not time) with their tick resolution."""
    from edgecompress.micro import estimate

    instructions = run.instructions
    return {
        "unit": estimate.EMULATED_LABEL.format(core=manifest["core_family"], board=board.name),
        "samples": int(instructions.size),
        "median": float(np.median(instructions)),
        "mean": round(float(instructions.mean()), 1),
        "min": float(instructions.min()),
        "max": float(instructions.max()),
        "first": float(instructions[0]),
        "resolution": run.calibration.instructions_per_tick,
        "calibration": run.calibration.to_dict(),
        "kernels": manifest["kernels"],
    }


def _memory(run: Any, manifest: dict[str, Any]) -> dict[str, Any]:
    """Arena and stack as the 32-bit core used them, beside the ELF's flash and RAM from the manifest."""
    return {
        "arena_used_32bit_bytes": run.arena_used,
        "arena_size_bytes": run.arena_size,
        "stack_peak_bytes": run.stack_peak,
        "stack_reserved_bytes": run.stack_reserved,
        "flash_bytes": manifest.get("flash_bytes"),
        "ram_bytes": manifest.get("ram_bytes"),
        "peak_rss_bytes": None,
    }


def _kernel_name(kernels: str) -> str:
    return {"cmsis_nn": "CMSIS-NN kernels", "reference": "reference kernels"}.get(kernels, kernels)


def _per_op(events: list[dict[str, Any]], per_tick: float) -> list[dict[str, Any]]:
    """Operators in execution order (depth-0 profiler events), average instructions per inference."""
    rows: list[dict[str, Any]] = []
    for event in events:
        if event["depth"] != 0 or not event["samples"]:
            continue
        rows.append(
            {
                "index": len(rows),
                "op": event["tag"],
                "instructions": round(event["ticks_total"] * per_tick / event["samples"], 1),
            }
        )
    total = sum(row["instructions"] for row in rows) or 1.0
    for row in rows:
        row["share"] = round(row["instructions"] / total, 4)
    return rows


def _compare(
    scores: np.ndarray, predictions: list[int], reference_path: Path, manifest: dict[str, Any]
) -> dict[str, Any]:
    """The firmware's outputs against the TFLM Python interpreter's on the same samples (saved by build_micro)."""
    if not reference_path.is_file():
        return {"available": False}
    reference = np.load(reference_path)
    limit = min(len(reference["scores"]), len(scores))
    ref_scores, ref_predicted = reference["scores"][:limit], reference["predicted"][:limit]
    step = float(manifest["output"]["scale"]) or 1.0
    return {
        "available": True,
        "samples": int(limit),
        "identical_outputs": bool(np.array_equal(ref_scores, scores[:limit])),
        "samples_with_any_difference": int(np.any(ref_scores != scores[:limit], axis=1).sum()),
        "max_abs_diff_quant_steps": float(np.round(np.abs(ref_scores - scores[:limit]).max() / step, 3))
        if limit
        else 0.0,
        "decision_agreement": float(np.mean(ref_predicted == np.asarray(predictions[:limit]))) if limit else 1.0,
        "expected_identical": manifest["kernels"] == "reference",
    }
