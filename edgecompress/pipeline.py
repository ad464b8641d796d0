"""`edgecompress deploy`: profile -> model -> data -> artifacts -> device -> report.

Everything that can be checked before paying for conversion or a device is checked first
(profile, model, data, targets), so bad input never leaves a run folder behind. After
that every step records itself in the run folder, so a run that dies half way can be
finished with `--resume` without redoing what is already there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager

from edgecompress.errors import DataError, EdgeCompressError, TargetError
from edgecompress.run_folder import EVAL_FILE, PLAN_FILE, REPORT_FILE, REQUEST_FILE, RunFolder, write_atomically

log = logging.getLogger("edgecompress.pipeline")

#: opens a live progress display for one long step: task("Fine-tuning cqat") used as a context manager
TaskFactory = Callable[[str], ContextManager[Any]]


def _no_task(description: str) -> ContextManager[Any]:
    return contextlib.nullcontext()


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
    recipe: str | None = None  # None: the plan the profile implies; else a named baseline (ptq-int8, cqat, ...)
    epochs: int | None = None  # fine-tuning epochs per compression stage (None: the recipe default)
    delta: float | None = None  # significance threshold (None: the profile's)
    method: str = "twonn"  # intrinsic-dimension estimator: twonn | pca
    id_samples: int = 2000
    onnx: bool = True
    target_options: dict[str, Any] = field(default_factory=dict)
    micro: dict[str, Any] = field(default_factory=dict)  # microcontroller firmware: tflm_dir, kernels


@dataclass
class Artifact:
    """One exported model file and how it was made."""

    name: str
    kind: str  # the PTQ / recipe mode, e.g. 'float32', 'int8'
    description: str
    path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self, budget_bytes: int | None) -> dict[str, Any]:
        """Sizes three ways (file, gzip, bit-packed) plus unique weight values per layer."""
        from edgecompress.export import artifact_sizes, bitpacked_size, tflite_weight_stats
        from edgecompress.model_io import sha256_of

        sizes = artifact_sizes(self.path)
        entry = {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "format": self.path.suffix.lstrip("."),
            "path": self.path.name,
            "sha256": sha256_of(self.path),
            **sizes,
            "fits_budget": None if budget_bytes is None else sizes["file_bytes"] <= budget_bytes,
            **self.extra,
        }
        if self.path.suffix == ".tflite":
            blob = self.path.read_bytes()
            stats = tflite_weight_stats(blob)
            packed = bitpacked_size(stats, tflite_bytes=blob)
            entry["bitpacked_bytes"] = packed["total_bytes"]
            entry["bitpacked"] = packed
            entry["weights"] = [
                {k: row.get(k) for k in ("name", "layer", "op", "shape", "dtype", "n_weights", "unique_values",
                                         "unique_stored_values", "max_unique_per_channel", "codebook", "bits_per_weight")}
                for row in stats
            ]
        return entry


@dataclass
class DeployResult:
    run_dir: Path | None  # None for a dry run
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
    recipe: str | None = None,
    epochs: int | None = None,
    delta: float | None = None,
    method: str = "twonn",
    id_samples: int = 2000,
    onnx: bool = True,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
    show: Callable[[Any], None] | None = None,
    task: TaskFactory | None = None,
    micro: dict[str, Any] | None = None,
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
        recipe=recipe,
        epochs=epochs,
        delta=delta,
        method=method,
        id_samples=id_samples,
        onnx=onnx,
        target_options={k: str(v) if isinstance(v, Path) else v for k, v in target_options.items()},
        micro={k: str(v) if isinstance(v, Path) else v for k, v in (micro or {}).items()},
    )
    return run(request, progress=progress, show=show, task=task, dry_run=dry_run)


def resume(
    run_dir: str | Path,
    *,
    progress: Callable[[str], None] | None = None,
    show: Callable[[Any], None] | None = None,
    task: TaskFactory | None = None,
) -> DeployResult:
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
    request = DeployRequest(**json.loads(request_file.read_text()))
    return run(request, progress=progress, show=show, task=task, folder=RunFolder.reopen(run_dir))


def run(
    request: DeployRequest,
    *,
    progress: Callable[[str], None] | None = None,
    show: Callable[[Any], None] | None = None,
    task: TaskFactory | None = None,
    folder: RunFolder | None = None,
    dry_run: bool = False,
) -> DeployResult:
    """Validate everything and plan, then build, measure and report inside a run folder."""
    def say(message: str) -> None:
        log.info(message)  # deploy.log keeps every step, whatever the console shows
        if progress is not None:
            progress(message)

    prepared = _prepare(request, say, task or _no_task, probe_targets=not dry_run)  # raises before any folder exists
    if show is not None:
        show(prepared.plan.table())
    if dry_run:
        return DeployResult(run_dir=None, report={"plan": prepared.plan.to_dict(), "significance": prepared.significance.to_dict()})
    if folder is None:
        folder = RunFolder.create(Path(request.output), Path(request.model).stem, prepared.profile.name)
        folder.write_json(REQUEST_FILE, asdict(request))
    handler = folder.attach_log(logging.getLogger("edgecompress"))  # pipeline steps and board progress
    step = "start"
    try:
        say(f"Run folder: {folder.path}")
        step = "analysis"
        _write_analysis(prepared, folder)
        step = "reference"
        reference = _keras_reference(prepared, folder)
        step = "export"
        artifacts = _export_artifacts(prepared, folder, say)
        step = "micro"
        micro = _micro_build(prepared, folder, artifacts, say)
        artifacts = artifacts + _firmware_artifacts(folder, micro)
        step = "measure"
        measurements = _measure(prepared, folder, artifacts, say)
        step = "report"
        _write_report(prepared, folder, artifacts, measurements, reference, micro)
        from edgecompress.reporting import write_all

        report = write_all(folder.path).report  # report.md, report.html and the plots, from report.json
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
        logging.getLogger("edgecompress").removeHandler(handler)
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
    significance: Any  # analysis.SignificanceProfile
    plan: Any  # compression.Plan
    task: TaskFactory  # a live progress display for a long step (spinner + elapsed time), or nothing


def _prepare(request: DeployRequest, say: Callable[[str], None], task: TaskFactory, *, probe_targets: bool = True) -> _Prepared:
    """Every check that can fail on user input, done before anything is written."""
    from edgecompress.data import load_dataset
    from edgecompress.model_io import load_model
    from edgecompress.profiles import load_profile

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
    from edgecompress.targets.qemu import is_qemu_spec

    if profile.device_class == "microcontroller" and any(spec != "local" and not is_qemu_spec(spec) for spec in request.targets):
        raise TargetError(
            f"Profile '{profile.name}' is a microcontroller: its deploy ends in TFLite Micro firmware "
            "(in the run folder's micro/firmware/), not an SSH push.",
            "Use --target qemu to run the firmware on an emulated board, or --target local (the int8 model is checked "
            "on this machine); then flash micro/firmware/ with your board's toolchain.",
        )
    if profile.device_class != "microcontroller" and any(is_qemu_spec(spec) for spec in request.targets):
        raise TargetError(f"--target qemu emulates microcontroller boards; profile '{profile.name}' is a {profile.device_class}.",
                          "Use a microcontroller profile (arduino-nano-33-ble, stm32h7, or your own Cortex-M profile).")
    if profile.device_class == "microcontroller":
        from edgecompress.micro.emulated import check_firmware_tools

        check_firmware_tools(profile, request.targets, request.micro)  # toolchain and TFLM sources, before training
    significance, plan = _significance_and_plan(request, profile, loaded, dataset, say, task)
    targets, probes = _connect_targets(request, say) if probe_targets else ([], {})
    return _Prepared(request, profile, loaded, dataset, targets, probes, significance, plan, task)


def _significance_and_plan(
    request: DeployRequest, profile: Any, loaded: Any, dataset: Any, say: Callable[[str], None], task: TaskFactory
) -> tuple[Any, Any]:
    """TwoNN significance of every layer, then the per-layer plan; a budget miss stops here, before training."""
    from edgecompress._tf import quiet_native_output
    from edgecompress.analysis import analyze_model
    from edgecompress.compression import baseline_plan, make_plan

    delta = request.delta if request.delta is not None else profile.compression.significance_delta
    say(f"Measuring layer significance ({request.method}, delta {delta:g}, {min(request.id_samples, len(dataset.x_train))} samples)")
    with task("Measuring layer significance"), quiet_native_output():
        significance = analyze_model(
            loaded.model, dataset.x_train, method=request.method, delta=delta, n_samples=request.id_samples, seed=request.seed
        )
    significant = [layer.name for layer in significance.layers if layer.significant]
    say(f"Significant layers: {', '.join(significant) or 'none'}")
    if request.recipe:
        plan = baseline_plan(request.recipe, loaded.model, significance=significance)
    else:
        plan = make_plan(profile, loaded.model, significance)
    say(f"Plan '{plan.strategy}': {plan.description}; export {plan.export_mode}, about {plan.estimated_bytes:,} bytes bit-packed")
    return significance, plan


def _write_analysis(prepared: _Prepared, folder: RunFolder) -> None:
    if folder.done("analysis"):
        return
    written = prepared.significance.write(folder.path)
    folder.write_json(PLAN_FILE, prepared.plan.to_dict())
    folder.mark_done("analysis", {"significance": written["json"].name, "plan": PLAN_FILE})


def _connect_targets(request: DeployRequest, say: Callable[[str], None]) -> tuple[list[Any], dict[str, Any]]:
    """Build every board (fleet files expanded) and probe them all in parallel before anything is built."""
    from edgecompress.targets.fleet import fleet_targets, probe_fleet

    def board_progress(line: str) -> None:
        """What the runner on a board reports while it works: shown indented, and kept in deploy.log."""
        say(f"  {line}")

    targets = fleet_targets(request.targets, **request.target_options, progress=board_progress)
    try:
        probes = probe_fleet(targets)
        for name, probe in probes.items():
            if isinstance(probe, EdgeCompressError):
                probe.problem = f"Board '{name}': {probe.problem}"
                raise probe
            say(f"Target {name}: {_probe_line(probe)}")
    except BaseException:
        for target in targets:
            target.close()
        raise
    return targets, probes


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
    import numpy as np

    from edgecompress._tf import quiet_native_output
    from edgecompress.export import to_tflite

    profile, data = prepared.profile, prepared.dataset
    ptq = profile.compression.ptq
    io_dtype = profile.compression.io_dtype
    plan = [(BASELINE, "float32", "float32", PTQ_DESCRIPTIONS["float32"] + " (baseline)")]
    if ptq != "float32":
        plan.append((f"ptq-{ptq}", ptq, io_dtype if ptq == "int8" else "float32", PTQ_DESCRIPTIONS[ptq]))
    rng = np.random.default_rng(prepared.request.seed)
    calibration = data.x_train[rng.permutation(len(data.x_train))[:CALIBRATION_SAMPLES]]
    artifacts = []
    for name, mode, io, description in plan:
        path = folder.sub("artifacts", f"{name}.tflite")
        if not (folder.done(f"artifact:{name}") and path.exists()):
            say(f"Converting {name}: {description}")
            with quiet_native_output((1, 2)):  # the converter prints MLIR notices; real failures come back as ModelError
                blob = to_tflite(prepared.loaded.model, mode=mode, representative=calibration, io_dtype=io)
            write_atomically(path, blob)
            folder.mark_done(f"artifact:{name}", {"mode": mode, "io_dtype": io})
        artifacts.append(Artifact(name=name, kind=mode, description=description, path=path))
    if prepared.plan.needs_training:
        artifacts.extend(_compressed_artifacts(prepared, folder, calibration, say))
    return artifacts


def _compressed_artifacts(prepared: _Prepared, folder: RunFolder, calibration: Any, say: Callable[[str], None]) -> list[Artifact]:
    """Fine-tune the model as the plan says, then export it to TFLite (and ONNX, verified)."""
    from edgecompress._tf import keras, quiet_native_output
    from edgecompress.compression import DEFAULT_EPOCHS, FineTuning, apply_plan
    from edgecompress.export import to_onnx, to_tflite, verify_onnx

    plan, request = prepared.plan, prepared.request
    name = plan.strategy
    keras_path = folder.sub("artifacts", f"{name}.keras")  # the fine-tuned model, so --resume need not retrain
    if folder.done(f"trained:{name}") and keras_path.exists():
        model = keras().models.load_model(keras_path, compile=False)
        trained = folder.done(f"trained:{name}")
    else:
        epochs = request.epochs or DEFAULT_EPOCHS
        say(f"Fine-tuning '{name}' ({epochs} epochs per stage max, early stopping, seed {request.seed})")
        with prepared.task(f"Fine-tuning '{name}'"), quiet_native_output():
            compressed = apply_plan(plan, prepared.loaded.model, prepared.dataset, settings=FineTuning(epochs=epochs, seed=request.seed))
        model = compressed.model
        model.save(keras_path)
        trained = {"stages": compressed.stages, "kernel_values": compressed.kernel_values}
        folder.write_json("training.json", trained)
        folder.mark_done(f"trained:{name}", trained)
    artifacts = []
    path = folder.sub("artifacts", f"{name}.tflite")
    description = f"{plan.description} ({plan.export_mode} export)"
    if not (folder.done(f"artifact:{name}") and path.exists()):
        say(f"Converting {name}: {plan.export_mode}")
        with quiet_native_output((1, 2)):
            blob = to_tflite(model, **_tflite_options(plan, calibration))
        write_atomically(path, blob)
        folder.mark_done(f"artifact:{name}", {"mode": plan.export_mode, "io_dtype": plan.io_dtype, "float_layers": plan.float_layers})
    artifacts.append(Artifact(name=name, kind=plan.export_mode, description=description, path=path))
    if request.onnx:
        onnx_path = folder.sub("artifacts", f"{name}.onnx")
        if not (folder.done(f"artifact:{name}.onnx") and onnx_path.exists()):
            say(f"Exporting {name} to ONNX and checking it against Keras in onnxruntime")
            with prepared.task(f"Exporting {name} to ONNX"), quiet_native_output():
                to_onnx(model, onnx_path)
                check = verify_onnx(model, onnx_path, prepared.dataset.x_test[:256])
            folder.mark_done(f"artifact:{name}.onnx", {"verification": check})
        check = folder.done(f"artifact:{name}.onnx")["verification"]
        artifacts.append(Artifact(name=f"{name}-onnx", kind="float32", description=f"{plan.description} (ONNX, float)",
                                  path=onnx_path, extra={"onnx_verification": check}))
    return artifacts


def _tflite_options(plan: Any, calibration: Any) -> dict[str, Any]:
    """The export the plan asks for, its float layers included (the exporter checks they really stay float)."""
    return {
        "mode": plan.export_mode,
        "representative": calibration,
        "io_dtype": plan.io_dtype,
        "float_layers": list(plan.float_layers),
    }


def _measure(prepared: _Prepared, folder: RunFolder, artifacts: list[Artifact], say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Run every artifact on every target; each finished measurement is kept for --resume."""
    from edgecompress.report import measurement_entry
    from edgecompress.targets import MeasureJob
    from edgecompress.targets.fleet import measure_fleet

    request = prepared.request
    eval_path = _ensure_eval_npz(prepared, folder)
    failures: list[str] = []
    for artifact in artifacts:
        pending = [t for t in prepared.targets if t.accepts(artifact.path) and not folder.done(_measure_key(artifact, t))]
        if pending:
            names = ", ".join(t.name for t in pending)
            how = (f"{request.warmup} warm-up + {request.runs} timed runs" if artifact.path.suffix in (".tflite", ".onnx")
                   else "every evaluation image; executed instructions counted")
            say(f"Measuring {artifact.name} on {names} ({how})")
            job = MeasureJob(model=artifact.path, eval_data=eval_path,
                             warmup=request.warmup, runs=request.runs, threads=request.threads)
            with prepared.task(f"Measuring {artifact.name} on {names}"):
                fleet = measure_fleet(pending, job)
            for outcome in fleet.boards:
                if outcome.measurement is not None:
                    _keep_measurement(folder, artifact, outcome.target, outcome.measurement)
                else:
                    failures.append(f"{artifact.name} on {outcome.target}: {outcome.error}")
    if failures:
        raise TargetError(
            "Some measurements could not be completed: " + "; ".join(failures),
            "Fix the board(s) named above; every measurement that did finish is kept.",
        )
    entries = []
    for target in prepared.targets:
        for artifact in (a for a in artifacts if target.accepts(a.path)):
            stem = _measure_stem(artifact, target)
            saved = folder.read_json(f"measurements/{stem}.json")
            entries.append(measurement_entry(artifact.name, target.name, saved["result"], f"measurements/{stem}.samples.json"))
    return entries


def _measure_key(artifact: Artifact, target: Any) -> str:
    return f"measure:{artifact.name}@{target.name}"


def _measure_stem(artifact: Artifact, target: Any) -> str:
    return f"{artifact.name}@{_safe(target.name)}"


def _keep_measurement(folder: RunFolder, artifact: Artifact, target_name: str, measurement: Any) -> None:
    """Store the runner's JSON, its raw latency samples and its log, then mark the step done."""
    stem = f"{artifact.name}@{_safe(target_name)}"
    result = measurement.result
    samples = result.get("latency_ms", {}).get("samples")
    folder.write_json(f"measurements/{stem}.samples.json", samples or [])
    folder.write_json(f"measurements/{stem}.json", {"target": target_name, "device": measurement.device, "result": result})
    if measurement.log:
        folder.sub("measurements", f"{stem}.log").write_text(measurement.log)
    folder.mark_done(f"measure:{artifact.name}@{target_name}", f"measurements/{stem}.json")


def _ensure_eval_npz(prepared: _Prepared, folder: RunFolder) -> Path:
    """The evaluation set exactly as every device sees it (written once per run)."""
    from edgecompress.data import write_eval_npz

    path = folder.path / EVAL_FILE
    if not path.exists():
        write_eval_npz(prepared.dataset, path, output_kind=prepared.loaded.output_kind)
    return path


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _micro_build(prepared: _Prepared, folder: RunFolder, artifacts: list[Artifact], say: Callable[[str], None]) -> dict[str, Any] | None:
    """Microcontroller profiles end in a TFLite Micro firmware project built from the final int8 artifact."""
    if prepared.profile.device_class != "microcontroller":
        return None
    done = folder.done("micro")
    if done:
        return done
    from edgecompress.micro import build_micro
    from edgecompress.micro.emulated import firmware_options

    eval_path = _ensure_eval_npz(prepared, folder)
    final = next(a for a in reversed(artifacts) if a.path.suffix == ".tflite" and a.kind == "int8")
    say(f"Building TFLite Micro firmware from {final.name}: measuring the arena in the TFLM interpreter, compressing tables, "
        "compiling and linking the firmware")
    with prepared.task(f"TFLite Micro build of {final.name}"):
        build = build_micro(final.path.read_bytes(), profile=prepared.profile, eval_npz=eval_path,
                            out_dir=(folder.path / "micro").resolve(), name=_safe(final.name).replace("-", "_"),
                            firmware_options=firmware_options(prepared.request.targets, prepared.request.micro))
    run_root = str((folder.path).resolve()) + "/"
    # paths relative to the run folder: it is renamed when the run finishes
    summary = json.loads(json.dumps({"artifact": final.name, **build.to_dict()}, default=str).replace(run_root, ""))
    folder.mark_done("micro", summary)
    return summary


def _firmware_artifacts(folder: RunFolder, micro: dict[str, Any] | None) -> list[Artifact]:
    """The linked firmware image, measured by the emulated-board targets (the others do not accept it)."""
    from edgecompress.micro.emulated import firmware_artifact

    found = firmware_artifact(folder.path, micro)
    return [Artifact(**found)] if found else []


def _write_report(
    prepared: _Prepared,
    folder: RunFolder,
    artifacts: list[Artifact],
    measurements: list[dict[str, Any]],
    reference: dict[str, Any],
    micro: dict[str, Any] | None = None,
) -> dict[str, Any]:
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
        micro=micro,
        significance=prepared.significance.to_dict(),
        plan=prepared.plan.to_dict(),
    )
    folder.write_json(REPORT_FILE, report)
    return report


__all__ = ["DeployRequest", "DeployResult", "deploy", "resume", "run", "TargetError"]
