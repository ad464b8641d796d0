"""The two things `deploy` asks of the microcontroller build for emulated boards, kept out of
the pipeline so it only calls them: which firmware to build for the requested targets, and
the firmware image the `qemu` targets then measure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecompress.micro.build import FirmwareOptions

#: what each firmware of a deploy is for: the compressed one must fit, the post-training one is built to compare with
ROLES = {
    "compressed": "the plan's compressed model",
    "post-training": "the profile's post-training int8 model, built to compare with",
}


def firmware_options(targets: list[str], micro: dict[str, Any] | None = None) -> FirmwareOptions:
    """Build options from --target values and the request's micro settings (tflm_dir, kernels).

    A `qemu` target makes the whole firmware mandatory (there is nothing to run without it)
    and `qemu:BOARD` fixes the board the arena and stack are measured on.
    """
    from edgecompress.targets.qemu import board_of, is_qemu_spec

    micro = dict(micro or {})
    emulated = [spec for spec in targets if is_qemu_spec(spec)]
    boards = [board for board in (board_of(spec) for spec in emulated) if board]
    return FirmwareOptions(
        mode="require" if emulated else str(micro.get("firmware", "auto")),
        tflm_dir=micro.get("tflm_dir"),
        kernels=str(micro.get("kernels") or "cmsis_nn"),
        board=boards[0] if boards else None,
    )


def check_firmware_tools(profile: Any, targets: list[str], micro: dict[str, Any] | None = None) -> None:
    """Before anything is trained: a qemu target needs a Cortex-M core, the Arm toolchain and a
    TFLM tree (prepared offline here if the pinned archives are next to the repository)."""
    from edgecompress.micro import cores
    from edgecompress.micro.build import whole_firmware_possible

    options = firmware_options(targets, micro)
    if options.mode == "require":
        whole_firmware_possible(cores.profile_core(profile), options)


def firmware_name(source: str) -> str:
    """The firmware artifact built from the .tflite artifact `source` ('cqat' -> 'cqat-firmware')."""
    return f"{source}-firmware"


def firmware_artifact(run_dir: Path, micro: dict[str, Any] | None) -> dict[str, Any] | None:
    """Artifact fields (name, kind, description, path, extra) of one linked firmware image, if it was built.

    `extra` carries the flash and RAM of the linked ELF, so the budget check of the firmware
    artifact reads the run's own build.
    """
    if not micro or not micro.get("firmware_image"):
        return None
    linked = micro.get("linked_firmware") or {}
    path = Path(micro["firmware_image"])
    path = path if path.is_absolute() else Path(run_dir) / path
    core = (linked.get("core") or {}).get("family", "Cortex-M")
    kernels = {"cmsis_nn": "CMSIS-NN", "reference": "reference"}.get(str(linked.get("kernels")), linked.get("kernels"))
    source = str(micro.get("source") or micro.get("artifact"))
    fits = micro.get("fits") or {}
    return {
        "name": str(micro.get("firmware_artifact") or firmware_name(source)),
        "kind": "int8",
        "description": f"TFLite Micro firmware of {source} for {core} ({kernels} kernels, {micro.get('shipped', '')} "
        "model): flash image of firmware.elf",
        "path": path,
        "extra": {
            "firmware_of": source,
            "flash_bytes": fits.get("flash_needed_bytes"),
            "ram_bytes": fits.get("ram_needed_bytes"),
            "budget_basis": fits.get("basis"),
            "model_flash_bytes": (micro.get("flash_bytes") or {}).get("model_in_elf"),
            "macs": {"total": (micro.get("macs") or {}).get("total")},
        },
    }
