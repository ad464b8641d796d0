"""The JavaScript and WebAssembly the phone page runs artifacts with, from npm at pinned versions.

LiteRT.js (`@litertjs/core`, which imports `@litertjs/wasm-utils`) runs .tflite files and ONNX
Runtime Web (`onnxruntime-web`) runs .onnx files. `edgecompress phone setup` fetches the three
packages once with npm's own client (`npm pack`, which checks the registry's integrity), or takes
the tarballs from a folder the user gives (checked against the pinned integrity here), and keeps
only the files the page loads under `$XDG_CACHE_HOME/edgecompress/phone/<key>/`. Deploys then
work offline; when the files are missing the error names the command.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgecompress.errors import ToolError

SETUP_COMMAND = "edgecompress phone setup"


@dataclass(frozen=True)
class NpmPackage:
    """One pinned npm package: its tarball's integrity, and which of its files the page needs."""

    name: str
    version: str
    integrity: str  # npm's dist.integrity (sha512 of the tarball)
    folder: str  # where its files sit in the asset folder (the page's import map names these)
    keep: tuple[str, ...]  # glob patterns relative to the package root

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball(self) -> str:
        """The file name `npm pack` writes: '@litertjs/core' 2.5.3 -> 'litertjs-core-2.5.3.tgz'."""
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"


PACKAGES: tuple[NpmPackage, ...] = (
    NpmPackage(
        "@litertjs/core",
        "2.5.3",
        "sha512-PlGmbMOq9WitX7FO0jhbdJw9GthatsyuCQXjTt/wJZo0FLaw48q4tz8IwqgqCIkviYGr9OFDL1kCnN4nzWoyJQ==",
        "litertjs-core",
        ("dist/index.js", "wasm/*.js", "wasm/*.wasm", "package.json"),
    ),
    NpmPackage(
        "@litertjs/wasm-utils",
        "2.5.3",
        "sha512-4fJiw6tBQnIs+0jH/OQ16nYOiSl8/+zZnn5h2ul8aTKHi05sVqZW580Tmk78pC2kT39A9OYBVdFawteZ/sI1kQ==",
        "litertjs-wasm-utils",
        ("dist/index.js", "package.json"),
    ),
    NpmPackage(
        "onnxruntime-web",
        "1.31.1",
        "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw==",
        "onnxruntime-web",
        (
            "dist/ort.webgpu.min.mjs",
            "dist/ort-wasm-simd-threaded*.mjs",
            "dist/ort-wasm-simd-threaded*.wasm",
            "package.json",
        ),
    ),
)
#: written last, so a half-finished setup is never taken for a finished one
MANIFEST = "assets.json"


def versions() -> dict[str, str]:
    """{'@litertjs/core': '2.5.3', ...}: what the page runs with, for reports and labels."""
    return {package.name: package.version for package in PACKAGES}


def assets_key() -> str:
    """The cache folder's name: changes whenever a pin changes."""
    pins = json.dumps([[p.name, p.version, p.integrity, list(p.keep)] for p in PACKAGES])
    return hashlib.sha256(pins.encode()).hexdigest()[:16]


def assets_dir() -> Path:
    """Where setup puts the files (XDG_CACHE_HOME respected, as for the TFLM tree)."""
    from edgecompress.micro.tflm_tree import cache_root

    return cache_root() / "phone" / assets_key()


def find_assets() -> Path:
    """The prepared asset folder; ToolError naming the setup command when there is none."""
    folder = assets_dir()
    if not (folder / MANIFEST).is_file():
        pins = ", ".join(package.spec for package in PACKAGES)
        raise ToolError(
            f"The phone page's runtimes ({pins}) are not in edgecompress's cache ({folder}).",
            f"Run `{SETUP_COMMAND}` once (it fetches them with npm), or `{SETUP_COMMAND} --from DIR` with a folder "
            "holding their npm tarballs (as `npm pack` writes them); deploys are offline afterwards.",
        )
    return folder


def setup(source: Path | None = None, *, force: bool = False) -> Path:
    """Fill the asset folder from npm (`npm pack`) or from the tarballs in `source`; return it."""
    folder = assets_dir()
    if (folder / MANIFEST).is_file() and not force:
        return folder
    with tempfile.TemporaryDirectory(prefix="edgecompress-phone-") as scratch:
        tarballs = Path(scratch) / "tarballs"
        tarballs.mkdir()
        if source is None:
            _npm_pack(tarballs)
        else:
            _copy_tarballs(Path(source).expanduser(), tarballs)
        staging = Path(scratch) / "assets"
        for package in PACKAGES:
            _check_integrity(package, tarballs / package.tarball)
            _unpack(package, tarballs / package.tarball, staging / package.folder)
        (staging / MANIFEST).write_text(json.dumps({"packages": versions(), "key": assets_key()}, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging, folder)
    return folder


def _npm_pack(into: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise ToolError(
            "npm is not installed, and the phone page's runtimes come from npm.",
            f"Install Node.js and npm (Debian: apt-get install npm) and run `{SETUP_COMMAND}` again, or run "
            f"`npm pack {' '.join(p.spec for p in PACKAGES)}` on a machine that has npm and pass that folder "
            f"with `{SETUP_COMMAND} --from DIR`.",
        )
    command = [npm, "pack", "--silent", *(package.spec for package in PACKAGES)]
    try:
        done = subprocess.run(command, cwd=into, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        raise ToolError(
            "npm pack did not finish within 10 minutes.", "Check the network to the npm registry and run it again."
        ) from None
    if done.returncode != 0:
        raise ToolError(
            f"npm pack failed (exit code {done.returncode}): {done.stderr.strip()[-600:]}",
            f"Check that the npm registry is reachable (npm config get registry), or pass the tarballs with "
            f"`{SETUP_COMMAND} --from DIR`.",
        )


def _copy_tarballs(source: Path, into: Path) -> None:
    missing = [package.tarball for package in PACKAGES if not (source / package.tarball).is_file()]
    if missing:
        raise ToolError(
            f"{source} lacks {', '.join(missing)}.",
            f"Fill it with `npm pack {' '.join(p.spec for p in PACKAGES)}` (run inside that folder).",
        )
    for package in PACKAGES:
        shutil.copy2(source / package.tarball, into / package.tarball)


def _check_integrity(package: NpmPackage, tarball: Path) -> None:
    algorithm, _, expected = package.integrity.partition("-")
    digest = hashlib.new(algorithm, tarball.read_bytes()).digest()
    if base64.b64encode(digest).decode() != expected:
        raise ToolError(
            f"{tarball.name} is not {package.spec} as published (its {algorithm} differs from the pinned one).",
            f"Fetch it again with `npm pack {package.spec}`, or let `{SETUP_COMMAND}` fetch it.",
        )


def _unpack(package: NpmPackage, tarball: Path, into: Path) -> None:
    """The kept files only; npm tarballs hold everything under 'package/'. Nothing outside `into` is written."""
    with tarfile.open(tarball, "r:gz") as archive:
        archive.extractall(into.parent / f".{package.folder}-all", filter="data")
    root = into.parent / f".{package.folder}-all" / "package"
    for pattern in package.keep:
        matches = sorted(root.glob(pattern))
        if not matches:
            raise ToolError(
                f"{package.spec} has no {pattern}; the page cannot load it.",
                "The pinned package changed on the registry; report this to edgecompress.",
            )
        for path in matches:
            target = into / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    shutil.rmtree(root.parent)


__all__ = ["PACKAGES", "SETUP_COMMAND", "assets_dir", "find_assets", "setup", "versions"]
