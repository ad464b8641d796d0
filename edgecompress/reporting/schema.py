"""report.json: what a run measured, in a versioned schema, and the comparison people read.

Readers (people, CI dashboards, `edgecompress report`) rely on the field names, which are
documented in docs/report-schema.md; bump SCHEMA_VERSION when one changes meaning or a
section is added, and keep reading the older versions (`migrate`).

Two steps fill the report. `build_report` assembles what deploy measured (pure data, no
files). `complete_report` adds what needs the run folder's files: bit-packed sizes and
per-tensor weight statistics read back from the artifacts (named after the plan's layers),
per-sample disagreements from the measurement files and eval.npz, and the significance and
plan sections written by other steps. `complete_report` is idempotent and also upgrades
older reports.
"""

from __future__ import annotations

import copy
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from edgecompress.reporting.speed import add_macs, comparison_fields, measurement_fields
from edgecompress.reporting.timing import add_timing
from edgecompress.run_layout import LAYOUT

SCHEMA = "edgecompress.report"
SCHEMA_VERSION = 6
#: Versions `edgecompress report` can still render (older ones are migrated on the fly).
SUPPORTED_VERSIONS = (1, 2, 3, 4, 5, 6)

#: Per weight tensor of a .tflite artifact, the `tflite_weight_stats` fields report.json keeps.
WEIGHT_FIELDS = (
    "name",
    "layer",
    "op",
    "shape",
    "dtype",
    "n_weights",
    "unique_values",
    "unique_stored_values",
    "max_unique_per_channel",
    "codebook",
    "bits_per_weight",
)

#: What each size figure means; quoted in the rendered reports.
SIZE_DEFINITIONS = {
    "file_bytes": "size of the file copied to the device",
    "gzip_bytes": "gzip level 9 (mtime 0) of the file: a proxy for download and compressed-flash cost",
}


def host_facts() -> dict[str, Any]:
    """Where the conversion ran (not where the model was measured: that is each target's)."""
    import importlib.metadata as md

    versions: dict[str, str | None] = {}
    for package in (
        "edgecompress",
        "tensorflow",
        "tf-keras",
        "tensorflow-model-optimization",
        "ai-edge-litert",
        "onnxruntime",
        "tf2onnx",
    ):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "system": platform.system(),
        "packages": versions,
    }


def measurement_entry(artifact: str, target: str, result: dict[str, Any], samples_file: str | None) -> dict[str, Any]:
    """One (artifact, target) measurement; raw latency samples and per-sample predictions stay in their own files."""
    latency = {k: v for k, v in result.get("latency_ms", {}).items() if k != "samples"}
    accuracy = result.get("accuracy")
    if accuracy is not None:
        accuracy = {k: v for k, v in accuracy.items() if k != "predictions"}
    return {
        "artifact": artifact,
        "target": target,
        "runtime": result.get("runtime"),
        "threads": result.get("threads"),
        "load_ms": result.get("load_ms"),
        "first_inference_ms": result.get("first_inference_ms"),
        "latency_ms": latency,
        "latency_samples_file": samples_file,
        "memory": result.get("memory"),
        "accuracy": accuracy,
        "platform": result.get("platform"),
        **measurement_fields(result),
        # emulated microcontroller boards (targets/qemu.py): instructions, not milliseconds
        **{
            key: result[key]
            for key in ("instructions", "latency_estimate", "vs_tflm_python", "reference_for")
            if key in result
        },
    }


def _model_bytes(artifact: dict[str, Any]) -> Any:
    """The bytes the model itself takes: a firmware's file also holds the interpreter, kernels and
    start-up code, so its model is counted by the flash the model takes inside it (the ELF's map),
    which is what the baseline's model file compares with."""
    return artifact.get("model_flash_bytes") or artifact["file_bytes"]


def compare(artifacts: list[dict[str, Any]], measurements: list[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """Every artifact against the baseline on the same target: the numbers the user came for."""
    sizes = {a["name"]: a for a in artifacts}
    base_size = sizes[baseline]
    by_key = {(m["artifact"], m["target"]): m for m in measurements}
    rows = []
    for m in measurements:
        base = by_key.get((baseline, m["target"]))
        art = sizes[m["artifact"]]
        latency = m.get("latency_ms") or {}
        accuracy = m.get("accuracy") or {}
        row: dict[str, Any] = {
            "artifact": m["artifact"],
            "target": m["target"],
            "kind": art.get("kind"),
            "file_bytes": art["file_bytes"],
            "gzip_bytes": art["gzip_bytes"],
            "bitpacked_bytes": art.get("bitpacked_bytes"),
            "smaller_x_file": _ratio(base_size["file_bytes"], _model_bytes(art)),
            "smaller_x_gzip": _ratio(base_size["gzip_bytes"], art["gzip_bytes"]),
            "smaller_x_bitpacked": _ratio(base_size.get("bitpacked_bytes"), art.get("bitpacked_bytes")),
            "latency_median_ms": latency.get("median"),
            "latency_p90_ms": latency.get("p90"),
            "latency_marked_rounds": len(m["latency_marks"]) if isinstance(m.get("latency_marks"), list) else None,
            "instructions_median": ((m.get("instructions") or {}).get("per_inference") or {}).get("median"),
            "estimated_latency_ms": (m.get("latency_estimate") or {}).get("milliseconds"),
            "peak_rss_bytes": (m.get("memory") or {}).get("peak_rss_bytes"),
            "accuracy": accuracy.get("overall"),
            "eval_n": accuracy.get("n"),
            "fits_budget": art.get("fits_budget"),
            "runtime": _runtime_name(m.get("runtime")),
            "threads": m.get("threads"),
            "warmup": latency.get("warmup"),
            "runs": latency.get("runs"),
            "device": _device_name(m.get("platform")),
        }
        row.update(comparison_fields(art, m, base_size, base))
        if base is not None:
            row["speedup_x"] = _ratio((base.get("latency_ms") or {}).get("median"), latency.get("median"))
            base_acc = (base.get("accuracy") or {}).get("overall")
            row["accuracy_delta_points"] = (
                None if base_acc is None or row["accuracy"] is None else round(100 * (row["accuracy"] - base_acc), 2)
            )
        rows.append(row)
    return rows


def _ratio(a: float | None, b: float | None) -> float | None:
    if not a or not b:
        return None
    return round(a / b, 3)


def _runtime_name(runtime: Any) -> str | None:
    if isinstance(runtime, dict):
        return " ".join(str(part) for part in (runtime.get("name"), runtime.get("version")) if part) or None
    return runtime


def _device_name(platform_facts: dict[str, Any] | None) -> str | None:
    """'Intel(R) Xeon(R) Processor (x86_64 Linux)': what a person recognises a board by."""
    if not platform_facts:
        return None
    system = " ".join(p for p in (platform_facts.get("machine"), platform_facts.get("system")) if p)
    model = platform_facts.get("cpu_model")
    return f"{model} ({system})" if model else system or None


def fleet_spread(measurements: list[dict[str, Any]]) -> dict[str, Any]:
    """Per artifact, how much the boards disagree (only meaningful with several targets)."""
    spread: dict[str, Any] = {}
    for name in sorted({m["artifact"] for m in measurements}):
        rows = [m for m in measurements if m["artifact"] == name]
        if len(rows) < 2:
            continue
        medians = [m["latency_ms"]["median"] for m in rows if m["latency_ms"].get("median") is not None]
        spread[name] = {
            "targets": [m["target"] for m in rows],
            "latency_median_ms": _stats(medians),
            "peak_rss_bytes": _stats([(m.get("memory") or {}).get("peak_rss_bytes") for m in rows]),
            "accuracy": _stats([(m.get("accuracy") or {}).get("overall") for m in rows]),
        }
    return spread


def _stats(figures: list[float | None]) -> dict[str, float] | None:
    values = [v for v in figures if v is not None]
    if not values:
        return None
    return {
        "min": min(values),
        "max": max(values),
        "median": statistics.median(values),
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
    }


def build_report(**sections: Any) -> dict[str, Any]:
    """Assemble report.json; sections are passed by name so the schema reads top to bottom here."""
    from edgecompress.reporting.per_class import per_class_impact

    report = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    report.update(sections)
    report["comparison"] = compare(sections["artifacts"], sections["measurements"], sections["baseline"])
    report["fleet_spread"] = fleet_spread(sections["measurements"])
    report["per_class"] = per_class_impact(sections["measurements"], sections["baseline"])
    return report


def complete_report(report: dict[str, Any], run_dir: str | Path, *, judging: Any = None) -> dict[str, Any]:
    """`report` plus every section the run folder's files allow; the input is not modified.

    Missing or unreadable optional files leave their section out and add a line to
    `report_notes`, so a report can always be rendered. The verdict (v4) is judged again
    each time, under `judging` (decision.judging.Judging: rules overridden by `deploy` or
    `report`) or else the rules the report was last judged under.
    """
    from edgecompress.decision.judging import judge_report
    from edgecompress.reporting.per_class import per_class_impact
    from edgecompress.reporting.run_files import RunFiles

    files = RunFiles(run_dir)
    done = migrate(copy.deepcopy(report))
    for section, read in (("significance", files.significance), ("plan", files.plan)):
        if done.get(section) is None:
            found = read()
            if found is not None:
                done[section] = found
    layer_names = [layer["name"] for layer in (done.get("plan") or {}).get("layers", []) if "name" in layer] or None
    for artifact in done["artifacts"]:
        _add_weight_sizes(artifact, files, layer_names)
        add_macs(artifact, files.artifact_file(artifact))
    if any("bitpacked_bytes" in a for a in done["artifacts"]):
        from edgecompress.export import BITPACKED_DEFINITION

        done["size_definitions"] = {**SIZE_DEFINITIONS, "bitpacked_bytes": BITPACKED_DEFINITION}
    earlier = _disagreements_by_key(done.get("per_class") or [])
    done["per_class"] = per_class_impact(done["measurements"], done["baseline"])
    _add_disagreements(done, files, earlier)
    add_timing(done, files)
    done["comparison"] = compare(done["artifacts"], done["measurements"], done["baseline"])
    done["fleet_spread"] = fleet_spread(done["measurements"])  # after add_timing: the rounds' latencies
    done["verdict"] = judge_report(done, files, judging)
    done["schema_version"] = SCHEMA_VERSION
    done["report_notes"] = files.problems
    return done


def migrate(report: dict[str, Any]) -> dict[str, Any]:
    """Bring an older report's sections to the current shapes (in place; returns it).

    v3: `keras_reference` has the runner's accuracy shape (`overall`, `n`, `per_class` keyed
    by class index with `name`), like every measurement; v2 had `accuracy` and per_class by name.
    v5: `micro` lists every firmware built (`firmwares`); v4's one build becomes its only
    entry, the `tflm-firmware` artifact built from the plan's compressed model.
    v6: latency from the boards' timing rounds; a report from before them has no rounds file,
    keeps its single-block figures and gets no `timing` section (reporting/timing.add_timing).
    """
    micro = report.get("micro")
    if isinstance(micro, dict) and "firmwares" not in micro:
        source = micro.get("artifact")
        report["micro"] = {
            "firmwares": [
                {**micro, "source": source, "firmware_artifact": "tflm-firmware", "role": "compressed", "built": True}
            ]
        }
    reference = report.get("keras_reference")
    if isinstance(reference, dict) and "accuracy" in reference and "overall" not in reference:
        names = (report.get("data") or {}).get("classes") or list(reference.get("per_class") or {})
        per_class = reference.get("per_class") or {}
        report["keras_reference"] = {
            "n": reference.get("n"),
            "overall": reference.get("accuracy"),
            "per_class": {str(i): {"name": name, **per_class.get(name, {})} for i, name in enumerate(names)},
        }
    return report


def _add_weight_sizes(artifact: dict[str, Any], files: Any, layer_names: list[str] | None) -> None:
    """Bit-packed size and per-tensor unique values, read back from the .tflite itself."""
    if artifact.get("format") != "tflite" or ("bitpacked_bytes" in artifact and "weights" in artifact):
        return
    path = files.artifact_file(artifact)
    if path is None:
        return
    from edgecompress.errors import EdgeCompressError
    from edgecompress.export import bitpacked_size, tflite_weight_stats

    data = path.read_bytes()
    try:
        stats = tflite_weight_stats(data, layer_names=layer_names)
        packed = bitpacked_size(stats, tflite_bytes=data)
    except (EdgeCompressError, ValueError, KeyError, IndexError) as error:
        files.note(f"weights of {path.name} could not be read back ({error}); no bit-packed size")
        return
    artifact.setdefault("bitpacked_bytes", packed["total_bytes"])
    artifact.setdefault("bitpacked", packed)
    artifact.setdefault("weights", [{key: row.get(key) for key in WEIGHT_FIELDS} for row in stats])


def _disagreements_by_key(per_class: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (block["target"], name): summary["disagreements"]
        for block in per_class
        for name, summary in block.get("compressed", {}).items()
        if "disagreements" in summary
    }


def _add_disagreements(report: dict[str, Any], files: Any, earlier: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Per compressed artifact, the eval samples on which it and the baseline disagree.

    Computed from the measurement files and eval.npz; a report whose folder no longer has
    them keeps the figures it was written with (`earlier`).
    """
    from edgecompress.reporting.per_class import disagreements

    labels = files.eval_labels()
    artifacts = {a["name"]: a for a in report["artifacts"]}
    for block in report["per_class"]:
        base = files.predictions(artifacts[block["baseline"]], block["target"]) if labels else None
        for name, summary in block["compressed"].items():
            predictions = files.predictions(artifacts[name], block["target"]) if labels else None
            if base is None or predictions is None:
                if (block["target"], name) in earlier:
                    summary["disagreements"] = earlier[(block["target"], name)]
                continue
            y, class_names = labels
            if not len(base) == len(predictions) == len(y):
                files.note(
                    f"predictions of {name} on {block['target']} do not match eval.npz in length; no disagreements"
                )
                continue
            summary["disagreements"] = disagreements(y, base, predictions, class_names)


def load_report(run_dir: str | Path) -> dict[str, Any]:
    """report.json of a run folder, checked to be one this version can render."""
    from edgecompress.errors import EdgeCompressError
    from edgecompress.reporting.run_files import RunFiles

    report = RunFiles(run_dir).read_report_json()
    file = Path(run_dir) / LAYOUT.report
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        found = report.get("schema") if isinstance(report, dict) else None
        raise EdgeCompressError(
            f"{file} is not an edgecompress report (schema {found!r}).",
            "Pass the run folder of an `edgecompress deploy`.",
        )
    if report.get("schema_version") not in SUPPORTED_VERSIONS:
        raise EdgeCompressError(
            f"{file} has report schema version {report.get('schema_version')}; this edgecompress reads versions "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}.",
            "Use the edgecompress version that wrote it (see its 'edgecompress_version'), or upgrade edgecompress.",
        )
    return report
