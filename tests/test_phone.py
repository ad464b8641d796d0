"""`--target phone`: Debian's Chromium (headless, driven by Playwright) is the phone.

The page, LiteRT.js and the HTTP server are the real ones; nothing is mocked. The deploys run
`edgecompress deploy` as a user would, read the link from its output and open it in the browser.
Needs `chromium` and the page's runtimes (`edgecompress phone setup`, which .ci/run runs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgecompress.cli import main
from edgecompress.errors import ToolError
from edgecompress.targets import phone_assets
from edgecompress.targets.measurement_check import MeasurementRejected
from edgecompress.targets.phone import PhoneTarget
from edgecompress.targets.phone_results import PageJob, result_from_page

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
URL = re.compile(r"(https?://127\.0\.0\.1:\d+/[A-Za-z0-9_-]+/)")


def _assets_ready() -> bool:
    try:
        phone_assets.find_assets()
    except ToolError:
        return False
    return True


needs_assets = pytest.mark.skipif(
    not _assets_ready(), reason="the page's runtimes are missing: run `edgecompress phone setup`"
)
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or not _assets_ready(),
    reason="needs Debian's chromium (apt-get install chromium) and the page's runtimes (`edgecompress phone setup`)",
)


# ------------------------------------------------------------------ quick: no browser, no deploy


def test_missing_assets_name_the_setup_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(ToolError) as missing:
        phone_assets.find_assets()
    assert "edgecompress phone setup" in missing.value.fix
    assert main(["phone", "setup", "--from", str(tmp_path)]) == ToolError.exit_code
    said = " ".join(capsys.readouterr().err.split())
    assert "litertjs-core-2.5.3.tgz" in said and "npm pack" in said
    assert not (tmp_path / "empty-cache").exists()  # a refused setup leaves nothing behind


@needs_assets
def test_a_wrong_token_is_refused_and_nothing_is_served() -> None:
    target = PhoneTarget(listen="127.0.0.1:0", wait=1)
    try:
        url = target.url
        assert _get(url)[0] == 200
        assert _get(url + "assets/litertjs-core/package.json")[0] == 200
        base, token = url.rstrip("/").rsplit("/", 1)
        wrong = f"{base}/{token[:-2]}xx/"
        for path in ("", "page.js", "assets/litertjs-core/package.json", "job"):
            assert _get(wrong + path) == (403, b"Forbidden\n")
        assert _get(f"{base}/")[0] == 403
        assert _get(url + "assets/../../../../etc/passwd")[0] == 404  # nothing outside the asset folder
        assert _get(url + "job?session=not-the-owner")[0] == 409
    finally:
        target.close()


def test_impossible_page_results_are_rejected_whole() -> None:
    import numpy as np

    job = PageJob(
        target="phone", model_name="m.tflite", model_sha256="ab" * 32, model_bytes=100,
        artifact={"sha256": "ab" * 32, "bytes": 100, "served_change": None}, runtime="LiteRT.js",
        runtime_version="2.5.3", warmup=2, runs=3, n=2, class_names=("a", "b", "c"), output_kind="softmax",
    )  # fmt: skip
    good: dict[str, Any] = {
        "backend": "wasm", "threads": 2, "inferences_per_sample": 1, "warmup": 2, "model_bytes": 100,
        "import_ms": 1.0, "load_ms": 2.0, "first_inference_ms": 0.5, "latency_samples_ms": [0.2, 0.3, 0.25],
        "outputs": [[0.1, 0.7, 0.2], [0.8, 0.1, 0.1]], "simd": True,
    }  # fmt: skip
    labels = np.array([1, 2])
    result = result_from_page(good, job, labels)
    assert result["accuracy"]["predictions"] == [1, 0] and result["accuracy"]["correct"] == 1
    assert result["latency_ms"]["median"] == 0.25
    assert result["execution"]["note"] == "measured in the browser (LiteRT.js 2.5.3, WASM SIMD, 2 threads)"
    for change, figure in (
        ({"outputs": [[0.1, float("nan"), 0.2], [0.8, 0.1, 0.1]]}, "not finite"),
        ({"outputs": [[0.1, 0.9], [0.8, 0.2]]}, "one score per class"),
        ({"latency_samples_ms": [0.2, 0.0, 0.3]}, "latency_samples_ms"),
        ({"latency_samples_ms": [0.2]}, "3 timed runs"),
        ({"model_bytes": 99}, "model_bytes"),
        ({"threads": 0}, "threads"),
        ({"backend": "native"}, "backend"),
    ):
        with pytest.raises(MeasurementRejected) as rejected:
            result_from_page({**good, **change}, job, labels)
        assert figure in str(rejected.value)


# ------------------------------------------------------------------ Chromium as the phone


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Deploy:
    """`edgecompress deploy ...` in a subprocess; its output is read line by line until asked for."""

    def __init__(self, *args: str, cwd: Path) -> None:
        env = {**os.environ, "COLUMNS": "120"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edgecompress", "deploy", *args],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
        self.lines: list[str] = []

    def until(self, pattern: str) -> re.Match[str]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"no line matched {pattern!r}:\n{''.join(self.lines)}")

    def finish(self, timeout: float = 600) -> tuple[int, str]:
        assert self.process.stdout is not None
        self.lines += list(self.process.stdout)
        return self.process.wait(timeout), "".join(self.lines)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


DEPLOY = ["--profile", "android-phone", "--data", "sklearn:digits", "--recipe", "ptq-int8", "--max-eval", "200"]


@pytest.mark.slow
@needs_browser
def test_chromium_as_the_phone_measures_what_the_host_runner_measures(
    browser: Any, digits_model: Path, tmp_path: Path
) -> None:
    deploy = Deploy(
        str(digits_model), *DEPLOY, "--warmup", "3", "--runs", "10", "--target", "phone", "--target", "local",
        "--listen", "127.0.0.1:0", "--wait", "120", "-o", str(tmp_path / "runs"), cwd=tmp_path,
    )  # fmt: skip
    try:
        url = deploy.until(URL.pattern).group(1)
        phone = browser.new_page()
        phone.goto(url)
        deploy.until(r"Target phone: ")
        second = browser.new_page()
        second.goto(url)
        second.wait_for_function("document.getElementById('state').textContent.includes('taken')", timeout=30_000)
        assert "another browser is running its measurement" in second.inner_text("#state")
        second.close()
        code, output = deploy.finish()
        phone.close()
    finally:
        deploy.kill()
    assert code == 0, output
    run_dir = Path(re.findall(r"Run folder: (\S+)", output)[-1])
    report = json.loads((run_dir / "report.json").read_text())
    browser_facts = next(t for t in report["targets"] if t["name"] == "phone")["probe"]["browser"]
    assert "HeadlessChrome" in browser_facts["user_agent"] and browser_facts["hardware_concurrency"] >= 1
    by_key = {(m["artifact"], m["target"]): m for m in report["measurements"]}
    tflites = [a["name"] for a in report["artifacts"] if a["path"].endswith(".tflite")]
    assert len(tflites) == 2
    for name in tflites:
        page = by_key[(name, "phone")]
        assert page["runtime"] == {"name": "LiteRT.js", "version": "2.5.3"}
        assert page["execution"]["note"].startswith("measured in the browser (LiteRT.js 2.5.3, WASM")
        # the page times each artifact once, with its share of the runs (it has no interleaved rounds yet)
        assert page["latency_ms"]["runs"] == _first_look_runs(10) and page["latency_ms"]["median"] > 0
        page_predictions = _predictions(run_dir, name, "phone")
        host_predictions = _predictions(run_dir, name, "local")
        # XNNPACK in WebAssembly and in the host's LiteRT: the same kernels, so the same classes
        assert page_predictions == host_predictions
        assert page["accuracy"]["overall"] == by_key[(name, "local")]["accuracy"]["overall"]
    assert "phone" in (run_dir / "report.md").read_text()


def _first_look_runs(runs: int) -> int:
    """Timed runs of an artifact's own measurement: its share of `runs` over the timing rounds."""
    import math

    from edgecompress.pipeline.request import DeployRequest

    return math.ceil(runs / DeployRequest.default("rounds"))


def _predictions(run_dir: Path, artifact: str, target: str) -> list[int]:
    saved = json.loads((run_dir / "measurements" / f"{artifact}@{target}.json").read_text())
    return saved["result"]["accuracy"]["predictions"]


@pytest.mark.slow
@needs_browser
def test_a_page_closed_mid_run_leaves_a_run_a_reopened_page_finishes(
    browser: Any, digits_model: Path, tmp_path: Path
) -> None:
    common = ["--listen", "127.0.0.1:0", "--wait", "120"]
    deploy = Deploy(
        str(digits_model), *DEPLOY, "--warmup", "3", "--runs", "15000", "--target", "phone", *common,
        "-o", str(tmp_path / "runs"), cwd=tmp_path,
    )  # fmt: skip
    try:
        page = browser.new_page()
        page.goto(deploy.until(URL.pattern).group(1))
        deploy.until(rf"phone: warm-up \d+, timed runs {_first_look_runs(15000)}")
        page.close()  # mid-run: the page says goodbye as it goes
        code, output = deploy.finish()
    finally:
        deploy.kill()
    assert code == 3, output
    assert "the page stopped while measuring" in output
    resume = re.search(r"edgecompress deploy --resume (\S+?\.failed)", output.replace("\n", ""))
    assert resume is not None, output
    failed = Path(resume.group(1))
    assert failed.is_dir() and not (failed / "report.json").exists()

    again = Deploy("--resume", str(failed), cwd=tmp_path)  # the run remembers --listen and --wait
    try:
        page = browser.new_page()
        page.goto(again.until(URL.pattern).group(1))
        code, output = again.finish()
        page.close()
    finally:
        again.kill()
    assert code == 0, output
    finished = Path(str(failed).removesuffix(".failed"))
    report = json.loads((finished / "report.json").read_text())
    assert {m["target"] for m in report["measurements"]} == {"phone"}
    assert all(m["latency_ms"]["runs"] == _first_look_runs(15000) for m in report["measurements"])


@pytest.mark.slow
@needs_assets
def test_no_browser_within_wait_is_one_clear_paragraph(digits_model: Path, tmp_path: Path) -> None:
    deploy = Deploy(
        str(digits_model), *DEPLOY, "--target", "phone", "--listen", "127.0.0.1:0", "--wait", "2",
        "-o", str(tmp_path / "runs"), cwd=tmp_path,
    )  # fmt: skip
    try:
        code, output = deploy.finish()
    finally:
        deploy.kill()
    assert code == 3, output
    said = " ".join(output.split())
    assert re.search(r"Error: Board 'phone': no browser opened http://127\.0\.0\.1:\d+/\S+/ within 2 s\.", said), output
    assert "What to do: Open the link on the phone" in said and "Traceback" not in said
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # no run folder left
