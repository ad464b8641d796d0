"""Facts about processor cores, keyed by a profile's `cpu.core`.

What a core is decides how firmware is compiled for it (gcc's -mcpu and TFLM's TARGET_ARCH),
which emulated board can run it, and how many cycles an int8 multiply-accumulate costs there.
These facts were once guessed from substrings of the free-text `cpu.model`, where a typo
silently changed what was built; now `cpu.core` is an enum in the profile schema and this
table is the one place the facts live (emulated boards and their memory maps are in
edgecompress/micro/cores.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args


@dataclass(frozen=True)
class Core:
    """One processor core as far as edgecompress is concerned."""

    family: str  # what a person calls it, e.g. 'Cortex-M4F'
    arch: str  # the profile's cpu.arch it belongs to
    mcpu: str | None = None  # arm-none-eabi-gcc -mcpu; None: not a bare-metal Cortex-M target
    tflm_arch: str | None = None  # TFLM's TARGET_ARCH for cortex_m_generic, e.g. 'cortex-m4+fp'
    fpu: bool = False
    qemu_board: str | None = None  # a qemu-system-arm machine with this core, if one exists
    cycles_per_mac: float | None = None  # int8 MAC cost with the kernels below (microcontrollers)
    kernels: str = ""  # the int8 kernels that cost assumes

    @property
    def is_cortex_m(self) -> bool:
        return self.mcpu is not None


CoreName = Literal[
    "cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m4f", "cortex-m7", "cortex-m33", "cortex-m55",
    "xtensa-lx7", "cortex-a53", "cortex-a57", "cortex-a72", "cortex-a76", "cortex-x1", "x86-64",
]  # fmt: skip

_SMLAD = "CMSIS-NN int8 (SMLAD)"
CORES: dict[str, Core] = {
    "cortex-m0plus": Core(
        "Cortex-M0+",
        "armv6-m",
        "cortex-m0plus",
        "cortex-m0plus",
        False,
        None,
        8.0,
        "TFLM reference C kernels, no DSP instructions",
    ),
    "cortex-m3": Core(
        "Cortex-M3",
        "armv7-m",
        "cortex-m3",
        "cortex-m3",
        False,
        "mps2-an385",
        4.0,
        "CMSIS-NN int8 without DSP instructions",
    ),
    "cortex-m4": Core("Cortex-M4", "armv7e-m", "cortex-m4", "cortex-m4", False, "mps2-an386", 2.0, _SMLAD),
    "cortex-m4f": Core("Cortex-M4F", "armv7e-m", "cortex-m4", "cortex-m4+fp", True, "mps2-an386", 2.0, _SMLAD),
    "cortex-m7": Core(
        "Cortex-M7", "armv7e-m", "cortex-m7", "cortex-m7+fp", True, "mps2-an500", 1.0, f"{_SMLAD}, dual issue"
    ),
    "cortex-m33": Core("Cortex-M33", "armv8-m", "cortex-m33", "cortex-m33", True, None, 2.0, _SMLAD),
    "cortex-m55": Core(
        "Cortex-M55", "armv8-m", "cortex-m55", "cortex-m55", True, "mps3-an547", 2.0, f"{_SMLAD}; Helium not counted"
    ),
    "xtensa-lx7": Core(
        "Xtensa LX7 (ESP32-S3)", "xtensa", cycles_per_mac=1.0, kernels="ESP-NN 128-bit SIMD int8 kernels"
    ),
    "cortex-a53": Core("Cortex-A53", "aarch64"),
    "cortex-a57": Core("Cortex-A57", "aarch64"),
    "cortex-a72": Core("Cortex-A72", "aarch64"),
    "cortex-a76": Core("Cortex-A76", "aarch64"),
    "cortex-x1": Core("Cortex-X1", "aarch64"),
    "x86-64": Core("x86-64", "x86_64"),
}
assert set(CORES) == set(get_args(CoreName)), "every core name in the schema has its facts"


def profile_core(profile: object) -> Core | None:
    """The core a profile names (None when it names none)."""
    name = getattr(getattr(profile, "cpu", None), "core", None)
    return CORES.get(name) if name else None


# ---------------------------------------------------------------------------- where the numbers come from

#: what `uname -m` may say for one instruction set
_MACHINE_ALIASES = {"arm64": "aarch64", "amd64": "x86_64", "x64": "x86_64", "armv8l": "armv7l", "armhf": "armv7l"}
#: what a QEMU target's probe calls its machine (edgecompress/targets/qemu.py)
EMULATED_MACHINE = "Cortex-M (emulated)"


@dataclass(frozen=True)
class StandIn:
    """A target that is not the profile's device: what its figures say about that device, and what they do not."""

    target: str
    profile: str
    host: str  # 'this x86-64 host', 'an emulated Cortex-M board (QEMU)', "board 'pi' (x86_64)"
    verb: str  # how the figures were taken there
    transfers: str

    @property
    def words(self) -> str:
        """'timed on this x86-64 host, a stand-in for rpi4: latency does not transfer; sizes and accuracy do'."""
        return f"{self.verb} on {self.host}, a stand-in for {self.profile}: {self.transfers}"

    def to_dict(self) -> dict[str, str]:
        return {"target": self.target, "profile": self.profile, "words": self.words}


def stand_in(profile: dict[str, Any], target: dict[str, Any]) -> StandIn | None:
    """None when `target` (a report's `targets` entry: name and probe) can be the profile's device;
    else why it is a stand-in. The one place this is decided: the verdict, the report's title and
    the terminal's headline all ask here.

    A QEMU board is always a stand-in (it counts instructions; it has no clock). A board whose
    instruction set differs from the profile's `cpu.arch` is one too: its latency says nothing
    about the device, while sizes (the same file) and accuracy (the same arithmetic) still hold.
    """
    name = str(target.get("name", "?"))
    machine = str(((target.get("probe") or {}).get("platform") or {}).get("machine") or "")
    wanted = str((profile.get("cpu") or {}).get("arch") or "")
    if machine == EMULATED_MACHINE or name.startswith("qemu"):
        return StandIn(
            name,
            str(profile.get("name")),
            "an emulated Cortex-M board (QEMU)",
            "run",
            "instructions are counted, not timed; sizes and accuracy transfer",
        )
    if not machine or not wanted or _machine(machine) == _machine(wanted):
        return None
    host = f"this {machine.replace('_', '-')} host" if name == "local" else f"board '{name}' ({machine})"
    return StandIn(name, str(profile.get("name")), host, "timed", "latency does not transfer; sizes and accuracy do")


def _machine(name: str) -> str:
    lowered = name.strip().lower()
    return _MACHINE_ALIASES.get(lowered, lowered)
