"""Data loading for edgecompress: one call turns a user's data into arrays that fit the model.

    from edgecompress.data import load_dataset, write_eval_npz
    data = load_dataset("photos/", input_shape=(32, 32, 3), classes=["cat", "dog"])
    write_eval_npz(data, Path("eval.npz"), output_kind="softmax")

Modules: spec (what to load), arrays (.npz / .npy read safely), sources (read sklearn / .npz /
.npy / folders into parts: samples as stored, labels as stored), labels (labels read for the
task), pool (labels first, samples only for the rows kept), images (image files and their
decoding), layout (fit to the model's input shape), selection (classes, split, subsample),
dataset (scaling, report description), scaling (which scaling the model expects),
eval_npz (the runner's input file).
No TensorFlow here: loading data must not pay for importing it.
"""

from edgecompress.data.dataset import AS_STORED, SCALING_NAMES, SCALINGS, Dataset
from edgecompress.data.eval_npz import OUTPUT_KINDS, RAW_OUTPUTS, write_eval_npz
from edgecompress.data.load import load_dataset
from edgecompress.data.spec import DataSpec

__all__ = [
    "AS_STORED",
    "OUTPUT_KINDS",
    "RAW_OUTPUTS",
    "SCALINGS",
    "SCALING_NAMES",
    "DataSpec",
    "Dataset",
    "load_dataset",
    "write_eval_npz",
]
