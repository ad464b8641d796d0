"""Deploy in minutes: a bounded fine-tune, visible progress, and work reused across runs.

The README's promise: a second deploy of the same model for another board does not train
again, says so, and `--no-cache` makes it start from scratch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import edgecompress
from edgecompress.cache import StageCache
from edgecompress.cli import main

pytestmark = pytest.mark.slow  # deploys, fine-tunes, SSH boards or firmware builds: `pytest -m 'not slow'` skips them


def test_fine_tuning_reports_progress_with_an_eta_in_deploy_log(rpi4_run) -> None:
    log = (rpi4_run.run_dir / "deploy.log").read_text()
    progress = [line for line in log.splitlines() if ": step " in line and "ETA" in line]
    assert progress and all("val accuracy" in line for line in progress)
    assert "Fine-tuning budget: each stage trains while it improves, up to" in log


def test_training_json_and_the_report_record_the_budget_and_the_curve(rpi4_run) -> None:
    training = json.loads((rpi4_run.run_dir / "training.json").read_text())
    for stage in training["stages"]:
        assert 1 <= stage["steps"] <= stage["budget_steps"] <= 1000
        assert stage["epochs_equivalent"] > 0 and stage["wall_seconds"] > 0
        assert stage["stopped_by"] in {"step cap", "plateau", "time budget"} and stage["stop_reason"]
        assert [point["step"] for point in stage["curve"]][-1] == stage["steps"]
    assert rpi4_run.report["training"]["stages"] == training["stages"]
    if not training["device"]["visible_gpus"]:  # --device auto on a machine without a GPU: the CPU
        assert training["device"]["requested"] == "auto" and training["device"]["used"] == "cpu"
        assert "on the CPU (--device auto" in (rpi4_run.run_dir / "report.md").read_text()
    assert set(rpi4_run.report["timings_s"]) >= {"load", "significance", "fine-tune", "measure"}
    assert "Fine-tuning" in (rpi4_run.run_dir / "report.md").read_text()


def test_a_second_deploy_for_another_board_reuses_the_work_and_says_so(
    rpi4_run, digits_model: Path, tmp_path: Path
) -> None:
    result = edgecompress.deploy(
        digits_model, "rpi5", data="sklearn:digits", output=tmp_path / "runs", warmup=2, runs=5, max_eval=200
    )
    log = (result.run_dir / "deploy.log").read_text()
    assert "Reusing the layer significance from the cache" in log
    assert "Reusing fine-tuning stage" in log and ": step " not in log  # nothing was trained again
    assert "Reusing ptq-int8.tflite from the cache" in log
    first = {a["name"]: a["sha256"] for a in rpi4_run.report["artifacts"]}
    second = {a["name"]: a["sha256"] for a in result.report["artifacts"]}
    assert second == first  # the very same files


def test_no_cache_rebuilds_everything(digits_model: Path, tmp_path: Path, capsys) -> None:
    args = [
        "deploy",
        "--data",
        "sklearn:digits",
        "--profile",
        "rpi4",
        str(digits_model),
        "--recipe",
        "ptq-int8",
        "--runs",
        "3",
        "--warmup",
        "1",
        "--max-eval",
        "100",
        "--output",
        str(tmp_path / "runs"),
    ]
    assert main(args) == 0
    assert main(args) == 0
    assert main([*args, "--no-cache"]) == 0
    first, second, uncached = ((run / "deploy.log").read_text() for run in sorted((tmp_path / "runs").iterdir()))
    assert "Reusing ptq-int8.tflite from the cache" in second
    assert (
        "Reusing" not in uncached and "Converting ptq-int8" in uncached and "Measuring layer significance" in uncached
    )


def test_the_cache_keeps_within_its_limit_and_clears(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    cache = StageCache(tmp_path / "stages", limit_bytes=2500)
    for index in range(4):
        key = cache.key("artifact", index=index)
        cache.store("artifact", key, lambda folder: (folder / "file").write_bytes(b"x" * 1000), {})
        if index == 0:
            first = key
            cache.lookup("artifact", first)  # used again: the last to go
    kept = {folder.name for folder, _, _ in cache.entries()}
    assert len(kept) == 2 and sum(size for _, size, _ in cache.entries()) <= 2500
    assert cache.key("artifact", index=0) == first and cache.key("artifact", index=1) != first

    monkeypatch.setenv("EDGECOMPRESS_CACHE", str(tmp_path))
    assert main(["cache", "info"]) == 0 and "2 entries" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0 and "Removed 2 entries" in capsys.readouterr().out
    assert cache.entries() == []


def test_a_disabled_cache_stores_and_finds_nothing(tmp_path: Path) -> None:
    cache = StageCache(tmp_path, limit_bytes=10**9, enabled=False)
    assert cache.store("x", "k", lambda folder: None, {}) is None and cache.lookup("x", "k") is None


def test_a_run_cut_off_after_fine_tuning_resumes_without_training_again(
    digits_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgecompress.pipeline.steps import STEPS

    export = next(step for step in STEPS if step.name == "compressed-export")
    original = type(export).run

    def cut_off(self, ctx) -> None:  # noqa: ANN001 - the board or the machine goes away right after training
        monkeypatch.setattr(type(export), "run", original)
        raise KeyboardInterrupt

    monkeypatch.setattr(type(export), "run", cut_off)
    with pytest.raises(edgecompress.errors.EdgeCompressError):
        edgecompress.deploy(digits_model, "rpi4", output=tmp_path / "runs", warmup=1, runs=3, max_eval=100, cache=False)
    failed = next((tmp_path / "runs").iterdir())
    trained_log = (failed / "deploy.log").read_text()
    strategy = json.loads((failed / "plan.json").read_text())["strategy"]  # strategy: auto picks it
    assert ": step " in trained_log and (failed / "artifacts" / f"{strategy}.stages").is_dir()

    result = edgecompress.pipeline.resume(failed)

    resumed_log = (result.run_dir / "deploy.log").read_text()[len(trained_log) :]
    assert ": step " not in resumed_log and f"Converting {strategy}" in resumed_log
    assert {a["name"] for a in result.report["artifacts"]} >= {strategy, f"{strategy}-onnx"}
