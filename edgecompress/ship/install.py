"""`edgecompress ship RUN --target ssh://...`: install the bundle on a board, verified, atomically.

The steps, each a method so a failure names its step:

1. check   the bundle against its manifest on this machine (a changed file is refused; nothing sent)
2. connect with the SSH target's own connection code: known_hosts verification, never auto-trust
3. upload  every file into the board's content-addressed cache (the SSH target's checked transfer:
           temp name, SHA-256 computed *on the board*, atomic rename)
4. probe   the board with the bundle's runner; a runtime other than the measured one is a warning
           with both versions, or a refusal with --strict
5. stage   copy the files into a new release folder beside the install path
6. verify  hash every staged file on the board and compare with the manifest
7. smoke   run the bundle's runner on the smoke inputs there; scores must match the manifest's
           reference within its tolerance, and the top class exactly
8. activate point the install path (a symlink) at the release with one rename

A failure before step 8 leaves the board's installed model exactly as it was.
"""

from __future__ import annotations

import logging
import posixpath
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecompress.errors import TargetError
from edgecompress.ship import board_tools as tools
from edgecompress.ship.bundle import MANIFEST, RUNNER, load_manifest, sha256_file

log = logging.getLogger("edgecompress.ship")

Say = Callable[[str], None]
TOOL_TIMEOUT_S = 300.0
#: runtimes able to run each format on a board, best first (the runner's own "auto" order)
FORMAT_RUNTIMES = {"tflite": ("ai_edge_litert", "tflite_runtime", "tensorflow"), "onnx": ("onnxruntime",)}


class ShipError(TargetError):
    """A board refused or failed an install step; the board's installed model is unchanged."""


@dataclass
class Installed:
    """What `install` did."""

    target: str
    path: str  # the install path on the board (a symlink)
    release: str  # the folder it points at
    previous: str | None
    runtime: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    max_abs_difference: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Installer:
    """One bundle onto one board. Use `install()`, or the steps one by one (tests do, to tamper between them)."""

    def __init__(
        self,
        bundle: Path,
        spec: str,
        *,
        path: str | None = None,
        strict: bool = False,
        say: Say | None = None,
        **options: Any,
    ) -> None:
        self.bundle = Path(bundle)
        self.manifest = load_manifest(self.bundle)  # step 1: refuses a changed bundle before connecting
        if self.manifest.get("kind") == "firmware":
            raise ShipError(
                "This bundle is a TFLite Micro firmware project: a microcontroller is flashed, not installed over SSH.",
                f"Build and flash {self.bundle / 'firmware'} with the board's toolchain (see its README).",
            )
        self.spec, self.strict = spec, strict
        self.say = say or (lambda message: log.info(message))
        self.options = options
        self.path = path or f"~/models/{_default_name(self.manifest)}"
        self.warnings: list[str] = []
        self._up: Any = None
        self._cached: dict[str, str] = {}

    # ------------------------------------------------------------------ steps

    def connect(self) -> None:
        from edgecompress.targets.ssh import ssh_target_from_spec

        target = ssh_target_from_spec(self.spec, **self.options)  # parses the URL / target file and the options
        self.name = target.name
        self._up = target.connected()  # the same verified connection and checked uploader deploy uses

    def upload(self) -> None:
        from edgecompress.targets.ssh_transfer import LocalFile

        files = {name: LocalFile.of(self.bundle / name) for name in [*self.manifest["files"], MANIFEST]}
        transfers = self._up.ensure(list(files.values()))
        sent = sum(t.bytes for t in transfers if t.sent)
        self.say(f"upload: {len(transfers)} files verified on the board ({sent:,} bytes sent)")
        self._cached = {name: self._up.layout.cached(file) for name, file in files.items()}

    def probe(self) -> dict[str, Any]:
        """The board's runtimes, asked of the bundle's own runner; a differing runtime is warned about or refused."""
        result = self._up.conn.run([*self._up.python, self._cached[RUNNER], "--probe"], timeout=TOOL_TIMEOUT_S)
        document = _json(result.stdout)
        if result.status != 0 or not isinstance(document, dict) or "error" in document:
            raise ShipError(
                f"The runner could not describe {self.name}: {result.stderr_tail() or document}.",
                "Check Python 3.8+ and NumPy on the board: python3 edgecompress_runner.py --probe",
            )
        self._check_runtime(document.get("runtimes") or {})
        return document

    def stage(self) -> str:
        releases = posixpath.join(
            posixpath.dirname(self.path.rstrip("/")), f".{posixpath.basename(self.path.rstrip('/'))}.releases"
        )
        release = posixpath.join(releases, f"{sha256_file(self.bundle / MANIFEST)[:12]}-{secrets.token_hex(3)}")
        pairs = [part for name in [*self.manifest["files"], MANIFEST] for part in (self._cached[name], name)]
        document = self._tool(tools.STAGE, release, *pairs)
        return str(document["release"])

    def verify(self, folder: str) -> None:
        """Every file on the board hashed there and compared with the manifest; a mismatch discards the release."""
        names = [*self.manifest["files"], MANIFEST]
        document = self._tool(tools.HASHES, folder, *names)
        digests: dict[str, Any] = (
            document["sha256"] if isinstance(document, dict) and isinstance(document.get("sha256"), dict) else {}
        )
        want = {
            **{n: e["sha256"] for n, e in self.manifest["files"].items()},
            MANIFEST: sha256_file(self.bundle / MANIFEST),
        }
        wrong = [
            f"{n} (SHA-256 {str(digests.get(n))[:12]}... instead of {want[n][:12]}...)"
            for n in names
            if digests.get(n) != want[n]
        ]
        if wrong:
            self._discard(folder)
            raise ShipError(
                f"The installed files on {self.name} do not match the manifest: {'; '.join(wrong)}. "
                "The release was discarded; the installed model is unchanged.",
                "Run ship again; if it repeats, check the board's storage (dmesg, fsck) and free space.",
            )
        self.say(f"verify: {len(names)} files match the manifest on the board")

    def smoke(self, folder: str) -> tuple[dict[str, Any], float]:
        """One inference per smoke input with the bundle's runner there, compared with the manifest's reference."""
        smoke = self.manifest.get("smoke") or {}
        document = self._tool(tools.SMOKE, folder, self.manifest["artifact"]["file"], smoke["input"])
        scores = _scores(document.get("scores"))
        reference = np.asarray(smoke["reference_scores"], dtype=np.float64)
        atol = float(smoke["tolerance"]["atol"])
        if scores is None or scores.shape != reference.shape:
            self._discard(folder)
            raise ShipError(
                f"The smoke inference on {self.name} returned no usable scores ({str(document)[:200]}).",
                "Run the bundle's runner by hand on the board to see why: python3 edgecompress_runner.py --probe",
            )
        difference = float(np.max(np.abs(scores - reference))) if scores.size else 0.0
        same_top = (
            bool(np.array_equal(np.argmax(scores, axis=1), np.argmax(reference, axis=1)))
            if scores.ndim == 2 and scores.shape[1] > 1
            else True
        )
        if difference > atol or not same_top:
            self._discard(folder)
            raise ShipError(
                f"The smoke inference on {self.name} does not reproduce the manifest: largest score difference "
                f"{difference:.3g} (tolerance {atol:g}), top class {'the same' if same_top else 'different'}. "
                "The release was discarded; the installed model is unchanged.",
                "The board's runtime computes differently: install the measured runtime (see manifest.json "
                "'expected'), or deploy again measuring on this board.",
            )
        self.say(
            f"smoke: {len(scores)} inferences match the reference (largest difference {difference:.2g}, tolerance {atol:g})"
        )
        return document.get("runtime") or {}, difference

    def activate(self, folder: str) -> dict[str, Any]:
        try:
            document = self._tool(tools.ACTIVATE, self.path, folder)
        except ShipError:
            self._discard(folder)
            raise
        self.verify(self.path)  # once more, through the installed path itself
        return document

    def install(self) -> Installed:
        """Every step in order; the installed model changes only in the last one."""
        self.connect()
        try:
            self.upload()
            self.probe()
            folder = self.stage()
            self.verify(folder)
            runtime, difference = self.smoke(folder)
            done = self.activate(folder)
        finally:
            self.close()
        self.say(f"installed at {done['path']} -> {done['release']}")
        return Installed(
            self.name, done["path"], done["release"], done.get("previous"), runtime, self.warnings, difference
        )

    def close(self) -> None:
        if self._up is not None:
            self._up.conn.close()
            self._up = None

    # ------------------------------------------------------------------ helpers

    def _tool(self, source: str, *args: str) -> dict[str, Any]:
        result = self._up.run_tool(source, *args, timeout=TOOL_TIMEOUT_S)
        document = _json(result.stdout)
        if not isinstance(document, dict):
            raise ShipError(
                f"A ship helper on {self.name} answered something that is not a result: {result.stdout[:200]!r}.",
                "Check the board's Python (3.8+) and that nothing prints from its shell start-up files.",
            )
        if "error" in document:
            error = document["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise ShipError(
                f"{self.name}: {message}.",
                "Pass --path to a location the SSH user may write (e.g. under its home), or remove what is in the way.",
            )
        return document

    def _discard(self, folder: str) -> None:
        if folder != self.path:
            try:
                self._tool(tools.DISCARD, folder)
            except (ShipError, TargetError) as error:
                log.warning("could not remove %s on %s: %s", folder, self.name, error)

    def _check_runtime(self, board: dict[str, Any]) -> None:
        measured = [e.get("runtime") for e in self.manifest.get("expected") or [] if isinstance(e.get("runtime"), dict)]
        if not measured:
            return
        wanted = measured[0]
        fmt = self.manifest["artifact"].get("format") or "tflite"
        chosen = next(((n, board.get(n)) for n in FORMAT_RUNTIMES.get(fmt, ()) if board.get(n)), None)
        shown_board = f"{chosen[0]} {chosen[1]}" if chosen else f"no {fmt} runtime"
        if chosen == (wanted.get("name"), wanted.get("version")):
            return
        message = (
            f"{self.name} would run the model with {shown_board}, but it was measured with "
            f"{wanted.get('name')} {wanted.get('version')}: its figures may not hold there."
        )
        if self.strict or chosen is None:
            raise ShipError(
                message,
                f"Install {wanted.get('name')} {wanted.get('version')} on the board, or ship without --strict "
                "to install anyway (the smoke inference still checks the outputs).",
            )
        self.warnings.append(message)
        log.warning(message)
        self.say(f"warning: {message}")


def install(
    bundle: Path, spec: str, *, path: str | None = None, strict: bool = False, say: Say | None = None, **options: Any
) -> Installed:
    """Install `bundle` on the board `spec` names (see Installer)."""
    return Installer(bundle, spec, path=path, strict=strict, say=say, **options).install()


def _default_name(manifest: dict[str, Any]) -> str:
    from edgecompress.run_layout import slug

    return slug(Path(str(manifest["source_model"]["file"])).stem)


def _json(stdout: bytes) -> Any:
    from edgecompress.targets.ssh_board_tools import parse_json_document

    try:
        return parse_json_document(stdout)
    except ValueError:
        return None


def _scores(value: Any) -> np.ndarray | None:
    """The board's scores as a float array, or None when they are not a list of equal-length number lists."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array if array.ndim == 2 and np.all(np.isfinite(array)) else None
