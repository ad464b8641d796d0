"""Which Cortex-M core a microcontroller profile names, how TFLM and GCC build for it, and
which emulated board runs it.

The cores themselves (gcc -mcpu, TFLM's TARGET_ARCH, FPU, which board emulates them) are in
edgecompress/hardware.py, keyed by the profile's `cpu.core`; this module holds the emulated
boards: the QEMU machines and the memory the firmware is linked into. A profile a user
writes gets the same treatment as a bundled one: its `cpu.core` picks the board.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgecompress.errors import ProfileError
from edgecompress.hardware import CORES, Core
from edgecompress.hardware import profile_core as hardware_core


@dataclass(frozen=True)
class Board:
    """An emulated board of qemu-system-arm and the memory the firmware is linked into.

    `code` holds the vector table, code and constants (the role flash plays on a device),
    `data` the initialised data, zeroed data, tensor arena and stack (the role of SRAM).
    Both are larger than any profile's budget: the budgets are checked from the linked
    ELF's figures, not by making the emulated board small.
    """

    name: str
    core: str  # mcpu of the emulated CPU
    description: str
    code_origin: int
    code_bytes: int
    data_origin: int
    data_bytes: int
    sysclk_hz: int  # SysTick's processor clock in QEMU's board model


_MIB = 1 << 20

#: QEMU machines with a Cortex-M CPU that run bare-metal firmware with semihosting.
BOARDS: dict[str, Board] = {
    "mps2-an386": Board(
        "mps2-an386",
        "cortex-m4",
        "Arm MPS2 FPGA board, AN386 image (Cortex-M4 with FPU)",
        0x0000_0000,
        4 * _MIB,
        0x2000_0000,
        4 * _MIB,
        25_000_000,
    ),
    "mps2-an500": Board(
        "mps2-an500",
        "cortex-m7",
        "Arm MPS2 FPGA board, AN500 image (Cortex-M7 with FPU)",
        0x0000_0000,
        4 * _MIB,
        0x2000_0000,
        4 * _MIB,
        25_000_000,
    ),
    "mps2-an385": Board(
        "mps2-an385",
        "cortex-m3",
        "Arm MPS2 FPGA board, AN385 image (Cortex-M3)",
        0x0000_0000,
        4 * _MIB,
        0x2000_0000,
        4 * _MIB,
        25_000_000,
    ),
    "mps3-an547": Board(
        "mps3-an547",
        "cortex-m55",
        "Arm MPS3 FPGA board, AN547 image (Cortex-M55 with MVE)",
        0x0000_0000,
        512 * 1024,
        0x2100_0000,
        4 * _MIB,
        32_000_000,
    ),
}


def profile_core(profile: object) -> Core | None:
    """The Cortex-M core of a profile (its `cpu.core`), or None for a core that is not a Cortex-M (Xtensa)."""
    core = hardware_core(profile)
    return core if core is not None and core.is_cortex_m else None


def board_for(core: Core, requested: str | None = None) -> Board:
    """The board to emulate `core` on: the one asked for (which must carry that core) or the core's own."""
    if requested is not None:
        board = BOARDS.get(requested)
        if board is None:
            raise ProfileError(
                f"There is no emulated board called '{requested}'.",
                f"Use one of: {', '.join(sorted(BOARDS))} (e.g. --target qemu:mps2-an386).",
            )
        if board.core != core.mcpu:
            raise ProfileError(
                f"Board '{requested}' emulates a {board.core}, but the profile's core is a {core.mcpu}: the "
                "firmware would be measured on the wrong CPU.",
                f"Use --target qemu (it picks {core.qemu_board or 'the matching board'}) or a board with a {core.mcpu}.",
            )
        return board
    if core.qemu_board is None:
        raise ProfileError(
            f"No emulated board in qemu-system-arm has a {core.family}; the firmware can be built but not run here.",
            "Deploy without --target qemu (the latency stays an estimate), or run the firmware on your own board.",
        )
    return BOARDS[core.qemu_board]


def core_by_mcpu(mcpu: str, fpu: bool | None = None) -> Core | None:
    """The core a firmware was built for, from the -mcpu (and FPU) it records."""
    return next((core for core in CORES.values() if core.mcpu == mcpu and (fpu is None or core.fpu == fpu)), None)
