"""Every check that can fail on user input, done before a run folder exists.

Profile, model, data, input scaling, the baseline's sanity, the layer significance, the
per-layer plan (which refuses a model that cannot fit the budget) and the targets (probed
in parallel) are all settled here, so bad input never leaves a run folder behind and never
costs a fine-tune.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgecompress.cache import StageCache, fingerprint_arrays
from edgecompress.errors import DataError, EdgeCompressError, TargetError
from edgecompress.pipeline.request import DeployRequest
from edgecompress.training_device import TrainingDevice, training_device

if TYPE_CHECKING:
    from edgecompress.analysis import SignificanceProfile
    from edgecompress.compression import FineTuning, Plan
    from edgecompress.data import Dataset
    from edgecompress.data.scaling import ScalingDecision
    from edgecompress.model_io import LoadedModel
    from edgecompress.profiles import Profile
    from edgecompress.targets import Target

Say = Callable[[str], None]
#: opens a live progress display for one long step: task("Fine-tuning cqat") used as a context manager
TaskFactory = Callable[[str], AbstractContextManager[Any]]


def no_task(description: str) -> AbstractContextManager[Any]:
    return contextlib.nullcontext()


@dataclass
class Prepared:
    """A request with everything it names loaded, checked and planned."""

    request: DeployRequest
    profile: Profile
    loaded: LoadedModel
    dataset: Dataset
    scaling: ScalingDecision
    reference_scores: np.ndarray  # the Keras model's scores on dataset.x_test, computed once
    targets: list[Target]
    probes: dict[str, dict[str, Any]]
    significance: SignificanceProfile
    plan: Plan
    task: TaskFactory
    cache: StageCache
    data_fingerprint: str  # a content hash of the scaled train/test arrays, labels and class names
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds of each preparation phase
    device: TrainingDevice | None = None  # where fine-tuning runs (None: the plan trains nothing)

    def close(self) -> None:
        for target in self.targets:
            target.close()


def _check_settings(request: DeployRequest, dry_run: bool) -> None:
    """Settings that cannot work are refused before anything else: timing, and a run folder's parent."""
    from edgecompress.run_folder import check_output_dir

    _check_timing(request)
    if not dry_run:
        check_output_dir(request.output)


def _check_timing(request: DeployRequest) -> None:
    """Timing settings that cannot be measured are refused before anything else."""
    import math

    wrong = [
        f"{option} {value!r} ({need})"
        for option, value, ok, need in (
            ("--runs", request.runs, isinstance(request.runs, int) and request.runs >= 1, "at least 1"),
            ("--warmup", request.warmup, isinstance(request.warmup, int) and request.warmup >= 0, "0 or more"),
            ("--rounds", request.rounds, isinstance(request.rounds, int) and request.rounds >= 1, "at least 1"),
            (
                "--cooldown",
                request.cooldown,
                isinstance(request.cooldown, (int, float))
                and math.isfinite(request.cooldown)
                and request.cooldown >= 0,
                "seconds, 0 or more",
            ),
        )
        if not ok
    ]
    if wrong:
        raise EdgeCompressError(
            f"Timing settings that cannot be measured: {'; '.join(wrong)}.",
            "Every artifact needs at least one timed run in at least one round, e.g. --runs 100 --rounds 5 "
            "(20 timed runs per artifact and round), and a board rests 0 or more seconds between rounds "
            "(--cooldown 30).",
        )


def prepare(
    request: DeployRequest,
    say: Say,
    task: TaskFactory,
    *,
    dry_run: bool = False,
    connect: bool = True,
    boards: Sequence[Target] | None = None,
) -> Prepared:
    """Load and check everything `request` names; raise an EdgeCompressError naming the fix.

    `connect=False` builds a run that will not reach its measurements here (a tune worker):
    no board is contacted. `boards` are targets already connected and probed (a tune's
    board pool): they are used as they are instead of connecting to the request's targets.
    """
    from edgecompress.layer_support import check_export_routes

    _check_settings(request, dry_run)
    clock = _PhaseClock()
    profile = _profile(request, say)
    inputs = _inputs(request, say)
    cache = StageCache.default(enabled=request.cache)
    _check_targets_suit_profile(request, profile)
    clock.lap("load")
    significance = _significance(request, profile, inputs.loaded, inputs.dataset, say, task, cache, inputs.fingerprint)
    clock.lap("significance")
    plan = _plan(request, profile, inputs.loaded, significance, say)
    check_export_routes(inputs.loaded, routes=_export_routes(request, profile, plan))  # e.g. GELU with ONNX export
    device = None
    if plan.needs_training:
        say(f"Fine-tuning budget: {finetuning_settings(request, profile).describe(len(inputs.dataset.x_train))}")
        device = training_device(request.device)  # --device gpu without a GPU stops here, before any training
        say(f"Fine-tuning on {device.describe()}")
    if dry_run:
        from edgecompress.pipeline.dry_run import check_microcontroller, check_targets

        check_targets(request, profile, say)
        check_microcontroller(request, profile, inputs.loaded, inputs.dataset, say)
    targets, probes = _boards(request, say, dry_run=dry_run, connect=connect, boards=boards)
    clock.lap("plan and targets")
    return Prepared(
        request,
        profile,
        inputs.loaded,
        inputs.dataset,
        inputs.scaling,
        inputs.reference_scores,
        targets,
        probes,
        significance,
        plan,
        task,
        cache,
        inputs.fingerprint,
        clock.laps,
        device,
    )


def _profile(request: DeployRequest, say: Say) -> Profile:
    """The request's profile with any overrides (tune's candidates), checked against the request's rule options."""
    from edgecompress.profiles import load_profile, with_overrides

    profile = load_profile(request.profile)
    if request.profile_overrides:
        profile = with_overrides(profile, request.profile_overrides)
        say(f"Profile {profile.name} with {_override_text(request.profile_overrides)}")
    say(f"Profile {profile.name}: {profile.description}")
    for warning in profile.warnings:
        logging.getLogger("edgecompress.profiles").warning(warning)
    _check_rules(request, profile)
    return profile


def _boards(
    request: DeployRequest, say: Say, *, dry_run: bool, connect: bool, boards: Sequence[Target] | None
) -> tuple[list[Target], dict[str, dict[str, Any]]]:
    """The boards this run measures on and what each said when probed: none for a dry run (pipeline/dry_run.py
    checks them without connecting) or a tune worker."""
    if dry_run:
        return [], {}
    if boards is not None:
        return list(boards), {target.name: target.probe() for target in boards}
    elif connect:
        return _connect_targets(request, say)
    return [], {}


@dataclass
class _PhaseClock:
    laps: dict[str, float] = field(default_factory=dict)
    last: float = field(default_factory=time.monotonic)

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps[name] = round(now - self.last, 2)
        self.last = now


def _override_text(overrides: dict[str, Any], prefix: str = "") -> str:
    parts = []
    for key, value in overrides.items():
        parts.append(
            _override_text(value, f"{prefix}{key}.") if isinstance(value, dict) else f"{prefix}{key} = {value}"
        )
    return ", ".join(parts)


@dataclass
class _Inputs:
    """The model and data a request names, loaded, scaled and scored: independent of the profile."""

    loaded: LoadedModel
    dataset: Dataset
    scaling: ScalingDecision
    reference_scores: np.ndarray
    fingerprint: str
    lines: list[str]  # what loading them said, said again when they are reused


#: the last inputs loaded in this process: a tune driver or worker runs many trials on the same model and data
_RECENT: OrderedDict[tuple[Any, ...], _Inputs] = OrderedDict()
_RECENT_SIZE = 2
_RECENT_LOCK = threading.Lock()


def _inputs(request: DeployRequest, say: Say) -> _Inputs:
    """Model, data, scaling and the baseline's scores; loaded once per process for the same files and options.

    The key holds the model file's size and modification time, so a model changed on disk is loaded again.
    """
    from edgecompress.model_io import load_model

    path = Path(request.model).expanduser()
    try:
        stat = path.stat()
        stamp: tuple[Any, ...] = (stat.st_size, stat.st_mtime_ns)
    except OSError:
        stamp = ()
    key = (
        str(path),
        stamp,
        request.data,
        tuple(request.classes or ()),
        request.scaling,
        request.resize,
        request.max_eval,
        request.seed,
    )
    with _RECENT_LOCK:
        found = _RECENT.get(key) if stamp else None
        if found is None:
            lines: list[str] = []

            def tell(message: str) -> None:
                lines.append(message)
                say(message)

            loaded = load_model(request.model)
            _check_model_unchanged(request, loaded)
            tell(
                f"Model {loaded.path.name}: {loaded.n_params:,} parameters, input {loaded.input_shape}, "
                f"{loaded.n_outputs} outputs ({loaded.output_kind})"
            )
            dataset, scaling, scores = _data_for(request, loaded, tell)
            fingerprint = fingerprint_arrays(
                dataset.x_train,
                dataset.y_train,
                dataset.x_test,
                dataset.y_test,
                extra=[dataset.class_names, dataset.scaling],
            )
            found = _Inputs(loaded, dataset, scaling, scores, fingerprint, lines)
            if stamp:
                _RECENT[key] = found
                while len(_RECENT) > _RECENT_SIZE:
                    _RECENT.popitem(last=False)
            return found
        _RECENT.move_to_end(key)
    _check_model_unchanged(request, found.loaded)
    for line in found.lines:
        say(line)
    return found


def _check_model_unchanged(request: DeployRequest, loaded: LoadedModel) -> None:
    if request.model_sha256 is not None and loaded.sha256 != request.model_sha256:
        raise EdgeCompressError(
            f"The model {loaded.path} changed since this run started (SHA-256 {loaded.sha256[:12]}..., "
            f"the run used {request.model_sha256[:12]}...).",
            "Start a new run with `edgecompress deploy` for the new model, or restore the original file to resume.",
        )


def _check_rules(request: DeployRequest, profile: Profile) -> None:
    """Impossible acceptance rules are refused now, not after the measurements they would judge."""
    from edgecompress.decision.rules import resolve

    resolve(profile.acceptance, request.acceptance)


def _data_for(request: DeployRequest, loaded: LoadedModel, say: Say) -> tuple[Dataset, ScalingDecision, np.ndarray]:
    """The data scaled as the model expects, that decision, and the baseline's scores (checked against chance)."""
    from edgecompress.data import load_dataset
    from edgecompress.data.scaling import (
        FALLBACK,
        ScalingDecision,
        decide_scaling,
        require_better_than_chance,
        rescaled,
    )
    from edgecompress.evaluation import keras_scores, predictions_from_scores

    if request.scaling is not None:
        decision = ScalingDecision(request.scaling, "option", f"--scaling {request.scaling}")
    elif loaded.scaling is not None:
        decision = ScalingDecision(
            loaded.scaling, "model", f"the model's {loaded.scaling_evidence} layer rescales pixels itself"
        )
    else:
        decision = ScalingDecision(FALLBACK, "data", "to be decided from data")
    dataset = load_dataset(
        request.data,
        input_shape=loaded.input_shape,
        classes=request.classes,
        scaling=decision.scaling,
        seed=request.seed,
        resize=request.resize,
        max_test=request.max_eval,
    )
    _check_data_fits_model(dataset, loaded)

    def predict(x: np.ndarray) -> np.ndarray:
        return predictions_from_scores(keras_scores(loaded.model, x), loaded.output_kind)

    if decision.how == "data":
        decision = decide_scaling(dataset, predict, seed=request.seed)
        dataset = rescaled(dataset, decision.scaling)
    say(
        f"Data {dataset.source}: {len(dataset.x_train)} train / {len(dataset.x_test)} test images, classes "
        f"{', '.join(dataset.class_names)}, scaled {dataset.scaling} ({decision.reason})"
    )
    scores = keras_scores(loaded.model, dataset.x_test)
    accuracy = float(np.mean(predictions_from_scores(scores, loaded.output_kind) == dataset.y_test))
    require_better_than_chance(accuracy, dataset.y_test, dataset.class_names, decision)
    return dataset, decision, scores


def _check_data_fits_model(dataset: Dataset, loaded: LoadedModel) -> None:
    n_classes = len(dataset.class_names)
    fits = loaded.n_outputs == n_classes or (loaded.n_outputs == 1 and n_classes == 2)
    if not fits:
        raise DataError(
            f"The data has {n_classes} classes ({', '.join(dataset.class_names)}) but the model outputs "
            f"{loaded.n_outputs} scores.",
            "Pick the classes the model was trained on with --classes (in the model's output order), "
            "or pass the model trained for this data.",
        )


def _check_targets_suit_profile(request: DeployRequest, profile: Profile) -> None:
    """Microcontrollers run firmware on an emulated board (qemu) or the int8 model here; boards run the runner.
    The firmware toolchain and TFLM sources are checked now, before anything is trained."""
    from edgecompress.targets.qemu import is_qemu_spec

    mcu = profile.device_class == "microcontroller"
    if mcu and any(spec != "local" and not is_qemu_spec(spec) for spec in request.targets):
        raise TargetError(
            f"Profile '{profile.name}' is a microcontroller: its deploy ends in TFLite Micro firmware "
            "(in the run folder's micro/firmware/), not an SSH push.",
            "Use --target qemu to run the firmware on an emulated board, or --target local (the int8 model is checked "
            "on this machine); then flash micro/firmware/ with your board's toolchain.",
        )
    if not mcu and any(is_qemu_spec(spec) for spec in request.targets):
        raise TargetError(
            f"--target qemu emulates microcontroller boards; profile '{profile.name}' is a {profile.device_class}.",
            "Use a microcontroller profile (arduino-nano-33-ble, stm32h7, or your own Cortex-M profile).",
        )
    if mcu:
        from edgecompress.micro.emulated import check_firmware_tools

        check_firmware_tools(profile, request.targets, request.micro)


def _significance(
    request: DeployRequest,
    profile: Profile,
    loaded: LoadedModel,
    dataset: Dataset,
    say: Say,
    task: TaskFactory,
    cache: StageCache,
    fingerprint: str,
) -> SignificanceProfile:
    """TwoNN (or PCA) significance of every layer, reused from the cache when the same was measured before."""
    from edgecompress._tf import quiet_native_output
    from edgecompress.analysis import analyze_model

    delta = request.delta if request.delta is not None else profile.compression.significance_delta
    # delta only thresholds the measured IDs (SignificanceProfile.with_delta), so it is not part of the key
    key = cache.key(
        "significance",
        model=loaded.sha256,
        data=fingerprint,
        method=request.method,
        samples=request.id_samples,
        seed=request.seed,
    )
    hit = cache.lookup("significance", key)
    stored = _stored_significance(hit)
    if hit is not None and stored is not None:
        say(f"Reusing the layer significance from the cache (measured {hit.meta.get('stored', '?')}, key {key[:12]})")
        significance = stored.with_delta(delta)
    else:
        samples = min(request.id_samples, len(dataset.x_train))
        say(f"Measuring layer significance ({request.method}, delta {delta:g}, {samples} samples)")
        with task("Measuring layer significance"), quiet_native_output():
            significance = analyze_model(
                loaded.model,
                dataset.x_train,
                method=request.method,
                delta=delta,
                n_samples=request.id_samples,
                seed=request.seed,
            )
        document = json.dumps(significance.to_dict())

        def write(folder: Path) -> None:
            (folder / "significance.json").write_text(document)

        cache.store("significance", key, write, {})
    significant = [layer.name for layer in significance.layers if layer.significant]
    say(f"Significant layers: {', '.join(significant) or 'none'}")
    return significance


def _plan(
    request: DeployRequest, profile: Profile, loaded: LoadedModel, significance: SignificanceProfile, say: Say
) -> Plan:
    """The per-layer plan: the profile's, or a named recipe; a budget miss stops here, before training."""
    from edgecompress.compression import baseline_plan, make_plan

    if request.recipe:
        plan = baseline_plan(request.recipe, loaded.model, significance=significance)
    else:
        plan = make_plan(profile, loaded.model, significance)
    say(
        f"Plan '{plan.strategy}': {plan.description}; export {plan.export_mode}, about {plan.estimated_bytes:,} bytes bit-packed"
    )
    return plan


def _export_routes(request: DeployRequest, profile: Profile, plan: Plan) -> set[str]:
    """Every converter route this run takes: the float32 baseline, the profile's PTQ, the plan's export."""
    routes: set[str] = {"float32", profile.compression.ptq}
    if plan.needs_training:
        routes |= {plan.export_mode, *(["onnx"] if request.onnx else [])}
    return routes


def _stored_significance(hit: Any) -> SignificanceProfile | None:
    """A cached significance document, or None when the entry vanished or is unreadable (a miss)."""
    from edgecompress.analysis import SignificanceProfile

    if hit is None:
        return None
    try:
        return SignificanceProfile.from_dict(json.loads(hit.file("significance.json").read_text()))
    except (OSError, ValueError, EdgeCompressError):
        return None


def finetuning_settings(request: DeployRequest, profile: Profile, say: Say | None = None) -> FineTuning:
    """The fine-tuning budget: the request's figures, else the profile's."""
    from edgecompress.compression import DEFAULT_EPOCHS, FineTuning

    compression = profile.compression
    return FineTuning(
        steps=request.finetune_steps or compression.finetune_steps,
        minutes=request.finetune_minutes if request.finetune_minutes is not None else compression.finetune_minutes,
        epochs=request.epochs or DEFAULT_EPOCHS,
        seed=request.seed,
        say=say,
    )


def _connect_targets(request: DeployRequest, say: Say) -> tuple[list[Target], dict[str, dict[str, Any]]]:
    """Build every board (fleet files expanded) and probe them all in parallel before anything is built."""
    from edgecompress.targets.fleet import fleet_targets, probe_fleet

    def board_progress(line: str) -> None:
        """What the runner on a board reports while it works: shown indented, and kept in deploy.log."""
        say(f"  {line}")

    targets = fleet_targets(request.targets, **request.target_options, progress=board_progress)
    probes: dict[str, dict[str, Any]] = {}
    try:
        for name, probe in probe_fleet(targets).items():
            if isinstance(probe, EdgeCompressError):
                probe.problem = f"Board '{name}': {probe.problem}"
                raise probe
            probes[name] = probe
            say(f"Target {name}: {_probe_line(probe)}")
    except BaseException:
        for target in targets:
            target.close()
        raise
    return targets, probes


def _probe_line(probe: dict[str, Any]) -> str:
    platform = probe.get("platform", {})
    runtimes = ", ".join(f"{k} {v}" for k, v in (probe.get("runtimes") or {}).items() if v) or "no runtime"
    return f"{platform.get('machine', '?')} {platform.get('system', '')}, Python {probe.get('python', '?')}, {runtimes}"
