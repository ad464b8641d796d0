"""What the phone page posts back, checked and turned into the runner's result document.

The page sends raw figures only: one output row per evaluation image, the per-run latencies,
the one-off timings and what ran the model. Nothing it says is believed as a summary: the host
checks every raw figure (shape, finite, plausible) here, then computes accuracy with the board
runner's own functions and latency statistics with its own definitions, so a browser's
measurement reaches the report, the disagreements and the verdict exactly like a board's (and
still passes through measurement_check like every other).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecompress.targets.base import printable
from edgecompress.targets.measurement_check import MeasurementRejected

#: backends the page may name, and how a label says them
BACKENDS = {"webgpu": "WebGPU", "wasm": "WASM"}
#: longest text accepted from the page (names, errors, versions)
MAX_TEXT = 300
#: more threads than any phone or desktop browser offers means the page is not ours
MAX_THREADS = 1024
#: back-to-back inferences per latency sample the page may use to rise above the timer's resolution
MAX_REPEATS = 100_000

PAGE_REJECTED_FIX = (
    "Nothing from this measurement was stored. Figures like these do not come from edgecompress's page working "
    "normally: resume the run and open the new link in a current browser, without extensions that rewrite pages; "
    "if it happens again, report it with the browser and device named."
)


@dataclass(frozen=True)
class PageJob:
    """What the host asked the page for (the page's answer is held against it)."""

    target: str
    model_name: str
    model_sha256: str  # of the bytes served to the page (phone_model.py)
    model_bytes: int
    artifact: dict[str, Any]  # the artifact's own sha256 and bytes, and what serving changed
    runtime: str  # 'LiteRT.js' | 'ONNX Runtime Web'
    runtime_version: str
    warmup: int
    runs: int
    n: int
    class_names: tuple[str, ...]
    output_kind: str


def text(value: Any, limit: int = MAX_TEXT) -> str | None:
    """A string from the page, short and inert (control characters escaped); None for anything else."""
    if not isinstance(value, str):
        return None
    return printable(value[:limit])


def result_from_page(post: Any, job: PageJob, labels: np.ndarray) -> dict[str, Any]:
    """The runner-shaped result for the page's `post`; MeasurementRejected naming every impossible figure."""
    problems: list[str] = []
    post = post if isinstance(post, dict) else {}
    scores = _scores(post.get("outputs"), job, problems)
    samples = _samples(post.get("latency_samples_ms"), job, problems)
    timings = {name: _number(post.get(name), name, problems) for name in ("import_ms", "load_ms", "first_inference_ms")}
    threads = _count(post.get("threads"), "threads", 1, MAX_THREADS, problems)
    repeats = _count(post.get("inferences_per_sample"), "inferences_per_sample", 1, MAX_REPEATS, problems)
    backend = post.get("backend")
    if backend not in BACKENDS:
        problems.append(f"backend is {_shown(backend)}, not one of {', '.join(BACKENDS)}")
    if post.get("warmup") != job.warmup:
        problems.append(f"warmup is {_shown(post.get('warmup'))} but {job.warmup} warm-up runs were asked for")
    model_bytes = post.get("model_bytes")
    if model_bytes != job.model_bytes:
        problems.append(f"model_bytes is {_shown(model_bytes)} but the artifact served has {job.model_bytes} bytes")
    sha256 = post.get("model_sha256")
    if sha256 is not None and sha256 != job.model_sha256:
        problems.append(f"model_sha256 is {_shown(sha256)} but the artifact served has {job.model_sha256!r}")
    if problems or scores is None or samples is None or threads is None or repeats is None:
        rejected = MeasurementRejected(job.target, job.model_name, problems)
        rejected.fix = PAGE_REJECTED_FIX
        raise rejected
    return _document(post, job, labels, scores, samples, timings, threads, repeats)


def honest_label(runtime: str, version: str, backend: str, threads: int, simd: bool | None) -> str:
    """'measured in the browser (LiteRT.js 2.5.3, WASM SIMD, 4 threads)': what every figure from the page is."""
    how = BACKENDS.get(backend, backend)
    if backend == "wasm":
        how += " SIMD" if simd else ""
        how += f", {threads} thread{'s' if threads != 1 else ''}"
    return f"measured in the browser ({runtime} {version}, {how})"


def _document(
    post: dict[str, Any],
    job: PageJob,
    labels: np.ndarray,
    scores: np.ndarray,
    samples: list[float],
    timings: dict[str, float | None],
    threads: int,
    repeats: int,
) -> dict[str, Any]:
    from edgecompress.evaluation import runner_module

    runner = runner_module()
    n_outputs = scores.shape[1]
    n_classes = max(len(job.class_names), 2 if n_outputs == 1 else n_outputs)
    predictions = runner.predict(scores, job.output_kind)
    accuracy = runner.tally(predictions, labels, list(job.class_names), n_classes)
    accuracy["batch"] = 1
    latency = runner.latency_stats(samples, job.warmup)
    latency["samples"] = [round(s, 6) for s in samples]
    simd = post.get("simd") if isinstance(post.get("simd"), bool) else None
    label = honest_label(job.runtime, job.runtime_version, post["backend"], threads, simd)
    return {
        "runner_version": None,
        "page_version": text(post.get("page_version")),
        "runtime": {"name": job.runtime, "version": job.runtime_version},
        "model": {**job.artifact, "served_sha256": job.model_sha256, "served_sha256_checked_by": _sha_by(post)},
        "threads": threads,
        "threads_basis": text(post.get("threads_basis")) or "chosen by the page",
        "execution": {
            "requested": "webgpu, then wasm",
            "used": post["backend"],
            "attempts": _attempts(post.get("attempts")),
            "wasm_file": text(post.get("wasm_file")),
            "simd": simd,
            "cross_origin_isolated": post.get("cross_origin_isolated") is True,
            "timer_resolution_ms": _number(post.get("timer_resolution_ms"), "timer", []),
            "inferences_per_sample": repeats,
            "note": label,
        },
        **timings,
        "latency_ms": latency,
        "memory": {"peak_rss_bytes": None},  # a page cannot see its process's memory
        "accuracy": accuracy,
        # the raw outputs travel beside this document (Measurement.outputs), as a board's .npy does
        "outputs": {"file": None, "shape": [int(d) for d in scores.shape], "dtype": "float32", "names": None},
        "latency_by_threads": [],
        "op_profile": None,
    }


def page_outputs(post: Any) -> np.ndarray:
    """The page's raw outputs as the host keeps a board's (n samples x values, float32); call it only on a
    post that `result_from_page` accepted."""
    return np.asarray(post["outputs"], dtype=np.float32)


def _sha_by(post: dict[str, Any]) -> str:
    if isinstance(post.get("model_sha256"), str):
        return "the page (WebCrypto, over the bytes it ran)"
    return "nobody: the page has no WebCrypto outside a secure context; its byte count was checked"


def _attempts(value: Any) -> list[dict[str, str | None]]:
    if not isinstance(value, list):
        return []
    return [
        {"backend": text(a.get("backend")), "error": text(a.get("error"))} for a in value[:8] if isinstance(a, dict)
    ]


def _scores(value: Any, job: PageJob, problems: list[str]) -> np.ndarray | None:
    if not isinstance(value, list) or len(value) != job.n:
        count = len(value) if isinstance(value, list) else _shown(value)
        problems.append(f"outputs has {count} rows but {job.n} evaluation images were sent")
        return None
    widths = {len(row) if isinstance(row, list) else -1 for row in value}
    n_outputs = next(iter(widths)) if len(widths) == 1 else -1
    fits = n_outputs == len(job.class_names) or (n_outputs == 1 and len(job.class_names) == 2)
    if not fits:
        problems.append(
            f"outputs rows have {sorted(widths)} values, not one score per class ({len(job.class_names)} classes)"
        )
        return None
    try:
        scores = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        problems.append("outputs holds values that are not numbers")
        return None
    if not np.all(np.isfinite(scores)):
        problems.append(f"outputs holds {int(np.sum(~np.isfinite(scores)))} values that are not finite")
        return None
    return scores.astype(np.float32)


def _samples(value: Any, job: PageJob, problems: list[str]) -> list[float] | None:
    if not isinstance(value, list) or len(value) != job.runs:
        count = len(value) if isinstance(value, list) else _shown(value)
        problems.append(f"latency_samples_ms has {count} values but {job.runs} timed runs were asked for")
        return None
    bad = [v for v in value if not _is_number(v) or not math.isfinite(v) or v <= 0]
    if bad:
        problems.append(f"latency_samples_ms holds {len(bad)} values that are not finite latencies above 0")
        return None
    return [float(v) for v in value]


def _number(value: Any, name: str, problems: list[str]) -> float | None:
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        problems.append(f"{name} is {_shown(value)}; it must be a finite number of at least 0")
        return None
    return round(float(value), 4)


def _count(value: Any, name: str, low: int, high: int, problems: list[str]) -> int | None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        problems.append(f"{name} is {_shown(value)}; it must be a whole number from {low} to {high}")
        return None
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    if value is None:
        return "missing"
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


__all__ = ["PageJob", "honest_label", "page_outputs", "result_from_page", "text"]
