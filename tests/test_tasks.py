"""Tasks: how a run's task is decided, how each task's figures come from raw outputs, and its statistics.

Everything here runs without TensorFlow except the layer-significance checks at the end, which
measure TwoNN on a small Conv1D model and an autoencoder and make a plan from it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecompress.data import load_dataset, write_eval_npz
from edgecompress.errors import DataError
from edgecompress.tasks import ModelFacts, OutputSpec, task_named
from edgecompress.tasks.metrics import anomaly, fidelity, regression
from edgecompress.tasks.paired import bootstrap_auc, wilcoxon_mae

IMU = ModelFacts((128, 3), (OutputSpec("gesture", (4,), "softmax"),))
AUTOENCODER = ModelFacts((64,), (OutputSpec("reconstruction", (64,), "sigmoid"),))
REGRESSOR = ModelFacts((10,), (OutputSpec("progression", (1,), "logits"),))
DETECTOR = ModelFacts((16, 16, 3), (OutputSpec("scores", (5,), "softmax"), OutputSpec("boxes", (4,), "logits")))


def error_of(call, *args, **kwargs) -> DataError:  # noqa: ANN001
    with pytest.raises(DataError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- inputs that are not pixels --------------------------------------------------------------


def test_standardised_sensor_windows_are_given_to_the_model_as_stored(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 128, 3)).astype(np.float32) * 2.3
    np.savez(tmp_path / "imu.npz", x=x, y=rng.integers(0, 4, 60))

    data = load_dataset(tmp_path / "imu.npz", model=IMU)

    assert data.task == "classification" and data.scaling == "none" and data.pixel_factor is None
    assert any("not pixels, taken as the values the model expects" in note for note in data.notes)
    stored = {row.tobytes() for row in x}
    assert all(row.tobytes() in stored for row in np.concatenate([data.x_train, data.x_test]))
    assert "maps pixel values" in error_of(load_dataset, tmp_path / "imu.npz", model=IMU, scaling="0-1").problem


def test_class_folders_of_npy_samples_load_as_stored(tmp_path: Path) -> None:
    for name in ("circle", "shake"):
        for i in range(6):
            (tmp_path / "imu" / name).mkdir(parents=True, exist_ok=True)
            np.save(tmp_path / "imu" / name / f"{i}.npy", np.full((128, 3), -1.5 if name == "circle" else 4.0))

    data = load_dataset(tmp_path / "imu", model=ModelFacts((128, 3), (OutputSpec("p", (2,), "softmax"),)))

    assert data.class_names == ["circle", "shake"] and data.scaling == "none"
    assert set(np.unique(np.concatenate([data.x_train, data.x_test]))) == {-1.5, 4.0}


def test_a_folder_of_unlabelled_images_is_judged_in_fidelity_mode(tmp_path: Path) -> None:
    for i in range(10):
        Image.fromarray(np.full((16, 16, 3), i * 20, dtype=np.uint8)).save(tmp_path / f"{i}.png")

    data = load_dataset(tmp_path, model=DETECTOR)

    assert data.task == "fidelity" and not data.labelled and data.scaling == "0-1"
    assert data.task_decision["decided_by"] == "data" and "no labels" in data.task_decision["reason"]
    eval_file = write_eval_npz(data, tmp_path / "out" / "eval.npz", facts=DETECTOR)
    with np.load(eval_file) as saved:
        assert str(saved["output_kind"]) == "raw" and "y" not in saved.files
        assert saved["output_names"].tolist() == ["scores", "boxes"] and saved["output_sizes"].tolist() == [5, 4]


# --- the task, inferred and checked ---------------------------------------------------------


def test_float_targets_make_a_regression_and_the_diabetes_data_ships_with_scikit_learn() -> None:
    data = load_dataset("sklearn:diabetes", model=REGRESSOR)

    assert data.task == "regression" and data.y_test.shape[1:] == (1,) and data.y_test.dtype == np.float32
    assert data.describe()["counts"]["test"] == {"total": len(data.x_test)}


def test_normal_training_samples_and_mixed_test_labels_make_an_anomaly_task(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    np.savez(
        tmp_path / "sounds.npz",
        x_train=rng.random((40, 64)),
        x_test=rng.random((30, 64)),
        y_test=np.repeat([0, 1], 15),
    )

    data = load_dataset(tmp_path / "sounds.npz", model=AUTOENCODER)

    assert data.task == "anomaly" and data.labelled and data.split == "given"
    assert data.describe()["counts"]["test"] == {"normal": 15, "anomalous": 15}
    assert not data.y_train.any()
    assert "training samples are all normal" in data.task_decision["reason"]


@pytest.mark.parametrize(
    ("arrays", "facts", "task", "message"),
    [
        ({"x": np.zeros((8, 128, 3))}, IMU, "anomaly", "either reconstructs its input"),
        ({"x": np.zeros((8, 64)), "y": [0, 1, 2, 0, 1, 2, 0, 1]}, AUTOENCODER, "anomaly", "must be 0 (normal) or 1"),
        ({"x": np.zeros((8, 10)), "y": np.zeros((8, 3))}, REGRESSOR, "regression", "hold 3 value(s) per sample"),
        ({"x": np.zeros((8, 16, 16, 3))}, DETECTOR, "classification", "outputs one vector of class scores"),
        ({"x": np.zeros((8, 128, 3))}, IMU, "classification", "needs labels, and the data has none"),
        ({"x": np.zeros((8, 128, 3)), "y": np.arange(8.0) + 0.5}, IMU, None, "cannot tell what task this is"),
    ],
    ids=[
        "anomaly-not-a-reconstruction",
        "anomaly-labels",
        "regression-shape",
        "classifier-needed",
        "no-labels",
        "unclear",
    ],
)
def test_a_task_that_does_not_fit_is_refused_in_one_paragraph(
    tmp_path: Path, arrays: dict, facts: ModelFacts, task: str | None, message: str
) -> None:
    np.savez(tmp_path / "d.npz", **arrays)

    error = error_of(load_dataset, tmp_path / "d.npz", model=facts, task=task)

    assert message in error.problem and "\n" not in error.problem and error.fix


def test_a_class_index_is_checked_against_the_model_before_anything_is_sized_by_it(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((6, 128, 3)), y=[0, 1, 2, 3, 0, 401158996313])

    error = error_of(load_dataset, tmp_path / "d.npz", model=IMU, task="classification")

    assert "class index 401,158,996,313 but the model outputs 4 class scores" in error.problem


# --- figures from raw outputs ---------------------------------------------------------------


def test_regression_figures_agree_with_scikit_learn() -> None:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rng = np.random.default_rng(2)
    truth = rng.normal(size=(200, 2))
    predicted = truth + rng.normal(scale=0.3, size=truth.shape)

    scored = regression(predicted, truth, ModelFacts((3,), (OutputSpec("y", (2,), "logits"),)))

    assert scored.value == pytest.approx(mean_absolute_error(truth, predicted), abs=1e-6)
    assert scored.summary["rmse"] == pytest.approx(
        np.mean(np.sqrt(mean_squared_error(truth, predicted, multioutput="raw_values"))), abs=1e-6
    )
    assert scored.summary["r2"] == pytest.approx(r2_score(truth, predicted), abs=1e-6)
    assert len(scored.summary["per_output"]) == 2 and scored.per_sample.shape == (200,)


def test_anomaly_scores_are_reconstruction_errors_ranked_by_roc_auc() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    x = rng.random((100, 64))
    labels = np.repeat([0, 1], 50)
    reconstruction = x + rng.normal(scale=np.where(labels[:, None] == 1, 0.3, 0.1), size=x.shape)

    scored = anomaly(reconstruction, labels, x, AUTOENCODER)

    errors = np.mean((reconstruction - x) ** 2, axis=1)
    assert scored.value == pytest.approx(roc_auc_score(labels, errors), abs=1e-6) and scored.value > 0.95
    assert scored.summary["pauc"] == pytest.approx(roc_auc_score(labels, errors, max_fpr=0.1), abs=1e-6)
    assert scored.summary["score"] == "reconstruction MSE"
    scorer = ModelFacts((64,), (OutputSpec("anomaly_score", (1,), "sigmoid"),))
    own = anomaly(errors[:, None], labels, x, scorer)  # a model that outputs its own score: taken as it is
    assert own.summary["score"] == "the model's own score" and own.value == pytest.approx(scored.value)


def test_fidelity_is_measured_per_output_against_the_baseline() -> None:
    rng = np.random.default_rng(4)
    reference = np.concatenate([np.eye(5)[rng.integers(0, 5, 100)] * 0.9 + 0.02, np.ones((100, 4))], axis=1)
    candidate = reference.copy()
    candidate[:, 5:] += 0.1  # boxes: error power 1% of the signal's: exactly 20 dB
    candidate[:10, :5] = candidate[:10, :5][:, ::-1]  # ten score vectors reversed: their top-1 changes

    found = fidelity(reference.astype(np.float32), candidate.astype(np.float32), DETECTOR)

    scores, boxes = found["outputs"]
    assert boxes["sqnr_db"] == pytest.approx(20.0, abs=1e-3) and "agreement" not in boxes
    assert scores["agreement"] == pytest.approx(0.9 if np.all(reference[:10, :5].argmax(1) != 2) else 0.9, abs=0.1)
    assert found["sqnr_db"] == min(scores["sqnr_db"], boxes["sqnr_db"]) and not found["identical"]
    assert fidelity(reference, reference, DETECTOR)["identical"]


def test_paired_tests_tell_a_real_change_from_noise() -> None:
    rng = np.random.default_rng(5)
    base = np.abs(rng.normal(size=300))
    worse = wilcoxon_mae(base, base * 1.3, alpha=0.05)
    same = wilcoxon_mae(base, base + rng.normal(scale=1e-3, size=300), alpha=0.05)
    assert worse.significant and worse.change > 0 and worse.low > 0
    assert not same.significant

    labels = np.repeat([0, 1], 150)
    good = labels + rng.normal(scale=0.5, size=300)
    auc_loss = bootstrap_auc(good, labels + rng.normal(scale=2.0, size=300), labels, alpha=0.05)
    assert auc_loss is not None and auc_loss.significant and auc_loss.high < 0
    assert bootstrap_auc(good, good, np.zeros(300), alpha=0.05) is None  # one label: no AUC to compare


def test_each_task_declares_how_it_is_judged() -> None:
    regression_task, anomaly_task = task_named("regression"), task_named("anomaly")
    assert regression_task.metric is not None and not regression_task.metric.higher_is_better
    assert regression_task.metric.drop(10.0, 10.5) == pytest.approx(0.5)  # a rise of the MAE is a loss
    assert anomaly_task.metric is not None and anomaly_task.metric.drop(0.90, 0.88) == pytest.approx(2.0)
    assert task_named("fidelity").rule_defaults == {"min_sqnr_db": 20.0, "min_agreement": 0.95}
    assert [c.key for c in task_named("classification").columns][:2] == ["accuracy", "accuracy_delta_points"]
    assert "Unknown task" in error_of(task_named, "segmentation").problem


@pytest.mark.parametrize("command", ["deploy", "report", "tune"])
def test_the_task_rules_are_options_of_every_judging_command(command: str) -> None:
    import typer

    from edgecompress.cli import _mount_commands, app, rules

    if not app.registered_commands:
        _mount_commands()
    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    given = {"max_metric_drop": 2.5, "min_sqnr_db": 30.0, "min_agreement": 0.9}
    assert set(given) <= {p.name for p in click_command.params}
    assert rules.overrides(given) == given  # each reaches its acceptance field


def test_a_model_with_several_inputs_is_refused_in_one_paragraph(tmp_path: Path) -> None:
    from edgecompress._tf import keras
    from edgecompress.errors import ModelError
    from edgecompress.model_io import load_model

    k = keras()
    a, b = k.Input((4,), name="accel"), k.Input((4,), name="gyro")
    k.Model([a, b], k.layers.Dense(2)(k.layers.Concatenate()([a, b]))).save(tmp_path / "two_inputs.h5")

    with pytest.raises(ModelError) as caught:
        load_model(tmp_path / "two_inputs.h5")

    assert "takes 2 inputs (accel, gyro)" in caught.value.problem and "concatenate" in caught.value.fix
    np.savez(tmp_path / "d.npz", x0=np.zeros((4, 4)), x1=np.zeros((4, 4)))
    assert (
        "one per input of a model with several inputs"
        in error_of(load_dataset, tmp_path / "d.npz", model=REGRESSOR).problem
    )


# --- layer significance on any input --------------------------------------------------------


@pytest.mark.parametrize("kind", ["conv1d", "autoencoder"])
def test_twonn_significance_and_a_plan_come_out_of_a_conv1d_model_and_an_autoencoder(kind: str) -> None:
    from edgecompress._tf import keras
    from edgecompress.analysis import analyze_model
    from edgecompress.compression import make_plan
    from edgecompress.profiles import load_profile

    k = keras()
    k.utils.set_random_seed(0)
    if kind == "conv1d":
        layers = [k.Input((64, 3)), k.layers.Conv1D(8, 5, activation="relu"), k.layers.GlobalAveragePooling1D()]
        model = k.Sequential([*layers, k.layers.Dense(16, activation="relu"), k.layers.Dense(4, activation="softmax")])
        x = np.random.default_rng(0).normal(size=(300, 64, 3)).astype(np.float32)
    else:
        layers = [k.Input((32,)), k.layers.Dense(16, activation="relu"), k.layers.Dense(4, activation="relu")]
        model = k.Sequential([*layers, k.layers.Dense(16, activation="relu"), k.layers.Dense(32, activation="sigmoid")])
        x = np.random.default_rng(0).random((300, 32)).astype(np.float32)

    significance = analyze_model(model, x, method="twonn", delta=0.5, n_samples=300, seed=0)

    measured = [layer for layer in significance.layers if layer.id is not None]
    assert len(measured) >= 3 and all(math.isfinite(layer.id) and layer.id > 0 for layer in measured)
    plan = make_plan(load_profile("arduino-nano-33-ble"), model, significance)
    assert plan.layers and plan.estimated_bytes > 0


def test_tune_maximises_each_tasks_figure_on_the_worst_board() -> None:
    from edgecompress.tune.objectives import OBJECTIVES

    read = OBJECTIVES["accuracy"].read
    regression_boards = [{"task": "regression", "metric": 40.0}, {"task": "regression", "metric": 43.5}]
    anomaly_boards = [{"task": "anomaly", "metric": 0.93}, {"task": "anomaly", "metric": 0.91}]
    fidelity_boards = [{"task": "fidelity", "metric": None, "fidelity": {"sqnr_db": s}} for s in (31.0, 24.5)]

    assert read(regression_boards, {}) == -43.5  # the larger MAE is the worse board, and lower MAE is better
    assert read(anomaly_boards, {}) == pytest.approx(91.0)
    assert read(fidelity_boards, {}) == 24.5
    assert read([{"accuracy": 0.9}], {}) == pytest.approx(90.0)  # a report from before tasks: a classifier's


def test_a_tie_on_the_tasks_figure_is_explained_by_the_tasks_own_test() -> None:
    from edgecompress.decision.evidence import Evidence
    from edgecompress.decision.task_order import tie_words

    words, why = tie_words(Evidence.placeholder("anomaly"))
    assert words == "as good on ROC AUC as" and why.startswith("the paired bootstrap of their ROC AUCs")
    assert "Wilcoxon" in tie_words(Evidence.placeholder("regression"))[1]
    assert "SQNRs are within 1 dB" in tie_words(Evidence.placeholder("fidelity"))[1]
