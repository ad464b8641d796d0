"""Read each kind of data spec into its parts: samples read on demand, labels as stored.

A `Source` says what the data holds without interpreting its labels: class folders and
label strings are classes, numbers stay numbers (the task decides whether they are class
indices, 0/1 anomaly labels or regression targets, see data/labels.py), and data without
labels has none. Samples are kept as stored; `pixel_factor` says when they are pixels (and
how to bring them to 0..255: digits are 0..16, an .npz may already be 0..1), so scaling is
one step afterwards whatever the source. Anything else (sensor windows, spectrograms,
standardised features) is taken as the values the model expects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from edgecompress.data.arrays import numeric_samples, read_npy, read_npz
from edgecompress.data.images import IMAGE_SUFFIXES, class_folders, decode_images, image_files
from edgecompress.data.layout import InputLayout, fit_arrays
from edgecompress.data.pool import Reader
from edgecompress.data.spec import DataSpec
from edgecompress.errors import DataError

#: Above this maximum, image-like arrays hold raw 0..255 pixels; at or below it, values already in 0..1.
NPZ_RAW_PIXEL_THRESHOLD = 1.5
#: image-like arrays: at least this many rows and columns per sample (a 128x3 IMU window is not an image)
MIN_IMAGE_SIDE = 4
_SPLIT_X = ("x_train", "x_test")
NPY_SUFFIX = ".npy"


@dataclass
class Part:
    """One part of the data (train or test): its samples, read on demand, and its labels as stored."""

    n: int
    read: Reader  # rows -> (samples fitted to the model's input, as stored; notes)
    y: np.ndarray | None  # one label (or row of targets) per sample; None: unlabelled


@dataclass
class Source:
    """What a data spec holds; `test` is None when the test set must be split off `train`."""

    train: Part
    test: Part | None
    labels: Literal["classes", "numbers", "none"]
    class_names: list[str] | None = None  # class folders, or class_names in an .npz
    pixel_factor: float | None = None  # stored value x factor = 0..255 pixel; None: not pixels
    notes: list[str] = field(default_factory=list)


def read_source(spec: DataSpec, layout: InputLayout, wanted: list[str] | None = None) -> Source:
    """`wanted` lets a reader skip classes that will be dropped (a folder then lists only their files)."""
    readers = {"sklearn": _read_sklearn, "npz": _read_npz, "npy": _read_npy, "folder": _read_folder}
    return readers[spec.kind](spec, layout, wanted)


def _array_part(x: np.ndarray, y: np.ndarray | None, layout: InputLayout, where: str, pixels: bool) -> Part:
    fit_arrays(x[:1], layout, where, pixels=pixels)  # fail on shape before any splitting work
    return Part(len(x), lambda rows: (fit_arrays(x[rows], layout, where, pixels=pixels), []), y)


# --- sklearn -------------------------------------------------------------------------------


def _read_sklearn(spec: DataSpec, layout: InputLayout, _wanted: list[str] | None) -> Source:
    if spec.location == "diabetes":
        from sklearn.datasets import load_diabetes  # imported lazily (0.5 s)

        diabetes = load_diabetes()
        x = diabetes.data.astype(np.float32)
        part = _array_part(x, diabetes.target.astype(np.float64), layout, str(spec), pixels=False)
        return Source(
            part, None, "numbers", notes=["sklearn diabetes: 10 standardised features, disease progression targets"]
        )
    from sklearn.datasets import load_digits

    digits = load_digits()
    names = [str(n) for n in digits.target_names]
    part = _array_part(digits.images.astype(np.float32), digits.target, layout, str(spec), pixels=True)
    return Source(
        part,
        None,
        "classes",
        names,
        255.0 / 16.0,
        ["sklearn digits: pixel values 0..16 mapped to 0..255 before scaling"],
    )


# --- .npz / .npy ---------------------------------------------------------------------------


def _read_npz(spec: DataSpec, layout: InputLayout, _wanted: list[str] | None) -> Source:
    path = spec.path
    arrays = read_npz(path)
    parts = _npz_parts(arrays, path)
    xs = {part: numeric_samples(arrays[x_key], path, x_key) for part, (x_key, _) in parts.items()}
    ys = {part: None if y_key is None else arrays[y_key] for part, (_, y_key) in parts.items()}
    for part, (x_key, y_key) in parts.items():
        y = ys[part]
        if y is not None and (y.ndim == 0 or len(y) != len(xs[part])):
            raise DataError(
                f"{path}: {x_key} has {len(xs[part])} examples but {y_key} has "
                f"{'one value' if y.ndim == 0 else f'{len(y)} labels'}.",
                f"Save one label per example, so that len({x_key}) == len({y_key}).",
            )
    kind, names = _label_kind(ys, arrays.get("class_names"), path)
    bytes_ = all(arrays[x_key].dtype == np.uint8 for x_key, _ in parts.values())
    factor, note = _pixel_range(xs, bytes_)
    built = {part: _array_part(x, ys[part], layout, str(path), pixels=factor is not None) for part, x in xs.items()}
    return Source(built["train"], built.get("test"), kind, names, factor, [note])


def _npz_parts(arrays: dict[str, np.ndarray], path: Path) -> dict[str, tuple[str, str | None]]:
    """Which arrays hold each part: x/y, or x_train/x_test with their labels; labels may be left out."""
    numbered = sorted(key for key in arrays if key[:1] == "x" and key[1:].isdigit())
    if numbered and "x" not in arrays:
        raise DataError(
            f"{path} holds the arrays {', '.join(numbered)}: one per input of a model with several inputs, which "
            "edgecompress does not deploy.",
            "Give a model with one input (combine the inputs inside the model, e.g. concatenate them in a first "
            "layer) and save its input as x.",
        )
    if all(key in arrays for key in _SPLIT_X):
        return {
            "train": ("x_train", "y_train" if "y_train" in arrays else None),
            "test": ("x_test", "y_test" if "y_test" in arrays else None),
        }
    if "x" in arrays:
        return {"train": ("x", "y" if "y" in arrays else None)}
    raise DataError(
        f"{path} holds the arrays {sorted(arrays) or 'none'}, but needs x (with y for labels), "
        "or x_train and x_test (with y_train / y_test).",
        "Save it with numpy.savez(path, x=samples[, y=labels][, class_names=names]) or with the "
        "train/test arrays; leave the labels out when there are none.",
    )


def _label_kind(
    ys: dict[str, np.ndarray | None], class_names: np.ndarray | None, path: Path
) -> tuple[Literal["classes", "numbers", "none"], list[str] | None]:
    """Class labels (strings, one-hot rows, or numbers with class_names), numbers, or none."""
    given = [y for y in ys.values() if y is not None]
    names = None if class_names is None else [str(n) for n in np.asarray(class_names).ravel()]
    if not given:
        return "none", None
    if any(y.dtype.kind in "US" for y in given):
        if not all(y.dtype.kind in "US" for y in given):
            raise DataError(f"{path}: some labels are text and others numbers.", "Save every label the same way.")
        return "classes", names
    if names is not None or all(_one_hot(y) for y in given):
        return "classes", names
    return "numbers", None


def _one_hot(y: np.ndarray) -> bool:
    return bool(
        y.ndim == 2
        and y.shape[1] > 1
        and y.dtype.kind in "biuf"
        and np.isin(y, (0, 1)).all()
        and (y.sum(axis=1) == 1).all()
    )


def _pixel_range(xs: dict[str, np.ndarray], bytes_: bool) -> tuple[float | None, str]:
    """Pixels (and whether 0..255 or 0..1) or values taken as they are; every x array shares one reading.

    Pixels are uint8 arrays, or arrays of images (N, H, W[, C]) whose values lie in 0..255;
    anything else (negative or larger values, sensor windows, feature rows) is used as stored.
    """
    low = min(float(x.min()) for x in xs.values())
    high = max(float(x.max()) for x in xs.values())
    shape = next(iter(xs.values())).shape[1:]
    image_like = (
        len(shape) in (2, 3) and min(shape[:2]) >= MIN_IMAGE_SIDE and (len(shape) == 2 or shape[2] in (1, 3, 4))
    )
    if low < 0 or high > 255 or not (image_like or bytes_):
        return None, (
            f"values from {low:.4g} to {high:.4g} in samples of shape {list(shape)}: not pixels, taken as "
            "the values the model expects (scaling none)"
        )
    if high > NPZ_RAW_PIXEL_THRESHOLD:
        return 1.0, f"npz pixels: max {high:g} > {NPZ_RAW_PIXEL_THRESHOLD}, taken as raw 0..255 values"
    return (
        255.0,
        f"npz pixels: max {high:g} <= {NPZ_RAW_PIXEL_THRESHOLD}, taken as already in 0..1 (x255 before scaling)",
    )


def _read_npy(spec: DataSpec, layout: InputLayout, _wanted: list[str] | None) -> Source:
    """A single .npy of samples: data without labels."""
    raw = read_npy(spec.path)
    x = numeric_samples(raw, spec.path, "the array")
    factor, note = _pixel_range({"train": x}, raw.dtype == np.uint8)
    part = _array_part(x, None, layout, str(spec.path), pixels=factor is not None)
    return Source(part, None, "none", None, factor, [note])


# --- folders -------------------------------------------------------------------------------


def _read_folder(spec: DataSpec, layout: InputLayout, wanted: list[str] | None) -> Source:
    root = spec.path
    halves = {name: root / name for name in ("train", "test") if (root / name).is_dir()}
    if len(halves) == 1:
        (have,) = halves
        missing = "test" if have == "train" else "train"
        raise DataError(
            f"{root} has a {have}/ folder but no {missing}/ folder.",
            f"Add {missing}/ with the same class folders, or put the class folders directly in {root} "
            "to have a random test split made.",
        )
    folders = {part: class_folders(folder) for part, folder in (halves or {"train": root}).items()}
    names = sorted({name for found, _ in folders.values() for name in found})
    loose = [str(path) for _, files in folders.values() for path in files]
    if not names:
        return _unlabelled_folder(root, {part: folder for part, folder in (halves or {"train": root}).items()}, layout)
    scanned = [name for name in names if wanted is None or name in wanted]
    reader = _folder_reader(root, [found[name] for found, _ in folders.values() for name in scanned if name in found])
    parts, ignored = {}, list(loose)
    for part, (found, _) in folders.items():
        parts[part], skipped = _class_part(
            {name: found[name] for name in scanned if name in found}, names, layout, str(root), reader
        )
        ignored += skipped
    if scanned and not any(part.n for part in parts.values()):
        raise DataError(
            f"No image or .npy files were found in the class folders under {root}.",
            f"Put images ({', '.join(sorted(IMAGE_SUFFIXES))}) or one-sample .npy files in {root}/<class>/.",
        )
    pixels = 1.0 if reader.suffix != NPY_SUFFIX else None
    return Source(
        parts["train"], parts.get("test"), "classes", names, pixels, _skipped_note(ignored, reader) + reader.notes
    )


@dataclass
class _FileReader:
    """Image files (decoded to 0..255 pixels) or one-sample .npy files (values as stored)."""

    suffix: str  # '.npy' or '' for images
    notes: list[str] = field(default_factory=list)

    def files(self, folder: Path) -> tuple[list[str], list[str]]:
        if self.suffix != NPY_SUFFIX:
            return image_files(folder)
        found, skipped = image_files(folder, suffixes=frozenset({NPY_SUFFIX}))
        return found, skipped

    def read(self, paths: list[str], layout: InputLayout, where: str) -> tuple[np.ndarray, list[str]]:
        if self.suffix != NPY_SUFFIX:
            return decode_images(paths, layout, where)
        samples = [_one_sample(Path(path)) for path in paths]
        first = samples[0].shape
        odd = next((path for path, sample in zip(paths, samples) if sample.shape != first), None)
        if odd is not None:
            raise DataError(
                f"The .npy samples differ in shape: {paths[0]} is {list(first)} but {odd} is "
                f"{list(np.load(odd, mmap_mode='r', allow_pickle=False).shape)}.",
                "Save every sample with the model's input shape.",
            )
        return fit_arrays(np.stack(samples), layout, where, pixels=False), []


def _one_sample(path: Path) -> np.ndarray:
    """One .npy file holding one sample (a leading axis of 1 is allowed)."""
    array = read_npy(path)
    batch = array[np.newaxis, ...] if array.ndim == 0 or array.shape[:1] != (1,) else array
    return numeric_samples(batch, path, "the sample")[0]


def _folder_reader(root: Path, folders: list[Path]) -> _FileReader:
    """Images or .npy samples, decided from what the folders hold; both at once is refused."""
    has_images = has_npy = False
    for folder in folders:
        for _dirpath, _dirs, files in os.walk(folder):
            suffixes = {os.path.splitext(name)[1].lower() for name in files}
            has_images = has_images or bool(suffixes & IMAGE_SUFFIXES)
            has_npy = has_npy or NPY_SUFFIX in suffixes
            if has_images and has_npy:
                raise DataError(
                    f"{root} mixes image files and .npy files.",
                    "Keep one kind of sample: images (decoded to pixels) or one-sample .npy arrays (used as stored).",
                )
    if has_npy:
        return _FileReader(NPY_SUFFIX, ["one-sample .npy files: values taken as the model expects them (scaling none)"])
    return _FileReader("")


def _class_part(
    folders: dict[str, Path], names: list[str], layout: InputLayout, where: str, reader: _FileReader
) -> tuple[Part, list[str]]:
    """A part over the files in `folders` (class name -> folder), labelled by class index, and the files skipped."""
    listed = {name: reader.files(folder) for name, folder in folders.items()}
    paths = [path for files, _ in listed.values() for path in files]
    labels = np.repeat([names.index(name) for name in listed], [len(files) for files, _ in listed.values()])
    skipped = [path for _, others in listed.values() for path in others]
    part = Part(len(paths), lambda rows: reader.read([paths[r] for r in rows], layout, where), labels.astype(np.int64))
    return part, skipped


def _unlabelled_folder(root: Path, halves: dict[str, Path], layout: InputLayout) -> Source:
    """Images (or .npy samples) with no class folders: representative inputs without labels."""
    reader = _folder_reader(root, list(halves.values()))
    parts, ignored = {}, []
    for part, folder in halves.items():
        files, skipped = reader.files(folder)
        parts[part] = Part(len(files), _reading(reader, files, layout, str(root)), None)
        ignored += skipped
    if not any(part.n for part in parts.values()):
        loose = ignored
        raise DataError(
            f"{root} has no class folders{' (it is empty)' if not loose else ''} and no image or .npy files.",
            f"Put each class's images in a subfolder named after the class: {root}/<class>/*.jpg (optionally inside "
            f"{root}/train/ and {root}/test/), or put unlabelled images directly in {root} to judge artifacts "
            "against the fp32 model's outputs.",
        )
    pixels = 1.0 if reader.suffix != NPY_SUFFIX else None
    notes = [f"{root}: no class folders, so no labels", *_skipped_note(ignored, reader), *reader.notes]
    return Source(parts["train"], parts.get("test"), "none", None, pixels, notes)


def _reading(reader: _FileReader, files: list[str], layout: InputLayout, where: str) -> Reader:
    return lambda rows: reader.read([files[r] for r in rows], layout, where)


def _skipped_note(ignored: list[str], reader: _FileReader) -> list[str]:
    if not ignored:
        return []
    names = sorted({os.path.basename(path) for path in ignored})
    examples = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return [f"skipped {len(ignored)} {'non-.npy' if reader.suffix == NPY_SUFFIX else 'non-image'} file(s): {examples}"]
