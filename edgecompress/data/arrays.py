"""Read .npz / .npy arrays a user hands over, trusting nothing the file says.

Each member's header (dtype, shape) is read and judged before a byte of its data: object
arrays are never unpickled, and an array whose declared size would not fit in memory is
refused before it is allocated (a few kilobytes of zip can declare terabytes). Values are
then checked to be real, finite numbers.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from edgecompress.errors import DataError

#: the most memory one data file may ask for, as a share of the memory this machine has available
MEMORY_SHARE = 0.5
#: fallback ceiling when the available memory cannot be read (no /proc)
DEFAULT_CEILING = 8 << 30

_READERS = {(1, 0): "read_array_header_1_0", (2, 0): "read_array_header_2_0", (3, 0): "read_array_header_2_0"}
_SAVE_HINT = "Save it with numpy.savez(path, x=..., y=...) using plain numeric arrays (no Python objects)."


def memory_ceiling() -> int:
    """Bytes one data file may occupy once loaded: half of what the machine (or this process's
    address-space limit, when one is set) has available."""
    available = DEFAULT_CEILING
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            available = min(available, soft)
    except (ImportError, OSError, ValueError):
        pass
    return int(available * MEMORY_SHARE)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every member of an .npz, each checked by its header first (see the module docstring)."""
    try:
        with zipfile.ZipFile(path) as archive:
            headers = {name: _header(archive, name, path) for name in archive.namelist() if name.endswith(".npy")}
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, RuntimeError) as error:
        raise DataError(f"{path} cannot be read as a NumPy .npz ({_short(error)}).", _SAVE_HINT) from None
    _check_total(headers, path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files if f"{key}.npy" in headers}
    except MemoryError:
        raise _too_large(path, sum(h[2] for h in headers.values())) from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError, RuntimeError) as error:
        raise DataError(f"{path} cannot be read as a NumPy .npz ({_short(error)}).", _SAVE_HINT) from None


def npz_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The shape of every array in an .npz, read from the headers alone (no data is loaded)."""
    with zipfile.ZipFile(path) as archive:
        return {
            name.removesuffix(".npy"): _header(archive, name, path)[0]
            for name in archive.namelist()
            if name.endswith(".npy")
        }


def read_npy(path: Path) -> np.ndarray:
    """One .npy file, its header judged before its data."""
    try:
        with path.open("rb") as stream:
            header = _parse_header(stream, path.name, path)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path} cannot be read as a NumPy .npy file ({_short(error)}).", _NPY_HINT) from None
    _check_total({path.name: header}, path)
    try:
        return np.load(path, allow_pickle=False)
    except MemoryError:
        raise _too_large(path, header[2]) from None
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path} cannot be read as a NumPy .npy file ({_short(error)}).", _NPY_HINT) from None


_NPY_HINT = "Save it with numpy.save(path, array) from a plain numeric array (no Python objects)."


def _header(archive: zipfile.ZipFile, name: str, path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    with archive.open(name) as stream:
        return _parse_header(stream, name, path)


def _parse_header(stream: IO[bytes], name: str, path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, bytes once loaded); object dtypes are refused here, never unpickled."""
    version = np.lib.format.read_magic(stream)
    reader = _READERS.get(version)
    if reader is None:
        raise ValueError(f"{name}: unknown .npy format version {version}")
    shape, _fortran, dtype = getattr(np.lib.format, reader)(stream)
    key = name.removesuffix(".npy")
    if dtype.hasobject:
        raise DataError(
            f"{path}: {key} holds Python objects (dtype {dtype}), which edgecompress never unpickles.",
            "Save plain numeric arrays: e.g. np.savez(path, x=np.asarray(x, dtype=np.float32), y=np.asarray(y)).",
        )
    size = math.prod(int(d) for d in shape) * max(1, dtype.itemsize)
    return tuple(int(d) for d in shape), dtype, size


def _check_total(headers: dict[str, tuple[tuple[int, ...], np.dtype, int]], path: Path) -> None:
    total = sum(size for _, _, size in headers.values())
    # loading also makes a float32 copy of x: count the data twice
    if 2 * total > memory_ceiling():
        raise _too_large(path, total)


def _too_large(path: Path, size: int) -> DataError:
    return DataError(
        f"{path} declares {size / 2**30:.1f} GiB of arrays, more than this machine can load next to a model "
        f"({memory_ceiling() / 2**30:.1f} GiB available for data).",
        "Give a smaller evaluation and training sample (e.g. a few thousand examples); edgecompress needs "
        "representative data, not the whole data set.",
    )


def numeric_samples(x: Any, path: Path | str, key: str) -> np.ndarray:
    """`x` as float32 samples, or a DataError saying why it cannot be model input.

    Refused: non-numeric dtypes (strings, dates, records), complex values (never silently
    cast to their real part), no sample axis, no samples, NaN or infinite values (also values
    too large for float32, which become infinite).
    """
    x = np.asarray(x)
    if np.iscomplexobj(x):
        raise DataError(
            f"{path}: {key} holds complex numbers (dtype {x.dtype}); a model takes real values.",
            f"Save the real features the model was trained on (e.g. magnitudes np.abs({key}), or real and "
            "imaginary parts as separate channels).",
        )
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) or x.ndim < 2:
        raise DataError(
            f"{path}: {key} has dtype {x.dtype} and shape {list(x.shape)}; expected numbers, one sample per row.",
            f"Save {key} as a numeric array of shape (N, *the model's input shape).",
        )
    if len(x) == 0 or x[0].size == 0:
        raise DataError(
            f"{path}: {key} holds no {'samples' if len(x) == 0 else 'values'} (shape {list(x.shape)}).",
            f"Save {key} with at least two samples of the model's input shape.",
        )
    with np.errstate(over="ignore", invalid="ignore"):
        values = x.astype(np.float32)
    _require_finite(values, path, key)
    return values


def _require_finite(values: np.ndarray, path: Path | str, key: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.argwhere(bad)[0][0])
        raise DataError(
            f"{path}: {key} has {int(bad.sum())} NaN or infinite value(s) (first in sample {first}), or values "
            "too large for float32.",
            "Clean the data (drop or impute the bad samples) and save it again.",
        )


def finite_targets(y: Any, path: Path | str, key: str) -> np.ndarray:
    """Numeric targets as float64, refusing complex, non-numeric, NaN and infinite values."""
    y = np.asarray(y)
    if np.iscomplexobj(y) or not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise DataError(
            f"{path}: {key} has dtype {y.dtype}; labels must be numbers (or class-name strings).",
            "Save labels as class indices, class names, 0/1 anomaly labels or float targets.",
        )
    values = y.astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(
            f"{path}: {key} has {int(bad.sum())} NaN or infinite value(s).",
            "Clean the labels (drop the samples without a valid label) and save the data again.",
        )
    return values


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:200]
