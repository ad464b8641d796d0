"""Turn the user's data argument into a checked `DataSpec` before anything heavy happens.

The CLI parses the spec first so that a typo in a path fails in milliseconds, not after
TensorFlow has loaded a model.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edgecompress.errors import DataError

#: Data sets that ship inside scikit-learn (no download), usable as `sklearn:<name>`:
#: digits (8x8 images, 10 classes) and diabetes (10 features, a regression target).
SKLEARN_DATASETS = ("digits", "diabetes")

_FORMS = (
    "a folder of class subfolders of images or one-sample .npy files (optionally split into train/ and test/), "
    "a folder of unlabelled images, a .npz file with x[/y] (or x_train/x_test with y_train/y_test), "
    "a .npy file of samples, or sklearn:digits / sklearn:diabetes"
)
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z")


@dataclass(frozen=True)
class DataSpec:
    """Where the data comes from: `kind` says how to read it, `location` what to read."""

    kind: Literal["sklearn", "folder", "npz", "npy"]
    location: str  # data set name for 'sklearn', a path otherwise

    @classmethod
    def parse(cls, spec: str | Path) -> DataSpec:
        """Check that `spec` names something loadable; raise DataError saying what is wrong."""
        text = str(spec).strip()
        if text.startswith("sklearn:"):
            return cls("sklearn", _known_sklearn_name(text.removeprefix("sklearn:")))
        path = Path(text).expanduser()
        if not path.exists():
            raise DataError(f"The data path {text} does not exist.", f"Give {_FORMS}.")
        if path.is_dir():
            return cls("folder", str(path))
        if path.suffix.lower() in (".npz", ".npy"):
            return cls(path.suffix.lower().lstrip("."), str(path))  # type: ignore[arg-type]
        if path.name.lower().endswith(_ARCHIVE_SUFFIXES):
            raise DataError(
                f"The data path {text} is an archive, which is not read directly.",
                f"Extract it (e.g. tar -xzf / unzip) and pass the extracted folder: {_FORMS}.",
            )
        raise DataError(f"The data path {text} is a file but neither a .npz nor a .npy.", f"Give {_FORMS}.")

    @property
    def path(self) -> Path:
        if self.kind == "sklearn":
            raise ValueError(f"{self} is a built-in data set, not a path")
        return Path(self.location)

    def __str__(self) -> str:
        return f"sklearn:{self.location}" if self.kind == "sklearn" else self.location


def _known_sklearn_name(name: str) -> str:
    if name in SKLEARN_DATASETS:
        return name
    close = difflib.get_close_matches(name, SKLEARN_DATASETS, n=1)
    hint = f" Did you mean sklearn:{close[0]}?" if close else ""
    raise DataError(
        f"sklearn:{name} is not a built-in data set.{hint}",
        f"Built-in data sets: {', '.join('sklearn:' + n for n in SKLEARN_DATASETS)}.",
    )
