"""Data loading for edgecompress: one call turns a user's data into arrays that fit the model.

    from edgecompress.data import load_dataset, write_eval_npz
    data = load_dataset("photos/", input_shape=(32, 32, 3), classes=["cat", "dog"])
    write_eval_npz(data, Path("eval.npz"), output_kind="softmax")

Modules: spec (what to load), sources (read sklearn / .npz / class folders to 0..255 pixels),
pool (labels first, pixels only for the rows kept), images (image files and their decoding),
layout (fit to the model's input shape), selection (classes, split, subsample), dataset
(scaling, report description), eval_npz (the runner's input file).
No TensorFlow here: loading data must not pay for importing it.
"""

from edgecompress.data.dataset import SCALINGS, Dataset
from edgecompress.data.eval_npz import OUTPUT_KINDS, write_eval_npz
from edgecompress.data.load import load_dataset
from edgecompress.data.spec import DataSpec

__all__ = ["OUTPUT_KINDS", "SCALINGS", "DataSpec", "Dataset", "load_dataset", "write_eval_npz"]
