"""Fuzzing the data loaders: odd .npz / .npy files end in edgecompress's own errors, never a crash.

300 seeded random cases (shapes, dtypes, sizes, label values, keys, models) run in a child
process under an address-space limit, so an allocation sized by something a file says shows
up as a failure here instead of the machine's OOM killer. Every case must load or raise an
EdgeCompressError; anything else (a MemoryError, a ValueError from NumPy, a traceback) is a bug.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

#: the child's address-space limit: enough for NumPy and scikit-learn, far below the machine's RAM
LIMIT_BYTES = 3 << 30

CHILD = textwrap.dedent(
    """
    import json, resource, sys, traceback, zipfile
    import numpy as np
    LIMIT, SEED, CASES, DIR = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))
    from edgecompress.data import load_dataset
    from edgecompress.errors import EdgeCompressError
    from edgecompress.tasks import ModelFacts, OutputSpec

    rng = np.random.default_rng(SEED)
    DTYPES = ["float16", "float32", "float64", "int8", "int64", "uint8", "bool", "complex64", "U3", "object", "M8[s]"]

    def array(shape):
        dtype = "float32" if rng.random() < 0.5 else rng.choice(DTYPES)
        if dtype == "object":
            return np.array([None, 1, "a"] * max(1, int(np.prod(shape)) // 3 + 1), dtype=object)[: int(np.prod(shape))].reshape(shape)
        if dtype == "U3":
            return rng.choice(["a", "bb", "ccc"], size=shape)
        values = rng.normal(0, rng.choice([1e-3, 1, 300, 1e40]), size=shape)
        if values.size and rng.random() < 0.1:
            values.flat[rng.integers(0, values.size)] = rng.choice([np.nan, np.inf, -np.inf])
        with np.errstate(all="ignore"):
            return values.astype(dtype)

    def labels(n):
        kind = rng.integers(0, 7)
        if kind == 0:
            return rng.integers(0, 4, n)
        if kind == 1:
            return np.full(n, 401158996313)
        if kind == 2:
            return rng.integers(-3, 3, n)
        if kind == 3:
            return rng.normal(size=(n, int(rng.integers(1, 4))))
        if kind == 4:
            return np.eye(3)[rng.integers(0, 3, n)]
        if kind == 5:
            return rng.choice(["cat", "dog"], n)
        return array((n,))

    def facts():
        shape = tuple(int(d) for d in rng.integers(1, 9, size=rng.integers(1, 4)))
        outputs = [OutputSpec(f"o{i}", tuple(int(d) for d in rng.integers(1, 6, size=rng.integers(1, 3))),
                              str(rng.choice(["softmax", "sigmoid", "logits"]))) for i in range(rng.integers(1, 3))]
        if rng.random() < 0.3:
            outputs = [OutputSpec("o", shape, "sigmoid")]
        return ModelFacts(shape, tuple(outputs))

    def case(path, model):
        n = int(rng.choice([0, 1, 2, 5, 40]))
        shape = (n, *(model.input_shape if rng.random() < 0.7 else tuple(int(d) for d in rng.integers(0, 6, rng.integers(0, 4)))))
        layout = rng.integers(0, 5)
        arrays = {}
        if layout == 0:
            arrays = {"x": array(shape), "y": labels(n)}
        elif layout == 1:
            arrays = {"x": array(shape)}
        elif layout == 2:
            arrays = {"x_train": array(shape), "x_test": array(shape), "y_test": labels(n)}
        elif layout == 3:
            arrays = {"x0": array(shape), "x1": array(shape)}
        else:
            arrays = {str(rng.choice(["x", "images", "y", "x_train"])): array(shape) for _ in range(2)}
        if rng.random() < 0.2:
            arrays["class_names"] = rng.choice(["a", "b", "c"], size=int(rng.integers(0, 4)))
        np.savez(path, **arrays)
        if rng.random() < 0.1:  # a member whose header declares far more data than there is
            with zipfile.ZipFile(path, "a") as archive:
                header = {"descr": "<f8", "fortran_order": False, "shape": (10**9, 1000)}
                with archive.open("x_test.npy", "w") as stream:
                    np.lib.format.write_array_header_2_0(stream, header)
                    stream.write(b"\\0" * 64)

    failures, loaded, refused = [], 0, {}
    for i in range(CASES):
        path = f"{DIR}/case{i}.npz"
        model = facts()
        case(path, model)  # a failure here is the generator's own bug, and fails the test loudly
        task = rng.choice([None, "classification", "regression", "anomaly", "fidelity", "segmentation"])
        try:
            load_dataset(path, model=model, task=task, seed=i, max_test=int(rng.choice([2, 50])))
            loaded += 1
        except EdgeCompressError as error:
            first = error.problem.split(": ")[-1][:40]
            refused[first] = refused.get(first, 0) + 1
        except BaseException as error:
            failures.append({"case": i, "error": type(error).__name__, "message": str(error)[:300],
                             "where": traceback.format_exc().splitlines()[-3][:300]})
    print(json.dumps({"failures": failures, "loaded": loaded, "refused": refused}))
    """
)


def test_odd_npz_files_end_in_edgecompress_errors_within_bounded_memory(tmp_path: Path) -> None:
    environment = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    root = str(Path(__file__).resolve().parents[1])
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, str(LIMIT_BYTES), "20", "300", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**environment, "PYTHONPATH": root},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    outcome = json.loads(completed.stdout.strip().splitlines()[-1])
    assert outcome["failures"] == [], json.dumps(outcome["failures"][:5], indent=1)
    # the cases reach past the first check: some load, and the refusals are of many kinds
    assert outcome["loaded"] >= 15 and len(outcome["refused"]) >= 15, outcome
