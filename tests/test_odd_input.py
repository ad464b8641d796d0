"""Odd and hostile input on the deploy path: everything from outside is shown as written, every
refusal is one paragraph before any work, and a cut-off run resumes from anywhere.

Each case is what a real user (or a careless script) does: a class folder named like console
markup, a profile saved as UTF-16, --output pointing at a file, a model trained on 0..255
pixels without a Rescaling layer, Ctrl-C in the middle of a run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import edgecompress
from edgecompress.cli import main
from edgecompress.errors import DataError, EdgeCompressError

pytestmark = pytest.mark.slow  # deploys, fine-tunes, SSH boards or firmware builds: `pytest -m 'not slow'` skips them

#: class folder names for digits 0..9 (a folder name cannot hold "/", so "[/x]" is tried in a path)
MARKUP_NAMES = ["[x]0", "[bold]one", "[link=x]2", "<b>3<b>", "*4*", "_5_", "`6`", "#7", "[8](x)", "9 & co"]


def digits_folders(root: Path, names: list[str]) -> Path:
    """scikit-learn's digits as PNG class folders, one folder per digit under the given names."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for digit, name in enumerate(names):
        folder = root / name
        folder.mkdir(parents=True)
        for i, image in enumerate(digits.images[digits.target == digit][:60]):
            Image.fromarray((image * 255 / 16).astype(np.uint8), mode="L").save(folder / f"{i}.png")
    return root


def test_class_names_and_paths_that_look_like_markup_are_shown_as_written(
    tiny_h5: Path, tmp_path: Path, capsys
) -> None:
    model = tmp_path / "[/x] models" / "[bold]tiny.h5"
    model.parent.mkdir(parents=True)
    shutil.copy(tiny_h5, model)
    data = digits_folders(tmp_path / "data", MARKUP_NAMES)

    code = main(
        [
            "deploy",
            "--profile",
            "rpi4",
            str(model),
            "--data",
            str(data),
            "--classes",
            ",".join(MARKUP_NAMES),
            "--recipe",
            "ptq-int8",
            "--runs",
            "3",
            "--warmup",
            "1",
            "--output",
            str(tmp_path / "runs"),
        ]
    )

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Model [bold]tiny.h5" in captured.err and "[bold]one, [link=x]2, <b>3<b>" in captured.err
    run_dir = next((tmp_path / "runs").iterdir())
    markdown = (run_dir / "report.md").read_text()
    html = (run_dir / "report.html").read_text()
    assert "\\[bold\\]one" in markdown and "\\<b\\>3\\<b\\>" in markdown and "\\*4\\*" in markdown
    assert "<b>3<b>" not in html and "&lt;b&gt;3&lt;b&gt;" in html


def test_an_error_about_a_path_that_looks_like_markup_is_printed_as_written(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "[/x]" / "[red]model.h5"
    code = main(
        ["deploy", "--data", "sklearn:digits", "--profile", "rpi4", str(missing), "--output", str(tmp_path / "runs")]
    )
    err = capsys.readouterr().err.replace("\n", "")
    assert code == 2 and "[/x]/[red]model.h5" in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["profile", "target", "fleet"])
def test_a_file_that_is_not_utf8_is_refused_clearly(kind: str, tiny_h5: Path, tmp_path: Path, capsys) -> None:
    text = {"profile": "name: utf16\n", "target": "host: 127.0.0.1\nuser: pi\n", "fleet": "fleet: [a, b]\n"}[kind]
    path = tmp_path / f"{kind}.yaml"
    path.write_bytes(text.encode("utf-16"))
    args = ["--profile", str(path)] if kind == "profile" else ["--profile", "rpi4", "--target", str(path), "--dry-run"]

    code = main(["deploy", "--data", "sklearn:digits", *args, str(tiny_h5), "--output", str(tmp_path / "runs")])

    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "not UTF-8" in err and "Save" in err


def test_dry_run_checks_target_files(tiny_h5: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "board.yaml"
    target.write_text("host: 127.0.0.1\nuser: pi\nprot: 22\n")
    code = main(
        ["deploy", "--data", "sklearn:digits", "--profile", "rpi4", str(tiny_h5), "--target", str(target), "--dry-run"]
    )
    err = capsys.readouterr().err
    assert code != 0 and "prot" in err and "port" in err


def test_output_that_is_a_file_is_refused_before_any_analysis(tiny_h5: Path, tmp_path: Path, capsys) -> None:
    output = tmp_path / "runs"
    output.write_text("a file, not a folder")
    code = main(["deploy", "--data", "sklearn:digits", "--profile", "rpi4", str(tiny_h5), "--output", str(output)])
    err = capsys.readouterr().err
    assert code == 2 and "is a file" in err and "significance" not in err


@pytest.fixture()
def read_only_folder(tmp_path: Path):
    """A folder on a read-only file system (a tmpfs mounted ro; needs root, as CI runs)."""
    point = tmp_path / "ro"
    point.mkdir()
    if os.geteuid() != 0:
        point.chmod(0o555)
        yield point
        point.chmod(0o755)
        return
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(point)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.strip()}")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


def test_output_on_a_read_only_file_system_is_refused_before_any_analysis(
    tiny_h5: Path, read_only_folder: Path, capsys
) -> None:
    code = main(
        [
            "deploy",
            "--data",
            "sklearn:digits",
            "--profile",
            "rpi4",
            str(tiny_h5),
            "--output",
            str(read_only_folder / "runs"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "not writable" in err and "significance" not in err


def test_a_symlink_back_to_the_data_folder_is_not_a_class(tmp_path: Path) -> None:
    from edgecompress.data import load_dataset

    data = digits_folders(tmp_path / "data", [str(d) for d in range(10)])
    (data / "loop").symlink_to(data, target_is_directory=True)
    (data / "up").symlink_to(tmp_path, target_is_directory=True)

    dataset = load_dataset(data, input_shape=(8, 8, 1))

    assert dataset.class_names == [str(d) for d in range(10)]
    assert any("loop" in note for note in dataset.notes)


# ------------------------------------------------------------------------------ input scaling


def _digits_model(tmp_path: Path, *, scale: float, rescaling: bool, train: bool = True) -> Path:
    """A small digits classifier trained on pixels times `scale`, with or without a Rescaling layer."""
    from sklearn.datasets import load_digits

    from edgecompress._tf import keras

    k = keras()
    k.utils.set_random_seed(0)
    digits = load_digits()
    x = (digits.images * 255 / 16 * scale).astype(np.float32)[..., None]
    layers = [k.layers.Input((8, 8, 1))]
    if rescaling:
        layers.append(k.layers.Rescaling(1 / 255))
    layers += [k.layers.Flatten(), k.layers.Dense(32, activation="relu"), k.layers.Dense(10, activation="softmax")]
    model = k.Sequential(layers)
    model.compile(optimizer=k.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    if train:
        model.fit(x, digits.target, epochs=25, batch_size=64, verbose=0)
    path = tmp_path / f"digits-{scale:g}-{rescaling}-{train}.h5"
    model.save(path)
    return path


def test_a_model_trained_on_0_255_pixels_gets_0_255_pixels(tmp_path: Path) -> None:
    model = _digits_model(tmp_path, scale=1.0, rescaling=False)  # trained on raw 0..255 pixels, no Rescaling layer

    result = edgecompress.deploy(model, "rpi4", data="sklearn:digits", dry_run=True)

    decision = result.report["scaling"]
    assert (decision["scaling"], decision["decided_by"]) == ("0-255", "data")
    assert decision["accuracy_by_scaling"]["0-255"] > 80 > decision["accuracy_by_scaling"]["0-1"]


def test_a_model_with_a_rescaling_layer_says_its_scaling_itself(tmp_path: Path) -> None:
    model = _digits_model(tmp_path, scale=1.0, rescaling=True)
    result = edgecompress.deploy(model, "rpi4", data="sklearn:digits", dry_run=True)
    assert (result.report["scaling"]["scaling"], result.report["scaling"]["decided_by"]) == ("0-255", "model")


def test_a_baseline_at_chance_is_refused_before_anything_is_trained(tmp_path: Path, capsys) -> None:
    model = _digits_model(tmp_path, scale=1.0, rescaling=False, train=False)
    with pytest.raises(DataError, match="not significantly better than chance"):
        edgecompress.deploy(model, "rpi4", data="sklearn:digits", output=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_the_chance_check_is_a_binomial_test() -> None:
    """20 % against a chance level of 12.5 %: noise on 40 images, a real (if poor) model on 2,000."""
    from edgecompress.data.scaling import ScalingDecision, require_better_than_chance

    decision = ScalingDecision("0-1", "option", "--scaling 0-1")
    names = [str(i) for i in range(8)]
    with pytest.raises(DataError) as caught:
        require_better_than_chance(0.2, np.arange(40) % 8, names, decision)
    assert "scores 20.0% on the 40 evaluation images: not significantly better than chance (12.5%" in str(caught.value)
    assert "by a binomial test (p = 0.12" in caught.value.problem
    require_better_than_chance(0.2, np.arange(2000) % 8, names, decision)


# ------------------------------------------------------------------------------ interrupted runs and resume


def _interrupt_at(step_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Press Ctrl-C when `step_name` starts (once)."""
    from edgecompress.pipeline.steps import STEPS

    step = next(s for s in STEPS if s.name == step_name)
    original = type(step).run

    def interrupted(self, ctx) -> None:  # noqa: ANN001
        monkeypatch.setattr(type(step), "run", original)
        raise KeyboardInterrupt

    monkeypatch.setattr(type(step), "run", interrupted)


def test_an_interrupted_run_says_how_to_resume_and_resumes_from_another_folder(
    tiny_h5: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    shutil.copy(tiny_h5, work / "tiny.h5")
    monkeypatch.chdir(work)
    _interrupt_at("measure", monkeypatch)

    code = main(
        [
            "deploy",
            "--data",
            "sklearn:digits",
            "--profile",
            "rpi4",
            "tiny.h5",
            "--recipe",
            "ptq-int8",
            "--runs",
            "3",
            "--warmup",
            "1",
        ]
    )

    err = capsys.readouterr().err
    failed = next((work / "runs").iterdir())
    assert code == 130 and failed.name.endswith(".failed")
    assert "Interrupted during step 'measure'" in err and f"edgecompress deploy --resume {failed}" in err
    request = json.loads((failed / "request.json").read_text())
    assert Path(request["model"]).is_absolute() and Path(request["output"]).is_absolute()

    monkeypatch.chdir(elsewhere)
    assert main(["deploy", "--resume", str(failed)]) == 0
    finished = work / "runs" / failed.name.removesuffix(".failed")
    assert (finished / "report.json").is_file()


def test_a_resume_that_cannot_start_leaves_the_folder_as_it_was(
    tiny_h5: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "tiny.h5"
    shutil.copy(tiny_h5, model)
    _interrupt_at("measure", monkeypatch)
    with pytest.raises(EdgeCompressError):
        edgecompress.deploy(model, "rpi4", recipe="ptq-int8", runs=3, warmup=1, output=tmp_path / "runs")
    failed = next((tmp_path / "runs").iterdir())
    before = sorted(p.name for p in failed.iterdir())

    shutil.copy(_digits_model(tmp_path, scale=1.0, rescaling=True), model)  # another model under the same name
    with pytest.raises(EdgeCompressError, match="changed since this run started"):
        edgecompress.pipeline.resume(failed)
    assert failed.is_dir() and sorted(p.name for p in failed.iterdir()) == before
