"""Find image files in class folders and decode them, in parallel, to the model's input layout.

Decoding is the slow part of loading a folder (12,000 CIFAR JPEGs), and Pillow releases the
GIL while it decodes, so a thread pool gets most of the machine's cores without the cost of
pickling pixels between processes (or forking a process that may already hold TensorFlow).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from edgecompress.data.layout import RESAMPLING, InputLayout, channel_words
from edgecompress.errors import DataError

#: Raster formats read from class folders. Anything else (README.md, .DS_Store, labels.csv)
#: is skipped and counted, never decoded: a folder tree is allowed to carry notes.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"})
#: Pillow modes by how many channels the file really has; palette images could be either.
NATIVE_CHANNELS = {
    **dict.fromkeys(("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"), 1),
    **dict.fromkeys(("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"), 3),
}
PILLOW_MODE = {1: "L", 3: "RGB", 4: "RGBA"}
_CHUNK = 256
#: Below this many pixels per image, decoding is mostly Python overhead that holds the GIL, and
#: threads only contend (CIFAR 32x32 on 2 cores: 1.1 s serial, 1.3-1.5 s with 2 threads); from
#: 64x64 up, Pillow's GIL-free decode dominates (64x64: 261 -> 173 us/image, 224x224: 1.6 ms -> 0.4 ms).
_THREADED_FROM_PIXELS = 48 * 48


def is_hidden(name: str) -> bool:
    return name.startswith((".", "__"))


def class_folders(root: Path) -> tuple[dict[str, Path], list[Path]]:
    """Class folders of `root` by name (sorted, the Keras convention) and the loose files beside them."""
    try:
        entries = sorted(root.iterdir())
    except OSError as error:
        raise DataError(f"The folder {root} cannot be read ({error.strerror}).", "Check its permissions.") from error
    folders = {e.name: e for e in entries if e.is_dir() and not is_hidden(e.name) and not _loops_back(e, root)}
    return folders, [e for e in entries if e.name not in folders and not (e.is_dir() and is_hidden(e.name))]


def _loops_back(entry: Path, root: Path) -> bool:
    """A symlink to the data folder itself or one of its parents: following it would read every
    class's images again as one more class."""
    if not entry.is_symlink():
        return False
    target, base = entry.resolve(), root.resolve()
    return target == base or target in base.parents


def image_files(folder: Path, suffixes: frozenset[str] = IMAGE_SUFFIXES) -> tuple[list[str], list[str]]:
    """Image files (or files with other `suffixes`) anywhere under `folder` (sorted), and the other files skipped.

    Plain strings, not Paths: building 50,000 Path objects costs more than listing the files.
    """
    found: list[str] = []
    skipped: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        for name in sorted(filenames):
            is_image = os.path.splitext(name)[1].lower() in suffixes and not is_hidden(name)
            (found if is_image else skipped).append(os.path.join(dirpath, name))
    return found, skipped


@dataclass(frozen=True)
class _Plan:
    """Decided once from the first image, then applied to every file."""

    mode: str
    channels: int
    size_hw: tuple[int, int]
    layout: InputLayout
    first: str | Path
    source_pixels: int


def decode_images(paths: Sequence[str | Path], layout: InputLayout, where: str) -> tuple[np.ndarray, list[str]]:
    """Decode `paths` into uint8 (N, *sample shape); return notes for the report.

    Fails on the first unreadable file, naming it: silently dropping images would change the
    evaluation set without anyone noticing.
    """
    if not paths:
        raise ValueError("decode_images needs at least one path")
    plan = _plan(paths[0], layout)
    pixels = np.empty((len(paths), *plan.size_hw, plan.channels), dtype=np.uint8)
    starts = range(0, len(paths), _CHUNK)
    small = plan.source_pixels < _THREADED_FROM_PIXELS
    pool = ThreadPoolExecutor(max_workers=1 if small else os.cpu_count() or 1, thread_name_prefix="edgecompress-decode")
    try:
        counts = sum(
            pool.map(lambda s: _decode_chunk(paths[s : s + _CHUNK], pixels[s : s + _CHUNK], plan), starts), Counter()
        )
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    notes = _channel_notes(counts, plan, where)
    x = pixels.reshape((len(paths), *layout.sample_shape(*plan.size_hw, plan.channels)))
    return x, notes


def _plan(first: str | Path, layout: InputLayout) -> _Plan:
    with _open(first) as image:
        width, height = image.size
        native = NATIVE_CHANNELS.get(image.mode, 3)
    if layout.flat:
        channels = layout.flat_channels(height, width, native, str(first))
    elif layout.channels in PILLOW_MODE:
        channels = layout.channels
    else:
        raise DataError(
            f"The model expects {layout.channels}-channel input, which image files cannot provide.",
            "Give the data as a .npz with x of shape (N, height, width, channels).",
        )
    size = layout.target_size(height, width, str(first))
    return _Plan(PILLOW_MODE[channels], channels, size, layout, first, height * width)


def _decode_chunk(paths: Sequence[str | Path], out: np.ndarray, plan: _Plan) -> Counter:
    """Decode into `out` (a view of the shared array); count files by their native channel count."""
    natives: Counter = Counter()
    for index, path in enumerate(paths):
        natives[_decode_into(path, plan, out[index])] += 1
    return natives


def _decode_into(path: str | Path, plan: _Plan, out: np.ndarray) -> int | None:
    with _open(path) as image:
        width, height = image.size
        target = plan.layout.target_size(height, width, str(path))  # raises if a resize is needed but not allowed
        if target != plan.size_hw:
            raise _differing_sizes(path, (height, width), plan)
        if target != (height, width):
            image.draft(plan.mode, (target[1], target[0]))  # JPEG: decode at a reduced scale, much faster
        native = NATIVE_CHANNELS.get(image.mode)
        try:
            fitted = image.convert(plan.mode)
            if fitted.size != (target[1], target[0]):
                fitted = fitted.resize((target[1], target[0]), RESAMPLING)
            out[...] = np.asarray(fitted, dtype=np.uint8).reshape(out.shape)
        except (OSError, SyntaxError, ValueError) as error:
            raise _unreadable(path, error) from error
    return native


def _differing_sizes(path: str | Path, size_hw: tuple[int, int], plan: _Plan) -> DataError:
    return DataError(
        f"The images differ in size: {plan.first} is {plan.size_hw[0]}x{plan.size_hw[1]} but {path} is "
        f"{size_hw[0]}x{size_hw[1]} (height x width), and the model does not fix a size to resize them to.",
        "Resize the data set to one size first.",
    )


def _open(path: str | Path) -> Image.Image:
    try:
        return Image.open(path)
    except (OSError, SyntaxError, ValueError) as error:  # UnidentifiedImageError is an OSError
        raise _unreadable(path, error) from error


def _unreadable(path: str | Path, error: Exception) -> DataError:
    what = (
        "is not an image file Pillow can read"
        if isinstance(error, UnidentifiedImageError)
        else f"is corrupt or truncated ({error})"
    )
    return DataError(
        f"{path} {what}.",
        "Replace or delete that file and run again (only files with an image suffix are read; "
        "others such as README.md or .DS_Store are skipped).",
    )


def _channel_notes(natives: Counter, plan: _Plan, where: str) -> list[str]:
    """Refuse data that is mostly of the other channel kind; note the conversion of a few odd files."""
    converted = {channels: n for channels, n in natives.items() if channels not in (None, plan.channels)}
    if sum(converted.values()) > natives.get(plan.channels, 0) and not plan.layout.flat:
        plan.layout.check_channels(max(converted, key=lambda channels: converted[channels]), where)
    return [
        f"converted {n} {channel_words(channels)} image(s) to {channel_words(plan.channels)}"
        for channels, n in sorted(converted.items())
    ]
