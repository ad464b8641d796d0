"""A verified, extracted copy of the CIFAR-10 JPEG folders for e2e tests and benchmarks.

Benchmark and test support, not part of the installed package: the archives are found in the
shared data folder next to the repository (`../shared/datasets/cifar10-jpeg`) or wherever
EDGECOMPRESS_CIFAR10_ARCHIVES points.

The archives live outside the repository (never committed); this extracts them once into a
cache folder, after checking them against SHA256SUMS so a truncated copy cannot quietly
produce wrong accuracy figures. A lock file makes concurrent callers (tests and benchmarks
running side by side) wait for one extraction instead of writing the same files twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

from edgecompress.errors import DataError

REPOSITORY = Path(__file__).resolve().parents[1]
CIFAR10_ARCHIVE_DIR = Path(
    os.environ.get("EDGECOMPRESS_CIFAR10_ARCHIVES", REPOSITORY.parent / "shared" / "datasets" / "cifar10-jpeg")
)
CACHE_DIR = Path(os.environ.get("EDGECOMPRESS_DATA_CACHE", Path.home() / ".cache" / "edgecompress"))
_STAMP = ".edgecompress-extracted"


def ensure_cifar10_jpeg(root: Path | None = None, *, archives: Path | None = None) -> Path:
    """Return a folder holding CIFAR-10's train/<class>/*.jpg and test/<class>/*.jpg.

    `root` is where the copy lives (default ~/.cache/edgecompress/cifar10-jpeg); `archives`
    the folder with SHA256SUMS and the .tar.gz files. A copy whose stamp matches the current
    SHA256SUMS (or any stamped copy, when the archives are gone) is reused without re-reading them.
    """
    root = Path(root) if root is not None else CACHE_DIR / "cifar10-jpeg"
    archives = Path(archives) if archives is not None else CIFAR10_ARCHIVE_DIR
    sums_file = archives / "SHA256SUMS"
    stamp = root / _STAMP
    if not sums_file.is_file():
        if stamp.is_file():
            return root  # extracted and verified earlier; the archives have since moved
        raise DataError(
            f"The CIFAR-10 JPEG archives are not in {archives} (no SHA256SUMS there).",
            "Set EDGECOMPRESS_CIFAR10_ARCHIVES to the folder holding SHA256SUMS and the archives.",
        )
    sums = sums_file.read_text()
    root.parent.mkdir(parents=True, exist_ok=True)
    with _locked(root.with_name(root.name + ".lock")):
        if stamp.is_file() and stamp.read_text() == sums:
            return root
        expected = _parse_sums(sums, sums_file)
        for name, digest in expected.items():
            _verify(archives / name, digest)
        root.mkdir(exist_ok=True)
        # The 'data' filter refuses absolute paths and ../ escapes; Pythons older than 3.10.12 / 3.11.4
        # lack it, and there the checksum check is what vouches for the archive.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        for name in expected:
            with tarfile.open(archives / name) as tar:
                tar.extractall(root, **safe)
        stamp.write_text(sums)  # last: an interrupted extraction is redone next time
    return root


def _parse_sums(text: str, where: Path) -> dict[str, str]:
    pairs = [line.split(maxsplit=1) for line in text.splitlines() if line.strip()]
    if not pairs or any(len(pair) != 2 for pair in pairs):
        raise DataError(
            f"{where} is not a SHA256SUMS file ('<sha256>  <file>' per line).", "Restore it from the data set's source."
        )
    return {name.strip().lstrip("*"): digest.lower() for digest, name in pairs}


def _verify(archive: Path, digest: str) -> None:
    if not archive.is_file():
        raise DataError(f"{archive} is listed in SHA256SUMS but missing.", "Copy the complete data set folder again.")
    sha = hashlib.sha256()
    with archive.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            sha.update(block)
    if sha.hexdigest() != digest:
        raise DataError(
            f"{archive} does not match its SHA256SUMS entry (got {sha.hexdigest()}).",
            "The copy is damaged or incomplete; copy it again from the source.",
        )


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; concurrent extraction is then the caller's problem
        yield
        return
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
