"""What the safe loader costs over tf-keras's own `load_model`, per step, on real model sizes.

    python benchmarks/bench_model_load.py            # digits CNN, MobileNetV2-0.35, ResNet50 (h5 and .keras)
    python benchmarks/bench_model_load.py --repeats 1 --models digits_cnn

For each model saved as .h5 and .keras: the median time of tf-keras's `load_model(compile=False)`
on the file, and of edgecompress's `load_model`, split into the private copy + SHA-256, reading
the architecture, the full config check, rewriting the copy with the checked JSON, and tf-keras
loading that copy. Writes benchmarks/results/model_load.json. Timings on a shared machine are
noisy: the time the safety steps add (copy, read, check, rewrite -- measured step by step, and
compared with tf-keras's own load in the same run) is the figure to read.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))


def _models() -> dict[str, Callable[[], Any]]:
    from edgecompress._tf import keras
    from edgecompress.example_model import build_digits_cnn

    applications = keras().applications
    return {
        "digits_cnn": lambda: build_digits_cnn(10),
        "mobilenet_v2_0.35": lambda: applications.MobileNetV2(
            input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10
        ),
        "resnet50": lambda: applications.ResNet50(input_shape=(96, 96, 3), weights=None, classes=10),
    }


def _timed(step: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = step()
    return result, time.perf_counter() - start


def _steps(path: Path) -> dict[str, float]:
    """edgecompress's load, one step at a time (the same calls load_model makes)."""
    from edgecompress import model_io

    times = {}
    with tempfile.TemporaryDirectory(prefix="edgecompress-bench-") as private:
        (copy, _), times["copy_and_hash"] = _timed(lambda: model_io._private_copy(path, Path(private)))
        config, times["read_architecture"] = _timed(lambda: model_io.read_architecture(copy, shown=path))
        checked, times["check"] = _timed(lambda: model_io.check_architecture(config, source=path.name))
        _, times["hand_over"] = _timed(lambda: model_io._hand_over(copy, checked))
        _, times["tf_keras_load_of_copy"] = _timed(lambda: model_io._tf_keras_load(copy, path))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from edgecompress._tf import keras
    from edgecompress.model_io import load_model
    from edgecompress.model_safety import builtin_vocabulary

    builtin_vocabulary()  # imported once per process, like TensorFlow itself
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgecompress-bench-models-") as folder:
        for name, build in _models().items():
            if args.models and name not in args.models:
                continue
            model = build()
            for suffix in (".h5", ".keras"):
                path = Path(folder) / f"{name}{suffix}"
                model.save(path)
                plain = [
                    _timed(lambda p=path: keras().models.load_model(p, compile=False))[1] for _ in range(args.repeats)
                ]
                safe = [_timed(lambda p=path: load_model(p, for_export=False))[1] for _ in range(args.repeats)]
                steps = [_steps(path) for _ in range(args.repeats)]
                row = {
                    "model": name,
                    "format": suffix.lstrip("."),
                    "file_bytes": path.stat().st_size,
                    "parameters": int(model.count_params()),
                    "tf_keras_load_s": statistics.median(plain),
                    "edgecompress_load_s": statistics.median(safe),
                    "steps_s": {key: statistics.median(s[key] for s in steps) for key in steps[0]},
                }
                row["ratio"] = row["edgecompress_load_s"] / row["tf_keras_load_s"]
                # what the safety steps add, independent of how long tf-keras itself takes
                row["added_s"] = sum(value for key, value in row["steps_s"].items() if key != "tf_keras_load_of_copy")
                row["added_fraction_of_tf_keras_load"] = row["added_s"] / row["tf_keras_load_s"]
                rows.append(row)
                step_text = ", ".join(f"{key} {value:.3f}" for key, value in row["steps_s"].items())
                print(
                    f"{name:18s} {row['format']:5s} {row['file_bytes'] / 1e6:7.1f} MB  tf-keras {row['tf_keras_load_s']:6.2f} s  "
                    f"edgecompress {row['edgecompress_load_s']:6.2f} s  (x{row['ratio']:.2f}); checks add {row['added_s']:.3f} s "
                    f"({row['added_fraction_of_tf_keras_load']:.1%})  [{step_text}]",
                    flush=True,
                )
    out = ROOT / "results" / "model_load.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"repeats": args.repeats, "note": "median seconds; shared 2-core machine, noisy", "rows": rows}, indent=2
        )
        + "\n"
    )
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
