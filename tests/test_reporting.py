"""Reports people read: report.json v2, report.md / report.html, figures, `report` and `compare`.

Every test works on a real run: the example digits CNN deployed for rpi4 on the local target
(real conversion, real runner), plus the real significance analysis and compression plan
the later deploy steps add, exactly as `edgecompress deploy` leaves a run folder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

import edgecompress
from edgecompress.cli.console import plain_console
from edgecompress.cli.progress import Progress
from edgecompress.errors import EdgeCompressError
from edgecompress.reporting import to_json_summary, write_all
from edgecompress.reporting.per_class import GRID_EXAMPLES, disagreement_grid
from edgecompress.reporting.schema import SCHEMA_VERSION, load_report
from edgecompress.reporting.terminal import render_summary

pytestmark = pytest.mark.slow  # deploys, fine-tunes, SSH boards or firmware builds: `pytest -m 'not slow'` skips them

RUNNER = Path(edgecompress.__file__).parent.parent / "firmware" / "runner" / "edgecompress_runner.py"


def measurement_result(run_dir: Path, artifact: str, target: str = "local") -> dict:
    return json.loads((run_dir / "measurements" / f"{artifact}@{target}.json").read_text())["result"]


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    return copy


# ------------------------------------------------------------------------------ runner


def test_runner_reports_one_prediction_per_eval_sample(tiny_tflite_int8: Path, eval_npz: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            str(RUNNER),
            "--model",
            str(tiny_tflite_int8),
            "--data",
            str(eval_npz),
            "--warmup",
            "1",
            "--runs",
            "3",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    accuracy = json.loads(completed.stdout)["accuracy"]
    predictions = np.array(accuracy["predictions"])
    y = np.load(eval_npz)["y"]

    assert predictions.shape == y.shape and predictions.dtype.kind == "i"
    assert int((predictions == y).sum()) == accuracy["correct"]
    confusion = np.zeros_like(np.array(accuracy["confusion"]))
    np.add.at(confusion, (y, predictions), 1)
    assert confusion.tolist() == accuracy["confusion"]


# ------------------------------------------------------------------------------ report.json


def test_report_json_is_schema_6_with_every_headline_figure(report: dict, run_dir: Path) -> None:
    from edgecompress.export import bitpacked_size, tflite_weight_stats

    assert (
        (report["schema"], report["schema_version"])
        == ("edgecompress.report", SCHEMA_VERSION)
        == ("edgecompress.report", 6)
    )
    rows = {row["artifact"]: row for row in report["comparison"]}
    assert list(rows)[:2] == ["baseline-fp32", "ptq-int8"] and len(rows) == len(report["artifacts"])
    base = rows["baseline-fp32"]
    for artifact in report["artifacts"]:
        data = (run_dir / "artifacts" / artifact["path"]).read_bytes()
        row = rows[artifact["name"]]
        assert row["file_bytes"] == len(data)
        if artifact["format"] == "tflite":
            expected = bitpacked_size(tflite_weight_stats(data), tflite_bytes=data)["total_bytes"]
            assert artifact["bitpacked_bytes"] == row["bitpacked_bytes"] == expected
            assert row["smaller_x_bitpacked"] == round(base["bitpacked_bytes"] / row["bitpacked_bytes"], 3)
            assert artifact["weights"] and all(w["unique_values"] >= 1 for w in artifact["weights"])
        result = measurement_result(run_dir, artifact["name"])
        rounds = json.loads((run_dir / "measurements" / f"{artifact['name']}@local.samples.json").read_text())
        timed = np.concatenate(rounds["rounds"])  # latency comes from the interleaved rounds: 5 rounds of 2 runs
        assert len(rounds["rounds"]) == 5 and timed.size == 10
        assert row["latency_median_ms"] == round(float(np.median([np.median(r) for r in rounds["rounds"]])), 6)
        assert row["latency_p90_ms"] == round(float(np.percentile(timed, 90)), 6)
        assert row["accuracy"] == result["accuracy"]["overall"]
        assert row["peak_rss_bytes"] == result["memory"]["peak_rss_bytes"]
        assert (row["runtime"], row["threads"], row["warmup"], row["runs"], row["eval_n"]) == (
            f"{result['runtime']['name']} {result['runtime']['version']}",
            result["threads"],
            5,
            10,
            200,
        )
        assert row["device"] and result["platform"]["machine"] in row["device"]
        assert row["smaller_x_file"] == round(base["file_bytes"] / row["file_bytes"], 3)
        assert row["accuracy_delta_points"] == round(100 * (row["accuracy"] - base["accuracy"]), 2)
    assert rows["ptq-int8"]["smaller_x_file"] > 2
    assert "bitpacked_bytes" in report["size_definitions"]


def test_every_weight_tensor_of_a_fresh_run_names_its_layer(report: dict) -> None:
    layers = {layer["name"] for layer in report["plan"]["layers"]}
    for artifact in (a for a in report["artifacts"] if a["format"] == "tflite"):
        assert artifact["weights"], artifact["name"]
        assert {w["layer"] for w in artifact["weights"]} == layers, artifact["name"]


def test_the_keras_reference_is_scored_like_a_device(report: dict) -> None:
    reference = report["keras_reference"]
    device = report["measurements"][0]["accuracy"]
    assert set(device) - {"batch"} == set(reference) - {"runtime"}
    assert set(reference["per_class"]) == set(device["per_class"])
    assert all(set(row) == {"name", "n", "correct", "accuracy"} for row in reference["per_class"].values())
    assert reference["overall"] == reference["correct"] / reference["n"]


def test_report_json_keeps_predictions_and_samples_out(report: dict) -> None:
    for measurement in report["measurements"]:
        assert "predictions" not in measurement["accuracy"]
        assert "samples" not in measurement["latency_ms"]


def compressed_names(report: dict) -> list[str]:
    return [a["name"] for a in report["artifacts"] if a["name"] != report["baseline"]]


def test_per_class_impact_is_the_runner_per_class_accuracy_against_the_baseline(report: dict, run_dir: Path) -> None:
    (block,) = report["per_class"]
    names = compressed_names(report)
    assert (block["target"], block["baseline"], list(block["compressed"])) == ("local", "baseline-fp32", names)
    measured = {name: measurement_result(run_dir, name)["accuracy"] for name in ["baseline-fp32", *names]}
    for row in block["classes"]:
        key = str(row["index"])
        for name, accuracy in measured.items():
            assert row["recall"][name] == accuracy["per_class"][key]["accuracy"]
            column = np.array(accuracy["confusion"])[:, row["index"]]
            assert row["precision"][name] == pytest.approx(column[row["index"]] / column.sum(), abs=1e-6)
    for name in names:
        changes = [row["recall_change_points"][name] for row in block["classes"]]
        assert changes == [
            round(100 * (row["recall"][name] - row["recall"]["baseline-fp32"]), 2) for row in block["classes"]
        ]
        summary = block["compressed"][name]
        assert summary["classes_worse"] == sum(c < 0 for c in changes)
        assert summary["classes_better"] + summary["classes_worse"] + summary["classes_unchanged"] == len(changes) == 10
        hurt = [h["recall_change_points"] for h in summary["hurt_most"]]
        assert hurt == sorted(c for c in changes if c < 0)[: len(hurt)] and all(c < 0 for c in hurt)


def test_disagreements_are_the_samples_where_the_runner_predictions_differ(report: dict, run_dir: Path) -> None:
    y = np.load(run_dir / "eval.npz")["y"]
    base = np.array(measurement_result(run_dir, "baseline-fp32")["accuracy"]["predictions"])
    for name in compressed_names(report):
        predictions = np.array(measurement_result(run_dir, name)["accuracy"]["predictions"])
        found = report["per_class"][0]["compressed"][name]["disagreements"]

        differ = np.flatnonzero(base != predictions)
        assert found["count"] == len(differ) and found["indices"] == differ.tolist() and found["n"] == len(y) == 200
        assert found["baseline_right_compressed_wrong"] == int(((base == y) & (predictions != y)).sum())
        assert found["baseline_wrong_compressed_right"] == int(((base != y) & (predictions == y)).sum())
        assert (
            found["baseline_right_compressed_wrong"] + found["baseline_wrong_compressed_right"] + found["both_wrong"]
            == found["count"]
        )
        assert len(found["examples"]) == min(found["count"], GRID_EXAMPLES)
        for example in found["examples"]:
            assert example["baseline"] != example["compressed"] and example["label"] == str(y[example["index"]])
        grid = run_dir / "figures" / f"disagreements-{name}@local.png"
        assert grid.exists() == bool(found["examples"])


def test_disagreement_grid_draws_the_eval_images(run_dir: Path, tmp_path: Path) -> None:
    """Independent of how many examples the tiny model happens to flip: draw three real ones."""
    x = np.load(run_dir / "eval.npz")["x"]
    examples = [
        {"index": i, "label": "0", "baseline": "0", "compressed": "1", "kind": kind}
        for i, kind in zip(
            (0, 5, 9), ("baseline_right_compressed_wrong", "baseline_wrong_compressed_right", "both_wrong")
        )
    ]
    path = disagreement_grid(x, examples, baseline="baseline-fp32", artifact="ptq-int8", path=tmp_path / "grid.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 200 and image.height > 150
    assert (
        disagreement_grid(
            x.reshape(len(x), -1, 1, 1, 1), examples, baseline="b", artifact="a", path=tmp_path / "no.png"
        )
        is None
    )
    assert not (tmp_path / "no.png").exists()


# ------------------------------------------------------------------------------ rendered files


def test_write_all_writes_markdown_html_and_every_figure(run_dir: Path, report: dict) -> None:
    markdown = (run_dir / "report.md").read_text()
    html = (run_dir / "report.html").read_text()
    figures = sorted(p.name for p in (run_dir / "figures").glob("*.png"))

    assert {"size_accuracy.png", "latency.png", "plan.png"} <= set(figures)
    for name in figures + ["id_profile.png"]:
        with Image.open(run_dir / "figures" / name if name != "id_profile.png" else run_dir / name) as image:
            assert image.format == "PNG" and image.width > 300
    links = [line.split("](")[1].rstrip(")") for line in markdown.splitlines() if line.startswith("![")]
    assert links and all((run_dir / link).is_file() for link in links)
    assert "id_profile.png" in links and "figures/plan.png" in links
    assert markdown.index("## Verdict") < markdown.index("## At a glance")  # what to ship comes first
    for title in (
        "Verdict",
        "At a glance",
        "Size, speed and accuracy",
        "Per-class impact on local",
        "Layer significance",
        "Compression plan",
        "Weights per layer",
        "How these numbers were produced",
    ):
        assert f"## {title}" in markdown and f">{title}</h2>" in html
    int8 = next(row for row in report["comparison"] if row["artifact"] == "ptq-int8")
    headline = markdown.split("## Size, speed and accuracy")[1]
    table_row = next(line for line in headline.splitlines() if line.startswith("| ptq-int8 |"))
    assert f"{int8['smaller_x_file']:.2f}x" in table_row and f"{100 * int8['accuracy']:.2f}%" in table_row
    assert 'src="data:image/png;base64,' in html and "<link" not in html and "<script" not in html


def test_write_all_is_idempotent(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    first = json.loads((copy / "report.json").read_text())
    write_all(copy)
    assert json.loads((copy / "report.json").read_text()) == first


def test_optional_sections_are_left_out_when_their_files_are_missing(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    report = json.loads((copy / "report.json").read_text())
    for section in ("significance", "plan"):
        report.pop(section)
    (copy / "report.json").write_text(json.dumps(report))
    for name in ("significance.json", "plan.json", "id_profile.png", "eval.npz"):
        (copy / name).unlink()
    shutil.rmtree(copy / "figures")
    for samples in (copy / "measurements").glob("*.samples.json"):
        samples.unlink()

    rendered = write_all(copy)

    markdown = rendered.markdown.read_text()
    assert "Layer significance" not in markdown and "Compression plan" not in markdown
    assert "size_accuracy" in rendered.figures
    assert not [key for key in rendered.figures if key.startswith(("latency", "plan", "id_profile", "disagreements"))]
    assert "Per-class impact on local" in markdown  # comes from the measurements themselves
    assert "Disagreements:" in markdown  # the counts written earlier stay, only their image grid needs eval.npz
    assert rendered.report["report_notes"] == []


def test_an_unreadable_optional_file_is_named_in_the_report_not_fatal(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    report = json.loads((copy / "report.json").read_text())
    report.pop("plan")
    (copy / "report.json").write_text(json.dumps(report))
    (copy / "plan.json").write_text("{ not json")

    rendered = write_all(copy)

    assert "plan" not in rendered.report
    assert any("plan.json is unreadable" in note for note in rendered.report["report_notes"])
    assert "Left out: plan.json is unreadable" in rendered.markdown.read_text()


def test_a_version_1_report_is_upgraded_when_rendered(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    report = json.loads((copy / "report.json").read_text())
    expected_per_class = report["per_class"]
    for field in ("per_class", "size_definitions", "report_notes", "significance", "plan"):
        report.pop(field, None)
    for artifact in report["artifacts"]:
        for field in ("bitpacked_bytes", "bitpacked", "weights"):
            artifact.pop(field, None)
    report["schema_version"] = 1
    (copy / "report.json").write_text(json.dumps(report))

    upgraded = write_all(copy).report

    assert upgraded["schema_version"] == SCHEMA_VERSION
    assert upgraded["per_class"] == expected_per_class
    tflite = {a["name"] for a in upgraded["artifacts"] if a["format"] == "tflite"}
    assert tflite and all(row["bitpacked_bytes"] for row in upgraded["comparison"] if row["artifact"] in tflite)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d, "no report.json"),
        (lambda d: (d / "report.json").write_text("[]") and d, "not an edgecompress report"),
        (
            lambda d: (
                (d / "report.json").write_text(json.dumps({"schema": "edgecompress.report", "schema_version": 99}))
                and d
            ),
            "schema version 99",
        ),
    ],
)
def test_a_folder_that_is_not_a_run_is_refused_with_a_fix(tmp_path: Path, make, expected: str) -> None:
    folder = make(tmp_path) or tmp_path
    with pytest.raises(EdgeCompressError) as raised:
        write_all(folder)
    assert expected in raised.value.problem and raised.value.fix


def test_json_summary_carries_the_headline_and_class_damage(report: dict) -> None:
    summary = to_json_summary(report)
    json.dumps(summary)  # serialisable as is
    assert (summary["schema"], summary["report_schema_version"], summary["baseline"]) == (
        "edgecompress.report-summary",
        SCHEMA_VERSION,
        "baseline-fp32",
    )
    for entry, row in zip(summary["rows"], report["comparison"]):
        assert {k: entry[k] for k in ("artifact", "file_bytes", "latency_median_ms", "accuracy")} == {
            k: row[k] for k in ("artifact", "file_bytes", "latency_median_ms", "accuracy")
        }
    int8 = summary["rows"][1]
    assert int8["artifact"] == "ptq-int8"
    assert int8["disagreements"]["count"] == report["per_class"][0]["compressed"]["ptq-int8"]["disagreements"]["count"]
    assert summary["plan"]["strategy"] == report["plan"]["strategy"]


def test_render_summary_prints_every_artifact(report: dict) -> None:
    console = Console(file=StringIO(), width=200)
    console.print(render_summary(report, wide=True))
    text = console.file.getvalue()
    assert "baseline-fp32" in text and "ptq-int8" in text and "bit-packed" in text and "p90 ms" in text


# ------------------------------------------------------------------------------ CLI


@pytest.fixture()
def cli():
    import typer

    from edgecompress.cli import report as commands

    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """edgecompress (test mount)"""

    app.command("report")(commands.report)
    app.command("compare")(commands.compare)
    return lambda *args: CliRunner().invoke(app, [str(a) for a in args])


def test_report_command_rerenders_and_prints_json(cli, run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    (copy / "report.html").unlink()
    shutil.rmtree(copy / "figures")

    result = cli("report", copy, "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == to_json_summary(load_report(copy))
    assert (copy / "report.html").is_file() and (copy / "figures" / "size_accuracy.png").is_file()


def test_report_command_quiet_prints_nothing(cli, run_dir: Path, tmp_path: Path) -> None:
    result = cli("report", copy_run(run_dir, tmp_path), "--quiet")
    assert result.exit_code == 0 and result.stdout == ""


def test_compare_command_puts_runs_side_by_side(cli, run_dir: Path, tmp_path: Path) -> None:
    other = copy_run(run_dir, tmp_path / "other")
    out = tmp_path / "comparison"

    table = cli("compare", run_dir, other, "--output", out)
    as_json = cli("compare", run_dir, other, "--json")

    assert table.exit_code == 0, table.output
    side_by_side, verdicts = table.stdout.split("Verdicts")
    assert side_by_side.count("ptq-int8") == 2 and "2 runs side by side" in side_by_side
    assert side_by_side.count("R1 ") == side_by_side.count("R2 ") == len(load_report(run_dir)["comparison"]) + 1
    assert verdicts.count("R1 ") == verdicts.count("R2 ") == 1  # one verdict per run
    assert f"R1 = {run_dir}" in table.stdout and f"R2 = {other}" in table.stdout
    assert {p.name for p in out.iterdir()} == {"compare.md", "compare.html", "compare-figures"}
    markdown = (out / "compare.md").read_text()
    assert "Smallest file: R1 ptq-int8@local" in markdown and "compare-figures/size_accuracy.png" in markdown
    runs = json.loads(as_json.stdout)["runs"]
    labels = [r["run"].replace("_", "\\_") for r in runs]  # Markdown escapes the underscores
    assert f"R1 = {labels[0]}:" in markdown and f"R2 = {labels[1]}:" in markdown
    assert [r["run_dir"] for r in runs] == [str(run_dir), str(other)]
    assert runs[0]["rows"] == runs[1]["rows"] == to_json_summary(load_report(run_dir))["rows"]


def test_compare_refuses_the_same_run_twice(cli, run_dir: Path) -> None:
    result = cli("compare", run_dir, run_dir)
    assert isinstance(result.exception, EdgeCompressError) and "more than once" in result.exception.problem


# ------------------------------------------------------------------------------ progress


def recording(quiet: bool = False, terminal: bool = False) -> Progress:
    return Progress(quiet=quiet, console=plain_console(file=StringIO(), width=100))


def test_progress_shows_bars_and_status_lines_and_nests() -> None:
    progress = recording()
    progress.say("Converting ptq-int8")
    with progress.task("Training", total=2) as advance:
        with progress.task("Converting"):
            pass
        advance(2, detail="epoch 2/2")
    text = progress.console.file.getvalue()
    assert "• Converting ptq-int8" in text and "Training · epoch 2/2" in text and "2/2" in text


def test_progress_shows_text_that_looks_like_markup_as_written() -> None:
    progress = recording()
    progress.say("Model runs/[/x]/[bold]cnn.h5")
    with progress.task("Measuring [red]int8[/red]") as advance:
        advance(0, detail="[/]")
    text = progress.console.file.getvalue()
    assert "runs/[/x]/[bold]cnn.h5" in text and "Measuring [red]int8[/red] · [/]" in text


def test_quiet_progress_prints_nothing() -> None:
    progress = recording(quiet=True, terminal=True)
    progress.say("hello")
    with progress.task("Training", total=3) as advance:
        advance()
    assert progress.console.file.getvalue() == ""
