"""Find, or prepare offline, the TFLite Micro source tree the firmware is compiled from.

No Python package ships TFLM's C++ sources, and TFLM's own make build downloads its third-party
libraries (flatbuffers, gemmlowp, ruy, CMSIS_6, Cortex_DFP, CMSIS-NN) on first use. Neither
may happen behind the user's back, so a tree is looked for in this order:

1. `--tflm-dir DIR` (a tflite-micro checkout whose `tools/make/downloads/` is filled),
2. the `EDGECOMPRESS_TFLM_DIR` environment variable (the same),
3. a tree prepared by `edgecompress micro setup` under the cache
   (`$XDG_CACHE_HOME/edgecompress/tflm/<revision>/`, default `~/.cache/edgecompress/...`).

Preparing copies a tflite-micro checkout (or unpacks a `git archive` of one) and unpacks the
third-party archives where TFLM's download scripts would have put them, exactly as those
scripts do (flatbuffers patched with TFLM's `flatbuffers.patch` after its BUILD files are
removed, CMSIS's Cortex_DFP inside `cmsis/`), adds an empty `pigweed/` (the makefile clones it
but the library does not use it) and points `gcc_embedded/bin/` at Debian's arm-none-eabi
tools. Which archive revision is needed is read from the tree's own download scripts, so a
checkout of another TFLM revision asks for the archives that revision pins.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgecompress.errors import ToolError

ENV_TFLM_DIR = "EDGECOMPRESS_TFLM_DIR"
ENV_THIRD_PARTY = "EDGECOMPRESS_THIRD_PARTY_DIR"
MAKE_DIR = Path("tensorflow/lite/micro/tools/make")
DOWNLOADS = MAKE_DIR / "downloads"
MARKER = ".edgecompress-prepared.json"
#: Folders TFLM's make build reads from downloads/ for a Cortex-M build with CMSIS-NN.
REQUIRED_DOWNLOADS = (
    "flatbuffers",
    "gemmlowp",
    "ruy",
    "kissfft",
    "cmsis",
    "cmsis/Cortex_DFP",
    "cmsis_nn",
    "pigweed",
    "gcc_embedded/bin",
)
_ARM_TOOLS = (
    "gcc",
    "g++",
    "ar",
    "as",
    "ld",
    "nm",
    "objcopy",
    "objdump",
    "size",
    "strip",
    "readelf",
    "c++filt",
    "gcc-ar",
    "ranlib",
    "cpp",
)


@dataclass(frozen=True)
class Pin:
    """One third-party library at the revision the TFLM tree pins, and where it goes in downloads/."""

    library: str  # archive name prefix, e.g. 'flatbuffers'
    revision: str  # tag or full commit
    folder: str  # destination under downloads/
    top: str  # top folder inside the archive

    def archive_names(self) -> list[str]:
        short = self.revision[:7] if re.fullmatch(r"[0-9a-f]{40}", self.revision) else self.revision
        return [f"{self.library}-{short}.tar.gz", f"{self.library}-{self.revision}.tar.gz"]


@dataclass(frozen=True)
class TflmTree:
    """A tflite-micro tree ready for an offline Cortex-M build."""

    root: Path
    revision: str
    origin: str  # '--tflm-dir', 'EDGECOMPRESS_TFLM_DIR' or 'prepared cache'
    pins: dict[str, str] = field(default_factory=dict)

    @property
    def downloads(self) -> Path:
        return self.root / DOWNLOADS

    def to_dict(self) -> dict[str, Any]:
        return {"root": str(self.root), "revision": self.revision, "origin": self.origin, "pins": self.pins}


# --------------------------------------------------------------------------- locations


def cache_root() -> Path:
    """edgecompress's cache folder (XDG_CACHE_HOME respected); TFLM trees and object files live here."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgecompress"


def third_party_dir() -> Path:
    """The pinned third-party archives: $EDGECOMPRESS_THIRD_PARTY_DIR, else ../shared/third-party from the repository."""
    configured = os.environ.get(ENV_THIRD_PARTY)
    if configured:
        return Path(configured).expanduser()
    repository = Path(__file__).resolve().parents[2]
    candidates = [
        repository / ".." / "shared" / "third-party",  # a clone with shared/ beside it (CI, main)
        repository / ".." / ".." / "shared" / "third-party",
    ]  # a git worktree one level further down
    return next((c.resolve() for c in candidates if c.is_dir()), candidates[0].resolve())


# --------------------------------------------------------------------------- finding


def find_tree(tflm_dir: str | Path | None = None) -> TflmTree:
    """The tree to build from: --tflm-dir, then $EDGECOMPRESS_TFLM_DIR, then the newest prepared one."""
    if tflm_dir:
        return _checked(Path(tflm_dir).expanduser(), "--tflm-dir")
    configured = os.environ.get(ENV_TFLM_DIR)
    if configured:
        return _checked(Path(configured).expanduser(), ENV_TFLM_DIR)
    prepared = sorted((cache_root() / "tflm").glob(f"*/tflite-micro/{MARKER}"), key=lambda p: p.stat().st_mtime)
    if prepared:
        return _checked(prepared[-1].parent, "prepared cache")
    raise ToolError(
        "No TensorFlow Lite Micro source tree was found: no --tflm-dir, no $EDGECOMPRESS_TFLM_DIR, and nothing "
        f"prepared under {cache_root() / 'tflm'}. The firmware is compiled from TFLM's C++ sources, which no package ships.",
        setup_commands(),
    )


def setup_commands() -> str:
    """The exact commands that get a tree, for error messages and the README."""
    return (
        "Prepare one offline from the pinned archives: `edgecompress micro setup` (reads "
        f"${ENV_THIRD_PARTY}, default ../shared/third-party next to the repository), or from your own checkout: "
        "`git clone https://github.com/tensorflow/tflite-micro && edgecompress micro setup --tflm-source tflite-micro "
        "--third-party DIR_WITH_ARCHIVES`; or point --tflm-dir / $EDGECOMPRESS_TFLM_DIR at a checkout in which "
        "`make -f tensorflow/lite/micro/tools/make/Makefile TARGET=cortex_m_generic OPTIMIZED_KERNEL_DIR=cmsis_nn "
        "third_party_downloads` has already run."
    )


def _checked(root: Path, origin: str) -> TflmTree:
    if not (root / MAKE_DIR / "Makefile").is_file():
        raise ToolError(
            f"{root} ({origin}) is not a tflite-micro tree: it has no {MAKE_DIR / 'Makefile'}.",
            "Point it at the top folder of a tflite-micro checkout. " + setup_commands(),
        )
    missing = [name for name in REQUIRED_DOWNLOADS if not (root / DOWNLOADS / name).is_dir()]
    if missing:
        raise ToolError(
            f"The TFLM tree {root} ({origin}) lacks its third-party libraries in {DOWNLOADS}: {', '.join(missing)}. "
            "TFLM's build would try to download them.",
            f"Prepare a copy offline: `edgecompress micro setup --tflm-source {root}` (with the archives in "
            f"${ENV_THIRD_PARTY}), or run TFLM's `third_party_downloads` make target once while online.",
        )
    marker = root / MARKER
    if marker.is_file():
        recorded = json.loads(marker.read_text())
        return TflmTree(root.resolve(), recorded["revision"], origin, recorded.get("pins", {}))
    return TflmTree(root.resolve(), _revision_of_checkout(root) or _content_revision(root), origin, {})


# --------------------------------------------------------------------------- preparing


def prepare_tree(
    source: str | Path | None = None,
    third_party: str | Path | None = None,
    *,
    cache: Path | None = None,
    force: bool = False,
) -> TflmTree:
    """Prepare (once per revision) an offline-ready tree in the cache and return it.

    `source` is a tflite-micro checkout or a `git archive` .tar.gz of one; by default the
    tflite-micro archive among the third-party archives. Nothing is downloaded: a missing
    archive is an error that names the file and revision needed.
    """
    archives = Path(third_party).expanduser() if third_party else third_party_dir()
    source_path = Path(source).expanduser() if source else _default_source(archives)
    revision = _source_revision(source_path)
    destination = (cache or cache_root()) / "tflm" / revision / "tflite-micro"
    if (destination / MARKER).is_file() and not force:
        return _checked(destination, "prepared cache")
    destination.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".preparing-", dir=destination.parent))
    try:
        tree = work / "tflite-micro"
        _copy_source(source_path, tree)
        pins = read_pins(tree)
        _verify_checksums(archives, pins)
        downloads = tree / DOWNLOADS
        downloads.mkdir(parents=True, exist_ok=True)
        for pin in pins:
            _unpack(_archive_for(pin, archives), pin, downloads)
        _patch_flatbuffers(tree)
        (downloads / "pigweed").mkdir(exist_ok=True)
        link_debian_toolchain(downloads)
        (tree / MARKER).write_text(
            json.dumps(
                {
                    "revision": revision,
                    "source": str(source_path),
                    "third_party": str(archives),
                    "pins": {pin.library: pin.revision for pin in pins},
                },
                indent=2,
            )
        )
        if destination.exists():
            shutil.rmtree(destination)
        tree.rename(destination)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _checked(destination, "prepared cache")


def _default_source(archives: Path) -> Path:
    candidates = sorted(archives.glob("tflite-micro-*.tar.gz"))
    if not candidates:
        raise ToolError(
            f"No tflite-micro archive (tflite-micro-<revision>.tar.gz) in {archives}.",
            "Pass your checkout with --tflm-source, or set $" + ENV_THIRD_PARTY + " to the folder holding the "
            "archives. " + setup_commands(),
        )
    return candidates[-1]


def _source_revision(source: Path) -> str:
    if not source.exists():
        raise ToolError(
            f"The TFLM source {source} does not exist.", "Pass a tflite-micro checkout or its .tar.gz archive."
        )
    if source.is_file():
        match = re.fullmatch(r"tflite-micro-([0-9A-Za-z._-]+)\.tar\.gz", source.name)
        if match is None:
            raise ToolError(
                f"Cannot tell the revision of {source.name}.",
                "Name a `git archive` of tflite-micro as tflite-micro-<revision>.tar.gz.",
            )
        return match[1]
    return _revision_of_checkout(source) or _content_revision(source)


def _revision_of_checkout(root: Path) -> str | None:
    if not (root / ".git").exists() or shutil.which("git") is None:
        return None
    run = lambda *args: subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)  # noqa: E731
    head = run("rev-parse", "--short=12", "HEAD")
    if head.returncode != 0:
        return None
    dirty = run(
        "status", "--porcelain", "--untracked-files=no", "--", "tensorflow", "signal", "third_party"
    ).stdout.strip()
    return head.stdout.strip() + (f"-dirty-{hashlib.sha256(dirty.encode()).hexdigest()[:8]}" if dirty else "")


def _content_revision(root: Path) -> str:
    """A checkout without git: fingerprint the makefile and the interpreter's sources."""
    digest = hashlib.sha256()
    for path in sorted((root / "tensorflow/lite/micro").rglob("*")):
        if path.is_file() and path.suffix in (".cc", ".h", ".inc", ".sh", ".patch") and "downloads" not in path.parts:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return "tree-" + digest.hexdigest()[:12]


def _copy_source(source: Path, tree: Path) -> None:
    if source.is_file():
        with tarfile.open(source) as archive:
            top = _single_top(archive, source)
            archive.extractall(tree.parent / ".unpack", filter="data")
        (tree.parent / ".unpack" / top).rename(tree)
        shutil.rmtree(tree.parent / ".unpack", ignore_errors=True)
        return
    ignore = shutil.ignore_patterns(".git", "gen", "downloads", "bazel-*")
    shutil.copytree(source, tree, ignore=ignore, symlinks=True)


def read_pins(tree: Path) -> list[Pin]:
    """The third-party revisions this TFLM tree's own download scripts ask for."""
    make = tree / MAKE_DIR

    def grab(path: Path, pattern: str, occurrence: int = 0) -> str:
        found = re.findall(pattern, path.read_text()) if path.is_file() else []
        if len(found) <= occurrence:
            raise ToolError(
                f"Cannot read the pinned revision from {path} (pattern {pattern}).",
                "This TFLM revision lays out its download scripts differently; point --tflm-dir at a tree "
                "whose downloads/ is already filled.",
            )
        return found[occurrence]

    commit = r"([0-9a-f]{40})"
    return [
        Pin(
            "flatbuffers",
            grab(make / "flatbuffers_download.sh", r'ZIP_PREFIX="(v[^"]+)"'),
            "flatbuffers",
            "flatbuffers",
        ),
        Pin(
            "gemmlowp", grab(make / "third_party_downloads.inc", r"gemmlowp/archive/" + commit), "gemmlowp", "gemmlowp"
        ),
        Pin("ruy", grab(make / "third_party_downloads.inc", r"ruy/archive/" + commit), "ruy", "ruy"),
        Pin(
            "kissfft",
            grab(make / "third_party_downloads.inc", r"kissfft/archive/refs/tags/(v[0-9.]+)\.zip"),
            "kissfft",
            "kissfft",
        ),
        Pin("CMSIS_6", grab(make / "ext_libs/cmsis_download.sh", r'ZIP_PREFIX="' + commit), "cmsis", "CMSIS_6"),
        Pin(
            "Cortex_DFP",
            grab(make / "ext_libs/cmsis_download.sh", r'ZIP_PREFIX="' + commit, 1),
            "cmsis/Cortex_DFP",
            "Cortex_DFP",
        ),
        Pin(
            "CMSIS-NN",
            grab(make / "ext_libs/cmsis_nn_download.sh", r'ZIP_PREFIX_NN="' + commit),
            "cmsis_nn",
            "CMSIS-NN",
        ),
    ]


def _archive_for(pin: Pin, archives: Path) -> Path:
    for name in pin.archive_names():
        if (archives / name).is_file():
            return archives / name
    repository = {
        "flatbuffers": "google/flatbuffers",
        "gemmlowp": "google/gemmlowp",
        "ruy": "google/ruy",
        "kissfft": "mborgerding/kissfft",
        "CMSIS_6": "ARM-software/CMSIS_6",
        "Cortex_DFP": "ARM-software/Cortex_DFP",
        "CMSIS-NN": "ARM-software/CMSIS-NN",
    }[pin.library]
    raise ToolError(
        f"The TFLM tree pins {pin.library} at {pin.revision}, but {archives} has no {pin.archive_names()[0]}.",
        f"Make it from a clone: `git clone https://github.com/{repository} && git -C {repository.split('/')[1]} archive "
        f"--prefix={pin.top}/ -o {archives / pin.archive_names()[0]} {pin.revision}`, then run setup again.",
    )


def _verify_checksums(archives: Path, pins: list[Pin]) -> None:
    sums = archives / "SHA256SUMS"
    if not sums.is_file():
        return
    pairs = [line.split(maxsplit=1) for line in sums.read_text().splitlines() if line.strip()]
    expected = {name.strip().lstrip("*"): digest for digest, name in pairs}
    for pin in pins:
        path = next((archives / n for n in pin.archive_names() if (archives / n).is_file()), None)
        if path is None or path.name not in expected:
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected[path.name]:
            raise ToolError(
                f"{path} does not match its SHA256SUMS entry (got {digest[:16]}..., expected "
                f"{expected[path.name][:16]}...).",
                "Replace the archive with an intact copy.",
            )


def _single_top(archive: tarfile.TarFile, path: Path) -> str:
    tops = {Path(member.name).parts[0] for member in archive.getmembers() if member.name not in (".", "./")}
    if len(tops) != 1:
        raise ToolError(
            f"{path} should hold one top folder (a `git archive --prefix=NAME/`), not {sorted(tops)[:5]}.",
            "Re-create the archive with git archive --prefix.",
        )
    return tops.pop()


def _unpack(path: Path, pin: Pin, downloads: Path) -> None:
    destination = downloads / pin.folder
    if destination.exists():
        shutil.rmtree(destination)
    staging = downloads / f".unpack-{pin.library}"
    with tarfile.open(path) as archive:
        top = _single_top(archive, path)
        archive.extractall(staging, filter="data")
    destination.parent.mkdir(parents=True, exist_ok=True)
    (staging / top).rename(destination)
    shutil.rmtree(staging, ignore_errors=True)


def _patch_flatbuffers(tree: Path) -> None:
    """What flatbuffers_download.sh does: drop Bazel BUILD files, then `git apply` TFLM's patch."""
    folder = tree / DOWNLOADS / "flatbuffers"
    for build_file in [*folder.rglob("BUILD"), *folder.rglob("BUILD.bazel")]:
        build_file.unlink()
    patch = tree / MAKE_DIR / "flatbuffers.patch"
    if not patch.is_file():
        return
    if shutil.which("git") is None:
        raise ToolError(
            "Preparing TFLM needs git to apply TFLM's flatbuffers.patch.", "Install git (Debian: apt-get install git)."
        )
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(folder.parent)}  # never apply into an enclosing repository
    result = subprocess.run(
        ["git", "apply", str(patch)], cwd=folder, capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise ToolError(
            f"TFLM's flatbuffers.patch does not apply to the flatbuffers archive: {result.stderr.strip()}",
            "Use the flatbuffers archive of the tag this TFLM revision pins.",
        )


def link_debian_toolchain(downloads: Path) -> Path:
    """downloads/gcc_embedded/bin -> the installed arm-none-eabi tools, so the makefile never fetches Arm's."""
    from edgecompress.micro.toolchain import arm_tool

    gcc = arm_tool("gcc")
    target = downloads / "gcc_embedded" / "bin"
    target.mkdir(parents=True, exist_ok=True)
    for tool in _ARM_TOOLS:
        found = Path(gcc).parent / f"arm-none-eabi-{tool}"
        link = target / found.name
        if found.exists() and not link.exists():
            link.symlink_to(found)
    return target


def describe(tree: TflmTree) -> dict[str, Any]:
    return asdict(tree) | {"root": str(tree.root)}
