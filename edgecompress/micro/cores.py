"""Which Cortex-M core a microcontroller profile names, how TFLM and GCC build for it, and
which emulated board runs it.

One table per concept, read by the firmware build (compiler flags, TFLM's TARGET_ARCH), the
linker script (the board's memory) and the emulated target (the QEMU machine). A profile a
user writes gets the same treatment as a bundled one: its `cpu.arch` and `cpu.model` pick
the core, and the core picks the board.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgecompress.errors import ProfileError


@dataclass(frozen=True)
class Core:
    """A Cortex-M core as TFLM's `cortex_m_generic` target and Debian's arm-none-eabi-gcc know it."""

    mcpu: str  # gcc -mcpu, e.g. 'cortex-m4'
    family: str  # what a person calls it, e.g. 'Cortex-M4F'
    tflm_arch: str  # TFLM's TARGET_ARCH, e.g. 'cortex-m4+fp'
    fpu: bool
    board: str | None  # the QEMU machine that emulates this core, if any


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
    "mps2-an386": Board("mps2-an386", "cortex-m4", "Arm MPS2 FPGA board, AN386 image (Cortex-M4 with FPU)",
                        0x0000_0000, 4 * _MIB, 0x2000_0000, 4 * _MIB, 25_000_000),
    "mps2-an500": Board("mps2-an500", "cortex-m7", "Arm MPS2 FPGA board, AN500 image (Cortex-M7 with FPU)",
                        0x0000_0000, 4 * _MIB, 0x2000_0000, 4 * _MIB, 25_000_000),
    "mps2-an385": Board("mps2-an385", "cortex-m3", "Arm MPS2 FPGA board, AN385 image (Cortex-M3)",
                        0x0000_0000, 4 * _MIB, 0x2000_0000, 4 * _MIB, 25_000_000),
    "mps3-an547": Board("mps3-an547", "cortex-m55", "Arm MPS3 FPGA board, AN547 image (Cortex-M55 with MVE)",
                        0x0000_0000, 512 * 1024, 0x2100_0000, 4 * _MIB, 32_000_000),
}

#: (profile cpu.arch, keyword in cpu.model or '' for any, whether the model text says FPU) -> core.
#: First match wins; the FPU column is None when the core always / never has one.
_CORES: tuple[tuple[str, str, bool | None, Core], ...] = (
    ("armv7e-m", "cortex-m7", None, Core("cortex-m7", "Cortex-M7", "cortex-m7+fp", True, "mps2-an500")),
    ("armv7e-m", "", True, Core("cortex-m4", "Cortex-M4F", "cortex-m4+fp", True, "mps2-an386")),
    ("armv7e-m", "", False, Core("cortex-m4", "Cortex-M4", "cortex-m4", False, "mps2-an386")),
    ("armv8-m", "cortex-m55", None, Core("cortex-m55", "Cortex-M55", "cortex-m55", True, "mps3-an547")),
    ("armv8-m", "", None, Core("cortex-m33", "Cortex-M33", "cortex-m33", True, None)),
    ("armv6-m", "", None, Core("cortex-m0plus", "Cortex-M0+", "cortex-m0plus", False, None)),
)
_FPU_WORDS = ("fpu", "cortex-m4f", "floating point", "floating-point")


def core_for(arch: str, cpu_model: str) -> Core | None:
    """The Cortex-M core of a profile's cpu, or None for a core that is not a Cortex-M (Xtensa, RISC-V)."""
    text = cpu_model.lower()
    has_fpu = any(word in text for word in _FPU_WORDS)
    for core_arch, keyword, fpu, core in _CORES:
        if arch == core_arch and keyword in text and (fpu is None or fpu == has_fpu):
            return core
    return None


def profile_core(profile: object) -> Core | None:
    cpu = getattr(profile, "cpu")
    return core_for(cpu.arch, cpu.model)


def board_for(core: Core, requested: str | None = None) -> Board:
    """The board to emulate `core` on: the one asked for (which must carry that core) or the core's own."""
    if requested is not None:
        board = BOARDS.get(requested)
        if board is None:
            raise ProfileError(f"There is no emulated board called '{requested}'.",
                               f"Use one of: {', '.join(sorted(BOARDS))} (e.g. --target qemu:mps2-an386).")
        if board.core != core.mcpu:
            raise ProfileError(
                f"Board '{requested}' emulates a {board.core}, but the profile's core is a {core.mcpu}: the "
                "firmware would be measured on the wrong CPU.",
                f"Use --target qemu (it picks {core.board or 'the matching board'}) or a board with a {core.mcpu}.")
        return board
    if core.board is None:
        raise ProfileError(
            f"No emulated board in qemu-system-arm has a {core.family}; the firmware can be built but not run here.",
            "Deploy without --target qemu (the latency stays an estimate), or run the firmware on your own board.")
    return BOARDS[core.board]


def core_by_mcpu(mcpu: str) -> Core | None:
    """The core a firmware was built for, from the -mcpu it records."""
    return next((core for *_, core in _CORES if core.mcpu == mcpu), None)
