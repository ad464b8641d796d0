"""Work that does not depend on later choices, kept across runs and found by what it was made from.

A second deploy of the same model for another profile or target should not pay again for
the layer significance, the post-training quantized models or a fine-tune whose plan is the
same. Each piece is stored under a key that hashes everything it was made from (model
SHA-256, data fingerprint, recipe and its parameters, budget, seed, and the versions of
edgecompress, TensorFlow, tf-keras and tfmot), so a hit is always the same work, never a
near miss. Entries are written atomically (a scratch folder renamed into place), and an entry once
published is never rewritten, so several processes (parallel tune trials) may share one
cache: readers see a whole entry or none, and treat an entry that vanished under them (an
eviction) as a miss. The least recently used entries are dropped beyond a size limit. `edgecompress cache info|clear` manages it; `deploy --no-cache` ignores it.

Location: $EDGECOMPRESS_CACHE/stages (default ~/.cache/edgecompress/stages); limit:
$EDGECOMPRESS_CACHE_LIMIT (a size such as 2GiB; default 2 GiB).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

META = "meta.json"
DEFAULT_LIMIT = "2GiB"
#: packages whose versions change what a stage produces
VERSIONED = ("edgecompress", "tensorflow", "tf-keras", "tensorflow-model-optimization")


def cache_root() -> Path:
    """The folder edgecompress keeps caches in (also the CIFAR copy of the benchmarks)."""
    base = (
        os.environ.get("EDGECOMPRESS_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgecompress"
    )
    return Path(base).expanduser()


@dataclass
class Hit:
    """A cached entry: its folder and what was recorded when it was stored."""

    path: Path
    meta: dict[str, Any]

    def file(self, name: str) -> Path:
        return self.path / name


@dataclass
class StageCache:
    """Content-addressed entries under `root`, at most `limit_bytes` in all."""

    root: Path
    limit_bytes: int
    enabled: bool = True

    @classmethod
    def default(cls, *, enabled: bool = True) -> StageCache:
        from edgecompress.profiles import parse_size

        limit = parse_size(os.environ.get("EDGECOMPRESS_CACHE_LIMIT", DEFAULT_LIMIT))
        return cls(cache_root() / "stages", limit, enabled)

    @staticmethod
    def key(kind: str, **parts: Any) -> str:
        """A key for `kind` made from `parts` (JSON-able) and the versions that shape the result."""
        document = {"kind": kind, "parts": parts, "versions": _versions()}
        return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def lookup(self, kind: str, key: str) -> Hit | None:
        """The complete entry for (kind, key), marked as just used; None when absent or disabled."""
        if not self.enabled:
            return None
        folder = self.root / kind / key
        try:
            meta = json.loads((folder / META).read_text())
            os.utime(folder)  # least-recently-used order
        except (OSError, ValueError):
            return None
        return Hit(folder, meta)

    def store(self, kind: str, key: str, write: Callable[[Path], None], meta: dict[str, Any]) -> Hit | None:
        """Run `write(folder)` into a fresh entry and publish it atomically; None when disabled.

        A failure to store (full disk, read-only cache) never fails the run: it only costs reuse.
        """
        if not self.enabled:
            return None
        folder = self.root / kind / key
        scratch: Path | None = None
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{key}."))
            write(scratch)
            (scratch / META).write_text(
                json.dumps(
                    {**meta, "kind": kind, "key": key, "stored": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, default=str
                )
            )
            self._publish(scratch, folder)
        except OSError:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
            return self.lookup(kind, key)
        self.evict()
        return self.lookup(kind, key)

    @staticmethod
    def _publish(scratch: Path, folder: Path) -> None:
        """Rename the finished scratch folder into place: atomic, and the first writer of a key wins.

        Another process (a parallel tune trial) that published the same key first keeps its entry: the
        key names the same work, and replacing it could pull files from under a reader. Only a left-over
        without meta.json (a writer interrupted before publishing was atomic) is set aside first; a
        published entry is never deleted here, so a concurrent writer's hit stays valid.
        """
        if (folder / META).is_file():
            shutil.rmtree(scratch, ignore_errors=True)
            return
        try:
            os.rename(scratch, folder)  # fails when the folder exists and is not empty
            return
        except OSError:
            if (folder / META).is_file():  # a concurrent writer won the race
                shutil.rmtree(scratch, ignore_errors=True)
                return
        aside = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.left-over."))
        os.rename(folder, aside / "entry")
        shutil.rmtree(aside, ignore_errors=True)
        os.rename(scratch, folder)  # may lose to a concurrent writer again: the caller looks the key up

    def entries(self) -> list[tuple[Path, int, float]]:
        """(folder, bytes, last used) of every complete entry."""
        found = []
        for meta in self.root.glob(f"*/*/{META}") if self.root.is_dir() else []:
            folder = meta.parent
            try:
                size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
                found.append((folder, size, folder.stat().st_mtime))
            except OSError:  # evicted by another process while being looked at
                continue
        return found

    def evict(self) -> None:
        """Drop least recently used entries until the cache is within its limit."""
        entries = sorted(self.entries(), key=lambda entry: entry[2])
        total = sum(size for _, size, _ in entries)
        for folder, size, _ in entries:
            if total <= self.limit_bytes:
                break
            shutil.rmtree(folder, ignore_errors=True)
            total -= size

    def clear(self) -> tuple[int, int]:
        """Delete every entry; returns (entries, bytes) freed."""
        entries = self.entries()
        shutil.rmtree(self.root, ignore_errors=True)
        return len(entries), sum(size for _, size, _ in entries)

    def info(self) -> dict[str, Any]:
        entries = self.entries()
        kinds: dict[str, int] = {}
        for folder, _, _ in entries:
            kinds[folder.parent.name] = kinds.get(folder.parent.name, 0) + 1
        return {
            "root": str(self.root),
            "entries": len(entries),
            "bytes": sum(size for _, size, _ in entries),
            "limit_bytes": self.limit_bytes,
            "by_kind": kinds,
        }


def _versions() -> dict[str, str | None]:
    import importlib.metadata as md

    found: dict[str, str | None] = {}
    for package in VERSIONED:
        try:
            found[package] = md.version(package)
        except md.PackageNotFoundError:
            found[package] = None
    return found


def fingerprint_arrays(*arrays: Any, extra: Any = None) -> str:
    """A short content hash of NumPy arrays (dtype, shape and bytes) and JSON-able `extra`."""
    import numpy as np

    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))  # type: ignore[arg-type]  # ndarray is a buffer
    digest.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return digest.hexdigest()
