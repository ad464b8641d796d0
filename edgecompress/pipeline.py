"""`edgecompress deploy`: profile -> model -> data -> artifacts -> device -> report.

Everything that can be checked before paying for conversion or a device is checked first
(profile, model, data, targets), so bad input never leaves a run folder behind. After
that every step records itself in the run folder, so a run that dies half way can be
finished with `--resume` without redoing what is already there.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgecompress.errors import DataError, EdgeCompressError, TargetError
from edgecompress.run_folder import REPORT_FILE, REQUEST_FILE, RunFolder

log = logging.getLogger("edgecompress.pipeline")

BASELINE = "baseline-fp32"
#: how many training images calibrate full-integer quantization
CALIBRATION_SAMPLES = 200


@dataclass
class DeployRequest:
    """Everything a run depends on; saved as request.json so --resume can replay it."""

    model: str
    profile: str
    data: str = "sklearn:digits"
    classes: list[str] | None = None
    targets: list[str] = field(default_factory=lambda: ["local"])
    output: str = "runs"
    seed: int = 0
    scaling: str | None = None  # None: what the model's first layers suggest
    resize: bool = False
    max_eval: int | None = 2000
    warmup: int = 20
    runs: int = 100
    threads: int | None = None
    target_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Artifact:
    """One exported model file and how it was made."""

    name: str
    kind: str  # the PTQ / recipe mode, e.g. 'float32', 'int8'
    description: str
    path: Path

    def describe(self, budget_bytes: int | None) -> dict[str, Any]:
        from edgecompress.export import artifact_sizes
        from edgecompress.model_io import sha256_of

        sizes = artifact_sizes(self.path)
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "format": self.path.suffix.lstrip("."),
            "path": self.path.name,
            "sha256": sha256_of(self.path),
            **sizes,
            "fits_budget": None if budget_bytes is None else sizes["file_bytes"] <= budget_bytes,
        }


@dataclass
class DeployResult:
    run_dir: Path
    report: dict[str, Any]


#: what each profile PTQ choice produces, and why a user would want it
PTQ_DESCRIPTIONS = {
    "int8": "post-training full-integer int8 (calibrated on training images)",
    "fp16": "post-training float16 weights (for fp16-capable GPUs / no int8 path)",
    "dynamic": "post-training dynamic-range (int8 weights, float activations)",
    "float32": "no quantization",
}


def deploy(
    model: str | Path,
    profile: str | Path,
    *,
    data: str = "sklearn:digits",
    classes: list[str] | None = None,
    target: str | list[str] = "local",
    output: str | Path = "runs",
    seed: int = 0,
    scaling: str | None = None,
    resize: bool = False,
    max_eval: int | None = 2000,
    warmup: int = 20,
    runs: int = 100,
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
    **target_options: Any,
) -> DeployResult:
    """Python twin of `edgecompress deploy`; arguments mean what the CLI options mean."""
    request = DeployRequest(
        model=str(model),
        profile=str(profile),
        data=data,
        classes=classes,
        targets=[target] if isinstance(target, str) else list(target),
        output=str(output),
        seed=seed,
        scaling=scaling,
        resize=resize,
        max_eval=max_eval,
        warmup=warmup,
        runs=runs,
        threads=threads,
        target_options={k: str(v) if isinstance(v, Path) else v for k, v in target_options.items()},
    )
    return run(request, progress=progress)


def resume(run_dir: str | Path, *, progress: Callable[[str], None] | None = None) -> DeployResult:
    """Finish a failed or interrupted run, repeating only the steps it has no record of."""
    run_dir = Path(run_dir)
    request_file = run_dir / REQUEST_FILE
    if not request_file.exists():
        raise EdgeCompressError(
            f"'{run_dir}' is not a resumable run folder (no {REQUEST_FILE}).",
            "Pass a folder that `edgecompress deploy` created, e.g. runs/20261122-101500-model-rpi4.failed.",
        )
    if (run_dir / REPORT_FILE).exists() and not run_dir.name.endswith((".failed", ".partial")):
        raise EdgeCompressError(f"'{run_dir}' already finished; its report is {run_dir / REPORT_FILE}.", "Nothing to resume.")
    import json

    request = DeployRequest(**json.loads(request_file.read_text()))
    return run(request, progress=progress, folder=RunFolder.reopen(run_dir))


def run(request: DeployRequest, *, progress: Callable[[str], None] | None = None, folder: RunFolder | None = None) -> DeployResult:
    """Validate everything, then build, measure and report inside a run folder."""
    say = progress or (lambda message: log.info(message))
    prepared = _prepare(request, say)  # raises before any folder exists
    if folder is None:
        folder = RunFolder.create(Path(request.output), Path(request.model).stem, prepared.profile.name)
        folder.write_json(REQUEST_FILE, asdict(request))
    handler = folder.attach_log(log)
    step = "start"
    try:
        say(f"Run folder: {folder.path}")
        step = "reference"
        reference = _keras_reference(prepared, folder)
        step = "export"
        artifacts = _export_artifacts(prepared, folder, say)
        step = "measure"
        measurements = _measure(prepared, folder, artifacts, say)
        step = "report"
        report = _write_report(prepared, folder, artifacts, measurements, reference)
        run_dir = folder.finish()
        say(f"Report: {run_dir / REPORT_FILE}")
        return DeployResult(run_dir=run_dir, report=report)
    except BaseException as error:
        log.error("step %s failed: %s", step, error)
        failed_at = folder.fail(step, error)
        if isinstance(error, EdgeCompressError):
            error.fix = (error.fix + f" The run so far is kept in {failed_at}; finish it with "
                         f"`edgecompress deploy --resume {failed_at}`.").strip()
        raise
    finally:
        log.removeHandler(handler)
        handler.close()
        for target in prepared.targets:
            target.close()


@dataclass
class _Prepared:
    request: DeployRequest
    profile: Any
    loaded: Any  # model_io.LoadedModel
    dataset: Any  # data.Dataset
    targets: list[Any]
    probes: dict[str, Any]


def _prepare(request: DeployRequest, say: Callable[[str], None]) -> _Prepared:
    """Every check that can fail on user input, done before anything is written."""
    from edgecompress.data import load_dataset
    from edgecompress.model_io import load_model
    from edgecompress.profiles import load_profile
    from edgecompress.targets import resolve_target

    profile = load_profile(request.profile)
    say(f"Profile {profile.name}: {profile.description}")
    loaded = load_model(request.model)
    say(f"Model {loaded.path.name}: {loaded.n_params:,} parameters, input {loaded.input_shape}, {loaded.n_outputs} outputs ({loaded.output_kind})")
    scaling = request.scaling or loaded.scaling
    dataset = load_dataset(
        request.data,
        input_shape=loaded.input_shape,
        classes=request.classes,
        scaling=scaling,
        seed=request.seed,
        resize=request.resize,
        max_test=request.max_eval,
    )
    _check_data_fits_model(dataset, loaded)
    say(f"Data {dataset.source}: {len(dataset.x_train)} train / {len(dataset.x_test)} test images, classes {', '.join(dataset.class_names)}, scaled {dataset.scaling}")
    targets, probes = [], {}
    try:
        for spec in request.targets:
            target = resolve_target(spec, **request.target_options)
            targets.append(target)
            probes[target.name] = target.probe()
            say(f"Target {target.name}: {_probe_line(probes[target.name])}")
    except BaseException:
        for target in targets:
            target.close()
        raise
    return _Prepared(request, profile, loaded, dataset, targets, probes)


def _check_data_fits_model(dataset: Any, loaded: Any) -> None:
    n_classes = len(dataset.class_names)
    fits = loaded.n_outputs == n_classes or (loaded.n_outputs == 1 and n_classes == 2)
    if not fits:
        raise DataError(
            f"The data has {n_classes} classes ({', '.join(dataset.class_names)}) but the model outputs "
            f"{loaded.n_outputs} scores.",
            "Pick the classes the model was trained on with --classes (in the model's output order), "
            "or pass the model trained for this data.",
        )


def _probe_line(probe: dict[str, Any]) -> str:
    platform = probe.get("platform", {})
    runtimes = ", ".join(f"{k} {v}" for k, v in (probe.get("runtimes") or {}).items() if v) or "no runtime"
    return f"{platform.get('machine', '?')} {platform.get('system', '')}, Python {probe.get('python', '?')}, {runtimes}"


def _keras_reference(prepared: _Prepared, folder: RunFolder) -> dict[str, Any]:
    """Accuracy of the unconverted Keras model on the same evaluation images, on the host."""
    import numpy as np

    done = folder.done("reference")
    if done:
        return done
    model, data = prepared.loaded.model, prepared.dataset
    # Direct calls, not model.predict: predict builds a tf.data pipeline that prints
    # graph-version notices and is slower for a few thousand small images.
    scores = np.concatenate([np.asarray(model(data.x_test[i : i + 256], training=False)) for i in range(0, len(data.x_test), 256)])
    if scores.shape[-1] == 1:
        threshold = 0.5 if prepared.loaded.output_kind == "sigmoid" else 0.0
        predicted = (scores[:, 0] > threshold).astype(int)
    else:
        predicted = scores.argmax(axis=-1)
    per_class = {}
    for index, name in enumerate(data.class_names):
        mask = data.y_test == index
        per_class[name] = {"n": int(mask.sum()), "accuracy": float((predicted[mask] == index).mean()) if mask.any() else None}
    reference = {"accuracy": float((predicted == data.y_test).mean()), "n": int(len(data.y_test)), "per_class": per_class}
    folder.mark_done("reference", reference)
    return reference


def _export_artifacts(prepared: _Prepared, folder: RunFolder, say: Callable[[str], None]) -> list[Artifact]:
    """The fp32 baseline and the profile's post-training quantized model."""
    from edgecompress._tf import quiet_native_output
    from edgecompress.export import to_tflite

    profile, data = prepared.profile, prepared.dataset
    ptq = profile.compression.ptq
    io_dtype = profile.compression.io_dtype
    plan = [(BASELINE, "float32", "float32", PTQ_DESCRIPTIONS["float32"] + " (baseline)")]
    if ptq != "float32":
        plan.append((f"ptq-{ptq}", ptq, io_dtype if ptq == "int8" else "float32", PTQ_DESCRIPTIONS[ptq]))
    rng = __import__("numpy").random.default_rng(prepared.request.seed)
    calibration = data.x_train[rng.permutation(len(data.x_train))[:CALIBRATION_SAMPLES]]
    artifacts = []
    for name, mode, io, description in plan:
        path = folder.sub("artifacts", f"{name}.tflite")
        if not (folder.done(f"artifact:{name}") and path.exists()):
            say(f"Converting {name}: {description}")
            with quiet_native_output():  # the converter prints MLIR notices; real failures come back as ModelError
                blob = to_tflite(prepared.loaded.model, mode=mode, representative=calibration, io_dtype=io)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(blob)
            tmp.replace(path)
            folder.mark_done(f"artifact:{name}", {"mode": mode, "io_dtype": io})
        artifacts.append(Artifact(name=name, kind=mode, description=description, path=path))
    return artifacts


def _measure(prepared: _Prepared, folder: RunFolder, artifacts: list[Artifact], say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Run every artifact on every target; each finished measurement is kept for --resume."""
    from edgecompress.data import write_eval_npz
    from edgecompress.report import measurement_entry
    from edgecompress.targets import MeasureJob

    request = prepared.request
    eval_path = folder.path / "eval.npz"
    if not eval_path.exists():
        write_eval_npz(prepared.dataset, eval_path, output_kind=prepared.loaded.output_kind)
    entries = []
    for target in prepared.targets:
        for artifact in artifacts:
            key = f"measure:{artifact.name}@{target.name}"
            stem = f"{artifact.name}@{_safe(target.name)}"
            if not folder.done(key):
                say(f"Measuring {artifact.name} on {target.name} ({request.warmup} warm-up + {request.runs} timed runs)")
                job = MeasureJob(
                    model=artifact.path, eval_data=folder.path / "eval.npz",
                    warmup=request.warmup, runs=request.runs, threads=request.threads,
                )
                measurement = target.measure(job)
                result = measurement.result
                samples = result.get("latency_ms", {}).get("samples")
                folder.write_json(f"measurements/{stem}.samples.json", samples or [])
                folder.write_json(f"measurements/{stem}.json", {"target": target.name, "device": measurement.device, "result": result})
                if measurement.log:
                    folder.sub("measurements", f"{stem}.log").write_text(measurement.log)
                folder.mark_done(key, f"measurements/{stem}.json")
            saved = folder.read_json(f"measurements/{stem}.json")
            entries.append(measurement_entry(artifact.name, target.name, saved["result"], f"measurements/{stem}.samples.json"))
    return entries


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _write_report(prepared: _Prepared, folder: RunFolder, artifacts: list[Artifact], measurements: list[dict[str, Any]], reference: dict[str, Any]) -> dict[str, Any]:
    import edgecompress
    from edgecompress.report import build_report, host_facts

    budget = prepared.profile.artifact_budget_bytes
    report = build_report(
        edgecompress_version=edgecompress.__version__,
        command=sys.argv,
        request=asdict(prepared.request),
        profile=prepared.profile.to_dict(),
        model=prepared.loaded.describe(),
        data=prepared.dataset.describe(),
        host=host_facts(),
        targets=[{"name": name, "probe": probe} for name, probe in prepared.probes.items()],
        keras_reference=reference,
        baseline=BASELINE,
        artifacts=[artifact.describe(budget) for artifact in artifacts],
        measurements=measurements,
    )
    folder.write_json(REPORT_FILE, report)
    return report


__all__ = ["DeployRequest", "DeployResult", "deploy", "resume", "run", "TargetError"]
