"""Read each kind of data spec into labelled `Pool`s of raw 0..255 pixels.

Every reader brings pixels to one convention, 0..255, so that scaling is a single step
afterwards whatever the source (digits are 0..16, an .npz may already be 0..1).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecompress.data.images import IMAGE_SUFFIXES, class_folders, decode_images, image_files
from edgecompress.data.layout import InputLayout, fit_arrays
from edgecompress.data.pool import Pool
from edgecompress.data.spec import DataSpec
from edgecompress.errors import DataError

#: Above this maximum an .npz holds raw 0..255 pixels; at or below it, values already in 0..1.
NPZ_RAW_PIXEL_THRESHOLD = 1.5
_SPLIT_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass
class Source:
    """What a data spec holds; `test` is None when the test set must be split off `train`."""

    class_names: list[str]
    train: Pool
    test: Pool | None
    notes: list[str] = field(default_factory=list)


def read_source(spec: DataSpec, layout: InputLayout, wanted: list[str] | None = None) -> Source:
    """`wanted` lets a reader skip classes that will be dropped (a folder then lists only their files)."""
    readers = {"sklearn": _read_sklearn, "npz": _read_npz, "folder": _read_folder}
    return readers[spec.kind](spec, layout, wanted)


def _array_pool(x: np.ndarray, labels: np.ndarray, layout: InputLayout, where: str) -> Pool:
    fit_arrays(x[:1], layout, where)  # fail on shape before any splitting work
    return Pool.over(labels, lambda rows: (fit_arrays(x[rows], layout, where), []))


# --- sklearn -------------------------------------------------------------------------------


def _read_sklearn(spec: DataSpec, layout: InputLayout, _wanted: list[str] | None) -> Source:
    from sklearn.datasets import load_digits  # only digits exists so far; imported lazily (0.5 s)

    digits = load_digits()
    pixels = digits.images.astype(np.float32) * (255.0 / 16.0)
    names = [str(n) for n in digits.target_names]
    pool = _array_pool(pixels, digits.target, layout, str(spec))
    return Source(names, pool, None, ["sklearn digits: pixel values 0..16 mapped to 0..255 before scaling"])


# --- .npz ----------------------------------------------------------------------------------


def _read_npz(spec: DataSpec, layout: InputLayout, _wanted: list[str] | None) -> Source:
    path = spec.path
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise DataError(
            f"{path} cannot be read as a NumPy .npz ({error}).",
            "Save it with numpy.savez(path, x=..., y=...) using numeric arrays (no Python objects).",
        ) from error
    if all(key in arrays for key in _SPLIT_KEYS):
        parts = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
    elif "x" in arrays and "y" in arrays:
        parts = {"train": ("x", "y")}
    else:
        raise DataError(
            f"{path} holds the arrays {sorted(arrays) or 'none'}, but needs x and y, "
            "or x_train, y_train, x_test and y_test.",
            "Save it with numpy.savez(path, x=images, y=labels[, class_names=names]) "
            "or with the four train/test arrays.",
        )
    xs = {part: _pixels(arrays[x_key], path, x_key) for part, (x_key, _) in parts.items()}
    ys = {part: arrays[y_key] for part, (_, y_key) in parts.items()}
    for part, (x_key, y_key) in parts.items():
        if len(xs[part]) != len(ys[part]):
            raise DataError(
                f"{path}: {x_key} has {len(xs[part])} examples but {y_key} has {len(ys[part])} labels.",
                f"Save one label per example, so that len({x_key}) == len({y_key}).",
            )
    names, labels = _labels(ys, arrays.get("class_names"), path)
    scale, note = _npz_pixel_range(xs, path)
    pools = {part: _array_pool(x * scale, labels[part], layout, str(path)) for part, x in xs.items()}
    return Source(names, pools["train"], pools.get("test"), [note])


def _pixels(x: np.ndarray, path: Path, key: str) -> np.ndarray:
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) or x.ndim < 2:
        raise DataError(
            f"{path}: {key} has dtype {x.dtype} and shape {x.shape}; expected numbers, one example per row.",
            f"Save {key} as a numeric array of shape (N, height, width[, channels]) or (N, features).",
        )
    return x.astype(np.float32)


def _npz_pixel_range(xs: dict[str, np.ndarray], path: Path) -> tuple[float, str]:
    """Guess 0..255 versus 0..1 from the maximum; both x arrays share one guess."""
    low = min(float(x.min()) for x in xs.values() if x.size)
    high = max(float(x.max()) for x in xs.values() if x.size)
    if low < 0 or high > 255:
        raise DataError(
            f"{path}: pixel values range from {low:g} to {high:g}, outside 0..255.",
            "Save raw pixels (0..255) or pixels divided by 255 (0..1); edgecompress applies "
            "the model's scaling itself (see --scaling).",
        )
    limit = NPZ_RAW_PIXEL_THRESHOLD
    if high > limit:
        return 1.0, f"npz pixels: max {high:g} > {limit}, taken as raw 0..255 values"
    return 255.0, f"npz pixels: max {high:g} <= {limit}, taken as already in 0..1 (x255 before scaling)"


def _labels(
    ys: dict[str, np.ndarray], class_names: np.ndarray | None, path: Path
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Class indices for every part, from integer, one-hot or string labels."""
    flat = {part: _label_vector(y, path) for part, y in ys.items()}
    names = None if class_names is None else [str(n) for n in np.asarray(class_names).ravel()]
    joined = np.concatenate(list(flat.values()))
    if joined.dtype.kind in "US":
        names = names or sorted({str(v) for v in joined})
        unknown = sorted({str(v) for v in joined} - set(names))
        if unknown:
            raise DataError(
                f"{path}: labels {unknown} are not in class_names {names}.",
                "Make class_names list every label used in y.",
            )
        index = {name: i for i, name in enumerate(names)}
        return names, {part: np.array([index[str(v)] for v in y], dtype=np.int64) for part, y in flat.items()}
    if joined.size and (joined.min() < 0 or np.any(joined != np.round(joined))):
        raise DataError(
            f"{path}: y holds values that are not class indices 0, 1, 2, ...",
            "Save y as integer class indices (or one-hot rows, or class-name strings).",
        )
    top = int(joined.max()) if joined.size else -1
    names = names or [str(i) for i in range(top + 1)]
    if top >= len(names):
        raise DataError(
            f"{path}: y uses class index {top} but class_names has only {len(names)} names.",
            "Give one class name per class index.",
        )
    return names, {part: y.astype(np.int64) for part, y in flat.items()}


def _label_vector(y: np.ndarray, path: Path) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        return y.ravel()
    if y.ndim == 2 and np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():
        return y.argmax(axis=1)  # one-hot rows
    if y.ndim != 1:
        raise DataError(
            f"{path}: y has shape {y.shape}; expected one label per example.",
            "Save y as a vector of class indices (N,) or one-hot rows (N, classes).",
        )
    return y


# --- class folders -------------------------------------------------------------------------


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
    ignored = [str(path) for _, loose in folders.values() for path in loose]
    if not names:
        _raise_no_class_folders(root, ignored)
    scanned = [name for name in names if wanted is None or name in wanted]
    pools = {}
    for part, (found, _) in folders.items():
        pools[part], skipped = _image_pool(
            {name: found[name] for name in scanned if name in found}, names, layout, str(root)
        )
        ignored += skipped
    if scanned and not any(len(pool) for pool in pools.values()):
        raise DataError(
            f"No image files were found in the class folders under {root}.",
            f"Put images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {root}/<class>/.",
        )
    return Source(names, pools["train"], pools.get("test"), _skipped_note(ignored))


def _image_pool(folders: dict[str, Path], names: list[str], layout: InputLayout, where: str) -> tuple[Pool, list[str]]:
    """A pool over the image files in `folders` (class name -> folder), and the files skipped."""
    listed = {name: image_files(folder) for name, folder in folders.items()}
    paths = [path for images, _ in listed.values() for path in images]
    labels = np.repeat([names.index(name) for name in listed], [len(images) for images, _ in listed.values()])
    skipped = [path for _, others in listed.values() for path in others]
    return Pool.over(labels, lambda rows: decode_images([paths[r] for r in rows], layout, where)), skipped


def _skipped_note(ignored: list[str]) -> list[str]:
    if not ignored:
        return []
    names = sorted({os.path.basename(path) for path in ignored})
    examples = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return [f"skipped {len(ignored)} non-image file(s): {examples}"]


def _raise_no_class_folders(root: Path, loose: list[str]) -> None:
    layout_hint = (
        f"Put each class's images in a subfolder named after the class: {root}/<class>/*.jpg "
        f"(optionally inside {root}/train/ and {root}/test/)."
    )
    if any(os.path.splitext(path)[1].lower() in IMAGE_SUFFIXES for path in loose):
        raise DataError(f"{root} holds images but no class folders.", layout_hint)
    raise DataError(f"{root} has no class folders{' (it is empty)' if not loose else ''}.", layout_hint)
