"""ship/: everything needed to put the recommended artifact into an application, and to check it arrived.

    ship/
      model.tflite            the recommended artifact (model.onnx for an ONNX one), under a stable name
      labels.txt              class names, one a line, in the model's output order
      input.json              shape, dtype, scale and zero point, pixel scaling (0-1 / 0-255 / -1-1), layout
      edgecompress_runner.py  the standalone runner (Python 3.8+, NumPy, one runtime) that measured it
      smoke_input.npy         a few evaluation inputs, already scaled, for the smoke inference
      README.txt              how to load it and how to check it
      manifest.json           SHA-256 of every file, what was measured where, versions, data fingerprint,
                              the reference output of the smoke inputs and its tolerance

For microcontroller profiles the bundle is the TFLite Micro firmware project (firmware/) with
labels, input spec and manifest: a microcontroller is flashed, not installed over SSH.
The bundle is written beside itself and swapped in, so ship/ is never half old, half new.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgecompress.errors import EdgeCompressError
from edgecompress.run_folder import json_default, write_atomically
from edgecompress.run_layout import LAYOUT, final_name

SHIP_DIR = LAYOUT.ship
MANIFEST = "manifest.json"
MANIFEST_SCHEMA = "edgecompress.ship-manifest"
MANIFEST_VERSION = 1
RUNNER = "edgecompress_runner.py"
SMOKE_INPUT = "smoke_input.npy"
SMOKE_SAMPLES = 8
#: how far the board's smoke scores may stray from the reference: one int8 output step is 1/256 ~ 0.004,
#: float kernels differ across runtime builds by ~1e-6; the top class must be identical
TOLERANCE = {"atol": 0.01, "top1": "identical"}


class BundleError(EdgeCompressError):
    """The run cannot be bundled, or a bundle on disk does not match its manifest."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_bundle(run_dir: str | Path, report: dict[str, Any]) -> Path | None:
    """Write ship/ for the verdict's recommendation; with no recommendation, remove a stale ship/ and return None."""
    run_dir = Path(run_dir)
    target = run_dir / SHIP_DIR
    name = (report.get("verdict") or {}).get("recommended")
    if not name:
        shutil.rmtree(target, ignore_errors=True)
        return None
    staging = run_dir / f".{SHIP_DIR}.{time.strftime('%Y%m%d%H%M%S')}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        if report["profile"].get("device_class") == "microcontroller":
            _firmware_files(run_dir, report, name, staging)
        else:
            _linux_files(run_dir, report, name, staging)
        _write_manifest(staging, run_dir, report, name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _swap_in(staging, target)
    return target


def _swap_in(staging: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _artifact(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in report["artifacts"] if a["name"] == name)


def _linux_files(run_dir: Path, report: dict[str, Any], name: str, out: Path) -> None:
    from edgecompress.resources import runner_script

    artifact = _artifact(report, name)
    source = run_dir / LAYOUT.artifacts / artifact["path"]
    if not source.is_file() or sha256_file(source) != artifact["sha256"]:
        raise BundleError(
            f"{source} is missing or no longer the file that was measured (its SHA-256 changed).",
            "Deploy again; a bundle is made only of the very file the report measured.",
        )
    shutil.copyfile(source, out / f"model{source.suffix}")
    shutil.copyfile(runner_script(), out / RUNNER)
    _common_files(run_dir, report, out, out / f"model{source.suffix}")


def firmware_build(report: dict[str, Any], name: str) -> dict[str, Any]:
    """The firmware build behind artifact `name`: the firmware artifact itself, or the .tflite it was built from."""
    builds = (report.get("micro") or {}).get("firmwares") or []
    build = next(
        (b for b in builds if b.get("built", True) and name in (b.get("firmware_artifact"), b.get("source"))), None
    )
    if build is None:
        built = ", ".join(str(b.get("firmware_artifact")) for b in builds if b.get("built", True)) or "none"
        raise BundleError(
            f"The verdict recommends {name}, but no TFLite Micro firmware of it was built (firmwares: {built}).",
            f"Deploy again with --recipe set to {name}'s recipe so its firmware is built.",
        )
    return build


def _firmware_files(run_dir: Path, report: dict[str, Any], name: str, out: Path) -> None:
    build = firmware_build(report, name)
    firmware = run_dir / str(build.get("firmware_dir", f"{LAYOUT.micro}/firmware"))
    if not firmware.is_dir():
        raise BundleError(f"The firmware project {firmware} is missing.", "Resume or repeat the deploy to rebuild it.")
    shutil.copytree(firmware, out / "firmware", symlinks=False, ignore=shutil.ignore_patterns("build"))
    source = run_dir / LAYOUT.artifacts / _artifact(report, str(build["source"]))["path"]
    shutil.copyfile(source, out / "model.tflite")
    _common_files(run_dir, report, out, out / "model.tflite")


def _common_files(run_dir: Path, report: dict[str, Any], out: Path, model: Path) -> None:
    classes = [str(c) for c in (report.get("data") or {}).get("classes") or []]
    (out / "labels.txt").write_text("".join(f"{c}\n" for c in classes), encoding="utf-8")
    (out / "input.json").write_text(json.dumps(input_spec(report, model), indent=2) + "\n", encoding="utf-8")
    eval_file = run_dir / LAYOUT.eval
    if not eval_file.is_file():
        raise BundleError(f"{eval_file} is missing: the smoke inputs come from it.", "Resume or repeat the deploy.")
    with np.load(eval_file, allow_pickle=False) as data:
        np.save(out / SMOKE_INPUT, np.asarray(data["x"][:SMOKE_SAMPLES], dtype=np.float32), allow_pickle=False)
    readme = _firmware_readme(report) if (out / "firmware").is_dir() else _readme(report, model.name)
    (out / "README.txt").write_text(readme, encoding="utf-8")


def input_spec(report: dict[str, Any], model: Path) -> dict[str, Any]:
    """What an application must feed the model, read from the model file itself and the run's data."""

    data, described = report.get("data") or {}, report["model"]
    _, session = _session_here(model)
    quantization = getattr(session, "input_quantization", (0.0, 0))
    dtype = str(np.dtype(session.input_dtype))
    return {
        "shape": [1, *[d for d in session.input_shape[1:]]],
        "layout": "NHWC" if len(session.input_shape) == 4 else None,
        "dtype": dtype,
        "quantization": {"scale": float(quantization[0]), "zero_point": int(quantization[1])}
        if dtype in ("int8", "uint8")
        else None,
        "scaling": data.get("scaling"),
        "scaling_meaning": {
            "0-1": "pixels divided by 255",
            "0-255": "raw pixel values",
            "-1-1": "pixels / 127.5 - 1",
        }.get(str(data.get("scaling"))),
        "class_order": [str(c) for c in data.get("classes") or []],
        "output_kind": described.get("output_kind"),
        "float_inputs_quantized_as": "round(x / scale) + zero_point, clipped to the dtype"
        if dtype in ("int8", "uint8")
        else None,
    }


def _readme(report: dict[str, Any], model_name: str) -> str:
    verdict = report.get("verdict") or {}
    return (
        f"{model_name}: {verdict.get('recommended')} of {Path(report['model']['path']).name} for {report['profile']['name']}\n\n"
        f"Why: {verdict.get('reason')}\n\n"
        "Inputs: see input.json (shape, dtype, scaling, class order); labels.txt lists the classes in output order.\n"
        "Check it on a board (needs Python 3.8+, NumPy and the runtime named in manifest.json):\n"
        f"  python3 {RUNNER} --probe\n"
        "Install it with its hashes verified and a smoke inference compared with manifest.json:\n"
        "  edgecompress ship RUN_DIR --target ssh://user@board --path /opt/models/NAME\n"
    )


def _firmware_readme(report: dict[str, Any]) -> str:
    verdict = report.get("verdict") or {}
    programmer = (report.get("profile") or {}).get("programmer") or {}
    flash = (
        "  "
        + programmer["command"].replace("{elf}", "firmware/firmware.elf").replace("{bin}", "firmware/firmware.bin")
        + "\n"
        f"  ({programmer.get('tool')}: {programmer.get('note') or 'the board vendor documents it'})\n"
        if programmer.get("command")
        else "  with your board's programmer (the profile names none)\n"
    )
    return (
        f"firmware/: {verdict.get('recommended')} of {Path(report['model']['path']).name} for {report['profile']['name']}, "
        "as a TFLite Micro project with its linked firmware.elf, firmware.map and firmware.bin\n\n"
        f"Why: {verdict.get('reason')}\n\n"
        "Inputs: see input.json (shape, dtype, quantization, scaling); labels.txt lists the classes in output order;\n"
        "model.tflite is the int8 model the firmware carries (in model_data.cc).\n"
        "Check that these sources still link to the very firmware.bin that was measured:\n"
        "  edgecompress ship RUN_DIR\n"
        "firmware.ld places code and data at the emulated board's addresses: link with your board's linker script\n"
        "and start-up file (see firmware/README.md and firmware/Makefile), then flash it, e.g.\n" + flash
    )


def _write_manifest(out: Path, run_dir: Path, report: dict[str, Any], name: str) -> None:
    files = {
        str(p.relative_to(out)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }
    model_file = next(f for f in files if f.startswith("model."))
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "version": MANIFEST_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "run": final_name(run_dir.name),  # the folder's name once the run has finished, not NAME.partial
        "kind": "firmware" if (out / "firmware").is_dir() else "linux",
        "source_model": {"file": Path(report["model"]["path"]).name, "sha256": report["model"].get("sha256")},
        "artifact": {
            **{k: _artifact(report, name).get(k) for k in ("name", "kind", "description", "format", "sha256")},
            "file": model_file,
        },
        "files": files,
        "input": json.loads((out / "input.json").read_text()),
        "expected": expected_figures(report, name),
        "verdict": {k: (report.get("verdict") or {}).get(k) for k in ("reason", "rules", "rules_source")},
        "versions": _versions(report),
        "data": _data_fingerprint(run_dir, report),
        "smoke": _smoke_reference(out, model_file, report) if model_file and (out / RUNNER).is_file() else None,
    }
    if (out / "firmware").is_dir():
        manifest["firmware"] = _firmware_facts(out, report, name)
    write_atomically(out / MANIFEST, (json.dumps(manifest, indent=2, default=json_default) + "\n").encode())


def _firmware_facts(out: Path, report: dict[str, Any], name: str) -> dict[str, Any]:
    """What a microcontroller bundle carries: the linked ELF's figures, its image, and how the board is flashed."""
    build = firmware_build(report, name)
    linked = build.get("linked_firmware") or {}
    fits = build.get("fits") or {}
    programmer = (report.get("profile") or {}).get("programmer")
    return {
        "source": build.get("source"),
        "project": "firmware",
        "elf": "firmware/firmware.elf",
        "map": "firmware/firmware.map",
        "image": "firmware/firmware.bin",
        "core": (linked.get("core") or {}).get("family"),
        "kernels": linked.get("kernels"),
        "board_memory_map": linked.get("board"),
        "flash_bytes": fits.get("flash_needed_bytes"),
        "ram_bytes": fits.get("ram_needed_bytes"),
        "budget": {k: fits.get(k) for k in ("flash_budget_bytes", "ram_budget_bytes", "flash", "ram", "basis")},
        "toolchain": linked.get("toolchain"),
        "tflm_revision": (linked.get("tflm") or {}).get("revision"),
        "programmer": programmer,
    }


def expected_figures(report: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Accuracy, latency and memory of the artifact as measured, per target, with what measured them."""
    rows = {(r["artifact"], r["target"]): r for r in report["comparison"]}
    found = []
    for m in report["measurements"]:
        if m["artifact"] != name:
            continue
        row = rows.get((name, m["target"]), {})
        found.append(
            {
                "target": m["target"],
                "device": row.get("device"),
                "runtime": m.get("runtime"),
                "threads": m.get("threads"),
                "accuracy": row.get("accuracy"),
                "accuracy_delta_points": row.get("accuracy_delta_points"),
                "eval_n": row.get("eval_n"),
                "latency_ms": {"median": row.get("latency_median_ms"), "p90": row.get("latency_p90_ms")},
                "instructions_median": row.get("instructions_median"),
                "peak_rss_bytes": row.get("peak_rss_bytes"),
            }
        )
    return found


def _versions(report: dict[str, Any]) -> dict[str, Any]:
    from edgecompress.evaluation import runner_module

    packages = (report.get("host") or {}).get("packages") or {}
    return {
        "edgecompress": report.get("edgecompress_version"),
        "runner": runner_module().RUNNER_VERSION,
        **{k: packages.get(k) for k in ("tensorflow", "tf-keras", "ai-edge-litert", "onnxruntime", "tf2onnx")},
    }


def _data_fingerprint(run_dir: Path, report: dict[str, Any]) -> dict[str, Any]:
    data = report.get("data") or {}
    eval_file = run_dir / LAYOUT.eval
    return {
        "source": data.get("source"),
        "classes": data.get("classes"),
        "scaling": data.get("scaling"),
        "eval_sha256": sha256_file(eval_file) if eval_file.is_file() else None,
        "eval_n": next((r.get("eval_n") for r in report["comparison"] if r.get("eval_n")), None),
    }


def _session_here(model: Path) -> tuple[Any, Any]:
    """(runtime, session): the artifact loaded by the runner's own code in this process; what the runtime
    prints on loading ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.") goes to the log."""
    from edgecompress._tf import quiet_native_output
    from edgecompress.evaluation import runner_module

    with quiet_native_output():
        runtime = runner_module().import_runtime(str(model), "auto", lambda message: None)
        return runtime, runtime.load(str(model), 1)


def _smoke_reference(out: Path, model_file: str, report: dict[str, Any]) -> dict[str, Any]:
    """The smoke inputs through the runner's own code on this host: what a board must reproduce."""
    from edgecompress._tf import quiet_native_output
    from edgecompress.evaluation import runner_module

    runner = runner_module()
    runtime, session = _session_here(out / model_file)
    x = np.load(out / SMOKE_INPUT, allow_pickle=False)
    with quiet_native_output():
        scores = np.concatenate([session.run(x[i : i + 1]) for i in range(len(x))])
    kind = report["model"].get("output_kind") or "softmax"
    return {
        "input": SMOKE_INPUT,
        "output_kind": kind,
        "reference_scores": [[round(float(v), 7) for v in row] for row in scores],
        "reference_predictions": [int(p) for p in runner.predict(scores, kind)],
        "reference_runtime": {
            "name": runtime.name,
            "version": runtime.version,
            "where": "the host that made the bundle",
        },
        "tolerance": TOLERANCE,
    }


def load_manifest(bundle: Path) -> dict[str, Any]:
    """manifest.json, after checking every file of the bundle against it (a changed bundle is refused)."""
    file = bundle / MANIFEST
    if not file.is_file():
        raise BundleError(
            f"{bundle} has no {MANIFEST}, so it is not a bundle edgecompress made.",
            "Run `edgecompress ship RUN_DIR` to (re)build the bundle from the run's verdict.",
        )
    try:
        manifest = json.loads(file.read_text())
    except (OSError, ValueError) as error:
        raise BundleError(
            f"{file} is unreadable ({error}).", "Rebuild it: edgecompress ship RUN_DIR --rebuild"
        ) from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("schema") != MANIFEST_SCHEMA
        or not isinstance(manifest.get("files"), dict)
    ):
        raise BundleError(
            f"{file} is not an edgecompress ship manifest.", "Rebuild it: edgecompress ship RUN_DIR --rebuild"
        )
    damaged = [
        name
        for name, entry in manifest["files"].items()
        if not (bundle / name).is_file() or sha256_file(bundle / name) != entry.get("sha256")
    ]
    if damaged:
        raise BundleError(
            f"The bundle {bundle} does not match its manifest: {', '.join(damaged)} changed or went missing.",
            "Rebuild it from the run (edgecompress ship RUN_DIR --rebuild); nothing was sent.",
        )
    return manifest
