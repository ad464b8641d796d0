"""edgecompress hides no GPU and leaves the caller's environment as it found it.

`import edgecompress` changes nothing in os.environ; TensorFlow (with tf-keras behind
`tf.keras`) and tfmot are imported on first use with TF_USE_LEGACY_KERAS set for the import
only. (TensorFlow's own import sets a few variables of its own, TF2_BEHAVIOR and the like; those
are TensorFlow's doing and stay.) Fine-tuning runs where `--device` says: auto takes a GPU when TensorFlow sees one (on
this CPU machine: the CPU), gpu without one stops with one paragraph before any training.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgecompress.cli import main
from edgecompress.errors import EdgeCompressError
from edgecompress.pipeline.request import DeployRequest
from edgecompress.training_device import training_device
from edgecompress.tune.request import TuneRequest

ROOT = Path(__file__).resolve().parents[1]
#: what edgecompress used to set, or sets while TensorFlow is imported
OURS = {"CUDA_VISIBLE_DEVICES", "TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL"}

PROBE = """
import json, os, sys
before = dict(os.environ)
import edgecompress
after_import = dict(os.environ)
from edgecompress._tf import keras, tensorflow, tfmot
tf = tensorflow()
mot = tfmot()
after_use = dict(os.environ)
changed = lambda now: sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
print(json.dumps({
    "import": changed(after_import),
    "use": changed(after_use),
    "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
    "tf_keras": tf.keras.layers.Dense is keras().layers.Dense,
    "tfmot_keras": mot.quantization.keras.quantize_annotate_layer(keras().layers.Dense(2)).__class__.__module__,
    "compat_v1_keras": tf.compat.v1.keras.layers.Dense is keras().layers.Dense,
}))
"""


def _probe(env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_and_using_tensorflow_leaves_the_environment_alone() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "TF_USE_LEGACY_KERAS")}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    seen = _probe(env)
    assert seen["import"] == []  # importing edgecompress changes nothing at all
    assert OURS.isdisjoint(seen["use"])  # nor does using TensorFlow through it, beyond TensorFlow's own
    assert seen["cuda"] is None  # GPUs are not hidden
    assert seen["tf_keras"] and seen["compat_v1_keras"]  # still tf-keras behind every tf.keras
    assert seen["tfmot_keras"].startswith("tensorflow_model_optimization")


def test_the_callers_own_settings_are_kept() -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "0", "TF_CPP_MIN_LOG_LEVEL": "1"}
    env.pop("TF_USE_LEGACY_KERAS", None)
    seen = _probe(env)
    assert seen["import"] == [] and OURS.isdisjoint(seen["use"]) and seen["cuda"] == "0"


def _gpus() -> int:
    from edgecompress._tf import tensorflow

    return len(tensorflow().config.list_physical_devices("GPU"))


def test_auto_and_cpu_train_on_the_cpu_here_and_gpu_is_refused_in_one_paragraph() -> None:
    if _gpus():
        pytest.skip("this machine has a GPU: auto would use it")
    assert training_device("auto").used == "cpu" and training_device("auto").tensorflow_device == "/CPU:0"
    assert training_device("cpu").to_dict()["description"].startswith("the CPU (--device cpu; TensorFlow sees no GPU")
    with pytest.raises(EdgeCompressError) as refused:
        training_device("gpu")
    assert "TensorFlow sees no GPU" in refused.value.problem and "--device auto" in refused.value.fix
    with pytest.raises(EdgeCompressError, match="not a training device"):
        training_device("tpu")


@pytest.mark.parametrize(
    ("device", "gpus", "problem"),
    [
        ("gpu", 0.0, "give each trial a GPU with --gpus-per-trial"),
        ("cpu", 1.0, "the GPUs would sit idle"),
        ("auto", -1.0, "--gpus-per-trial -1.0: 0 or more"),
    ],
)
def test_tune_refuses_a_device_its_trials_would_not_get(device: str, gpus: float, problem: str) -> None:
    request = TuneRequest(DeployRequest.build("m.h5", "rpi4", device=device), gpus_per_trial=gpus)
    with pytest.raises(EdgeCompressError, match="Impossible tune settings") as refused:
        request.check()
    assert problem in refused.value.problem
    TuneRequest(DeployRequest.build("m.h5", "rpi4", device="gpu"), gpus_per_trial=0.5).check()  # one shared GPU


@pytest.mark.slow
def test_deploy_with_device_gpu_on_a_machine_without_one_stops_before_training(
    digits_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    if _gpus():
        pytest.skip("this machine has a GPU")
    runs = tmp_path / "runs"
    args = ["deploy", "--profile", "rpi4", str(digits_model), "--data", "sklearn:digits", "--device", "gpu"]
    args += ["--output", str(runs), "--no-cache"]
    code = main(args)
    err = " ".join(capsys.readouterr().err.split())
    assert code == EdgeCompressError.exit_code
    assert "Traceback" not in err and "--device gpu asks to fine-tune on a GPU" in err and "--device auto" in err
    assert not runs.exists() or not any(runs.iterdir())  # no run folder left behind
