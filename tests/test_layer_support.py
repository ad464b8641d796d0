"""A model the exporter cannot carry is refused when it is loaded or planned, never after training.

The table in edgecompress/layer_support.py is a set of measured claims; the second half of this
file measures each one again with the real converters, so the table cannot drift from the
pinned TensorFlow / tf2onnx. Rows that share a gap (one converter failure, e.g. every recurrent
layer's time loop) are measured once, on the row listed first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgecompress
from edgecompress._tf import keras
from edgecompress.cli import main
from edgecompress.errors import ModelError
from edgecompress.layer_support import ACTIVATION_GAPS, LAYER_GAPS, export_gaps
from edgecompress.model_safety import LayerRecord

pytestmark = pytest.mark.slow  # deploys, fine-tunes, SSH boards or firmware builds: `pytest -m 'not slow'` skips them

ROWS = np.random.default_rng(0).random((8, 8, 8, 1)).astype("float32")


def _classifier(*body, batch=None):
    """(8, 8, 1) digits in, 10 scores out, with `body` in between -- the shape deploy expects."""
    k = keras()
    return k.Sequential(
        [
            k.layers.Input((8, 8, 1), batch_size=batch),
            *body,
            k.layers.Flatten(),
            k.layers.Dense(10, activation="softmax"),
        ]
    )


def _trained(model):
    """`model` fitted briefly on scikit-learn's digits (0-1 pixels): deploy refuses a baseline at chance."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit((digits.images / 16.0)[..., None], digits.target, epochs=5, verbose=0)
    return model


def _sequence(layer):
    """Rows of the image as a sequence, read by a recurrent layer."""
    return _classifier(keras().layers.Reshape((8, 8)), layer)


def test_deploy_dry_run_refuses_an_lstm_before_anything_is_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "lstm.h5"
    _sequence(keras().layers.LSTM(8, name="lstm")).save(path)
    code = main(
        [
            "deploy",
            "--data",
            "sklearn:digits",
            "--profile",
            "rpi4",
            str(path),
            "--dry-run",
            "--output",
            str(tmp_path / "runs"),
        ]
    )
    err = " ".join(capsys.readouterr().err.split())
    assert code == ModelError.exit_code
    assert "Traceback" not in err and "What to do:" in err
    assert "layer 'lstm' (LSTM) cannot be converted to TFLite unless unrolled" in err
    assert "unroll=True" in err  # what to do instead
    assert "Measuring layer significance" not in err  # refused at load, before the analysis
    assert not (tmp_path / "runs").exists()


def test_a_recurrent_layer_inside_a_wrapper_is_named(tmp_path: Path) -> None:
    k = keras()
    path = tmp_path / "bidirectional.keras"
    _sequence(k.layers.Bidirectional(k.layers.GRU(4, name="gru"), name="both_ways")).save(path)
    with pytest.raises(ModelError, match=r"layer 'gru' \(GRU\) in 'both_ways' \(Bidirectional\) cannot be converted"):
        edgecompress.model_io.load_model(path)


def test_analysis_alone_may_load_what_deploy_cannot_export(tmp_path: Path) -> None:
    path = tmp_path / "lstm.h5"
    _sequence(keras().layers.LSTM(8)).save(path)
    assert edgecompress.model_io.load_model(path, for_export=False).n_outputs == 10


def test_an_activation_failing_only_in_onnx_is_refused_at_plan_time(tmp_path: Path) -> None:
    """ONNX is exported only for a plan that trains: known once the plan is, still before training."""
    path = tmp_path / "gelu.h5"
    _trained(_classifier(keras().layers.Conv2D(4, 3, activation="gelu", name="conv"))).save(path)
    with pytest.raises(
        ModelError, match=r"layer 'conv' \(Conv2D\) with activation 'gelu' exports to an ONNX graph"
    ) as info:
        edgecompress.deploy(path, "rpi4", recipe="cqat", dry_run=True, output=tmp_path / "runs")
    assert "in ONNX export, which this run's profile and plan use" in info.value.problem
    assert "swish" in info.value.fix
    assert not (tmp_path / "runs").exists()
    plain = edgecompress.deploy(path, "rpi4", recipe="ptq-int8", dry_run=True, output=tmp_path / "runs")
    assert plain.run_dir is None  # a plan without ONNX export takes the model


def test_export_gaps_depend_on_the_routes_the_batch_and_the_config() -> None:
    groups = LayerRecord("groups", "GroupNormalization", {})
    gelu = LayerRecord("dense", "Dense", {"activation": "gelu"})
    unrolled = LayerRecord("lstm", "LSTM", {"unroll": True})
    assert export_gaps([gelu, unrolled], {"float32", "int8"}) == []
    found = export_gaps([groups, gelu], {"float32", "int8", "onnx"})
    assert [(layer.name, failing) for layer, _, failing in found] == [
        ("groups", ["float32", "int8"]),
        ("dense", ["onnx"]),
    ]
    assert export_gaps([groups], {"float32", "int8"}, free_batch=False) == []


# --- the table, measured again ---------------------------------------------------------------

#: one tiny model per distinct gap of the table, under the name of the row listed first with it
SAMPLES = {
    "LSTM": lambda: _sequence(keras().layers.LSTM(4)),
    "ConvLSTM2D": lambda: _classifier(keras().layers.Reshape((8, 8, 1, 1)), keras().layers.ConvLSTM2D(2, (3, 1))),
    "MaxPooling3D": lambda: _classifier(keras().layers.Reshape((8, 8, 1, 1)), keras().layers.MaxPooling3D((2, 2, 1))),
    "GroupNormalization": lambda: _classifier(keras().layers.Conv2D(4, 1), keras().layers.GroupNormalization(2)),
    "Discretization": lambda: _classifier(keras().layers.Discretization(bin_boundaries=[0.25, 0.5, 0.75])),
    "RandomCrop": lambda: _classifier(keras().layers.RandomCrop(6, 6)),
    "gelu": lambda: _classifier(keras().layers.Conv2D(4, 1, activation="gelu")),
}


def _distinct_gaps() -> list[tuple[str, int]]:
    """(row, index of its gap) for the first row holding each gap object."""
    seen, rows = set(), []
    for table in (LAYER_GAPS, ACTIVATION_GAPS):
        for name, gaps in table.items():
            for index, gap in enumerate(gaps):
                if id(gap) not in seen:
                    seen.add(id(gap))
                    rows.append((name, index))
    return rows


GAPS = _distinct_gaps()


def _gap(name: str, index: int = 0):
    return (LAYER_GAPS.get(name) or ACTIVATION_GAPS[name])[index]


def test_every_distinct_gap_has_a_sample() -> None:
    assert {name for name, _ in GAPS} == set(SAMPLES)


def _export(model, route: str) -> None:
    """Take one route as deploy does: convert, then run the file and compare it with Keras."""
    from edgecompress.export import to_onnx, to_tflite, verify_onnx, verify_tflite

    if route == "onnx":
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            onnx_path = to_onnx(model, Path(folder) / "model.onnx")
            verify_onnx(model, onnx_path, ROWS)
        return
    verify_tflite(model, to_tflite(model, mode=route, representative=ROWS), ROWS)


@pytest.mark.parametrize(("name", "index"), GAPS, ids=[f"{name}-{index}" for name, index in GAPS])
def test_each_gap_really_fails_its_route(name: str, index: int) -> None:
    gap = _gap(name, index)
    route = "float32" if "float32" in gap.fails else min(gap.fails)
    with pytest.raises((ModelError, RuntimeError)):
        _export(SAMPLES[name](), route)


@pytest.mark.parametrize("name", ["LSTM", "GroupNormalization", "gelu"])
def test_a_refused_layer_still_exports_along_its_other_routes(name: str) -> None:
    """Refusals are per route: a row must not refuse what works."""
    failing = set().union(*(gap.fails for gap in (LAYER_GAPS.get(name) or ACTIVATION_GAPS[name])))
    working = sorted({"float32", "int8", "onnx"} - failing)
    assert working
    for route in working:
        _export(SAMPLES[name](), route)


def test_an_unrolled_lstm_and_a_fixed_batch_group_normalization_convert_and_are_accepted(tmp_path: Path) -> None:
    """The conditions on a row are measured too: they must not refuse what converts."""
    k = keras()
    unrolled = _sequence(k.layers.LSTM(4, unroll=True))
    fixed = _classifier(k.layers.Conv2D(4, 1), k.layers.GroupNormalization(2), batch=1)
    for model, rows in ((unrolled, ROWS), (fixed, ROWS[:1])):
        from edgecompress.export import to_tflite, verify_tflite

        assert verify_tflite(model, to_tflite(model, mode="int8", representative=rows), rows)["ok"]
        path = tmp_path / f"{model.name}.h5"
        model.save(path)
        assert edgecompress.model_io.load_model(path).n_outputs == 10
