"""`edgecompress ship` for a microcontroller run: the bundled firmware relinked and checked, and how to flash it.

A microcontroller is flashed, not installed over SSH, and flashing stays with the board's
own tool. What edgecompress can check is that the bundle is what was measured: every file
against the manifest's SHA-256 (load_manifest), and the firmware project relinked from the
bundle's own sources, with the core, kernels, memory map, arena and stack it records, into
the very same firmware.bin, byte for byte. A machine with another compiler cannot promise
identical bytes: there the image sizes are compared and the difference is said, not hidden.
The profile's `programmer` block gives the command a person runs next.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecompress.ship.bundle import BundleError, load_manifest, sha256_file


@dataclass
class FirmwareCheck:
    """The outcome of relinking a firmware bundle, and the flash command for its board."""

    bundle: Path
    image_bytes: int
    rebuilt_bytes: int
    identical: bool
    flash_command: str | None  # run in flash_directory (the bundle's firmware/), so it stays one short line
    flash_directory: Path
    programmer: dict[str, Any] | None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "bundle": str(self.bundle), "flash_directory": str(self.flash_directory)}


def check_firmware(bundle: Path, *, tflm_dir: str | Path | None = None) -> FirmwareCheck:
    """Verify `bundle` against its manifest, relink its firmware and compare the image; BundleError when it differs.

    The relink happens in a scratch copy: the bundle itself is never written to.
    """
    from edgecompress.micro.image import relink
    from edgecompress.micro.toolchain import gcc_version

    manifest = load_manifest(bundle)
    facts = manifest.get("firmware")
    if manifest.get("kind") != "firmware" or not isinstance(facts, dict):
        raise BundleError(f"{bundle} is not a firmware bundle.", "Use `edgecompress ship RUN --target ...` for boards.")
    shipped = bundle / str(facts["image"])
    with tempfile.TemporaryDirectory(prefix="edgecompress-relink-") as scratch:
        project = Path(scratch) / "firmware"
        shutil.copytree(bundle / str(facts["project"]), project)
        rebuilt = relink(project, Path(scratch) / "relinked", tflm_dir=tflm_dir)
        identical = sha256_file(rebuilt) == sha256_file(shipped)
        rebuilt_bytes = rebuilt.stat().st_size
    check = FirmwareCheck(
        bundle,
        shipped.stat().st_size,
        rebuilt_bytes,
        identical,
        flash_command(facts),
        (bundle / str(facts["project"])),
        facts.get("programmer"),
    )
    if not identical:
        same_compiler = gcc_version() == facts.get("toolchain")
        what = (
            f"firmware.bin relinked from the bundle's sources differs from the shipped one ({rebuilt_bytes:,} against "
            f"{check.image_bytes:,} bytes)"
        )
        if same_compiler:
            raise BundleError(
                f"{what}, with the same compiler ({facts.get('toolchain')}): the bundle's sources are not the ones "
                "that were measured.",
                "Rebuild the bundle from the run (edgecompress ship RUN_DIR --rebuild), or deploy again.",
            )
        check.warnings.append(f"{what}; it was built with {facts.get('toolchain')}, this machine has {gcc_version()}")
    return check


def flash_command(facts: dict[str, Any]) -> str | None:
    """The board's usual flashing command for the bundled firmware (from the profile's `programmer` block),
    naming the files relative to the bundle's firmware/ folder, where it is run."""
    programmer = facts.get("programmer") or {}
    command = programmer.get("command")
    if not command:
        return None
    files = {key: shlex.quote(Path(str(facts[key])).name) for key in ("elf", "image")}
    return str(command).replace("{elf}", files["elf"]).replace("{bin}", files["image"])
