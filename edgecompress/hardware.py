"""Facts about processor cores, keyed by a profile's `cpu.core`.

What a core is decides how firmware is compiled for it (gcc's -mcpu / FPU flags), which
emulated board can run it, and how many cycles an int8 multiply-accumulate costs there. These
facts were once guessed from substrings of the free-text `cpu.model`, where a typo silently
changed what was built; now `cpu.core` is an enum in the profile schema and this table is
the one place the facts live.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args


@dataclass(frozen=True)
class Core:
    """One processor core as far as edgecompress is concerned."""

    name: str  # as people write it, e.g. 'Cortex-M4F'
    arch: str  # the profile's cpu.arch it belongs to
    gcc_flags: tuple[str, ...] = ()  # arm-none-eabi-gcc target flags; empty: not a bare-metal Arm target
    qemu_board: str | None = None  # a qemu-system-arm machine with this core, if one exists
    cycles_per_mac: float | None = None  # int8 MAC cost with the kernels below (microcontrollers)
    kernels: str = ""  # the int8 kernels that cost assumes

    @property
    def is_cortex_m(self) -> bool:
        return bool(self.gcc_flags)


_HARD_FP_SINGLE = ("-mfloat-abi=hard",)
CoreName = Literal[
    "cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m4f", "cortex-m7", "cortex-m33", "cortex-m55",
    "xtensa-lx7", "cortex-a53", "cortex-a57", "cortex-a72", "cortex-a76", "cortex-x1", "x86-64",
]  # fmt: skip

CORES: dict[str, Core] = {
    "cortex-m0plus": Core("Cortex-M0+", "armv6-m", ("-mcpu=cortex-m0plus", "-mfloat-abi=soft"), None,
                          8.0, "TFLM reference C kernels, no DSP instructions"),
    "cortex-m3": Core("Cortex-M3", "armv7-m", ("-mcpu=cortex-m3", "-mfloat-abi=soft"), "mps2-an385",
                      4.0, "CMSIS-NN int8 without DSP instructions"),
    "cortex-m4": Core("Cortex-M4", "armv7e-m", ("-mcpu=cortex-m4", "-mfloat-abi=soft"), "mps2-an386",
                      2.0, "CMSIS-NN int8 (SMLAD)"),
    "cortex-m4f": Core("Cortex-M4F", "armv7e-m", ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", *_HARD_FP_SINGLE), "mps2-an386",
                       2.0, "CMSIS-NN int8 (SMLAD)"),
    "cortex-m7": Core("Cortex-M7", "armv7e-m", ("-mcpu=cortex-m7", "-mfpu=fpv5-d16", *_HARD_FP_SINGLE), "mps2-an500",
                      1.0, "CMSIS-NN int8 (SMLAD), dual issue"),
    "cortex-m33": Core("Cortex-M33", "armv8-m", ("-mcpu=cortex-m33", "-mfpu=fpv5-sp-d16", *_HARD_FP_SINGLE), "mps2-an505",
                       2.0, "CMSIS-NN int8 (SMLAD)"),
    "cortex-m55": Core("Cortex-M55", "armv8-m", ("-mcpu=cortex-m55", *_HARD_FP_SINGLE), "mps3-an547",
                       2.0, "CMSIS-NN int8 (SMLAD; Helium not counted)"),
    "xtensa-lx7": Core("Xtensa LX7 (ESP32-S3)", "xtensa", cycles_per_mac=1.0, kernels="ESP-NN 128-bit SIMD int8 kernels"),
    "cortex-a53": Core("Cortex-A53", "aarch64"),
    "cortex-a57": Core("Cortex-A57", "aarch64"),
    "cortex-a72": Core("Cortex-A72", "aarch64"),
    "cortex-a76": Core("Cortex-A76", "aarch64"),
    "cortex-x1": Core("Cortex-X1", "aarch64"),
    "x86-64": Core("x86-64", "x86_64"),
}
assert set(CORES) == set(get_args(CoreName)), "every core name in the schema has its facts"


def core(name: str) -> Core:
    return CORES[name]
