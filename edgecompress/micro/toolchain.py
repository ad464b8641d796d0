"""The host tools firmware needs: Debian's arm-none-eabi GCC + newlib, and qemu-system-arm.

Each lookup fails with the exact packages to install, because "command not found" deep in
a build is the least helpful way to learn that a toolchain is missing.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

from edgecompress.errors import ToolError

ARM_PACKAGES = "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"
QEMU_INSTALL = (
    "Install QEMU 8 or newer with its Cortex-M boards; on Debian 12 take it from bookworm-backports: "
    "`uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources); "
    'echo "deb $uri bookworm-backports main" > /etc/apt/sources.list.d/backports.list && apt-get update && '
    "apt-get install -y -t bookworm-backports --no-install-recommends qemu-system-arm` "
    "(elsewhere: apt-get install qemu-system-arm)."
)
#: Older qemu-system-arm builds lack -icount-driven SysTick fidelity and the AN386/AN500/AN547 machines.
MIN_QEMU = (8, 0)


def arm_tool(name: str) -> str:
    """Path of arm-none-eabi-`name` (gcc, g++, nm, size, objcopy, c++filt...)."""
    path = shutil.which(f"arm-none-eabi-{name}")
    if path is None:
        raise ToolError(
            f"arm-none-eabi-{name} is not installed: the Cortex-M firmware cannot be compiled.",
            f"Install Debian's Arm toolchain and newlib: apt-get install -y {ARM_PACKAGES}",
        )
    return path


def have_arm_toolchain() -> bool:
    return all(shutil.which(f"arm-none-eabi-{tool}") for tool in ("gcc", "g++", "nm", "size"))


@functools.cache
def gcc_version() -> str:
    result = subprocess.run([arm_tool("gcc"), "--version"], capture_output=True, text=True, check=False)
    return result.stdout.splitlines()[0] if result.stdout else "arm-none-eabi-gcc (unknown version)"


def require_newlib(mcpu_flags: list[str]) -> None:
    """newlib for the core's multilib must be there, or linking fails with a cryptic 'cannot find -lc'."""
    result = subprocess.run(
        [arm_tool("gcc"), *mcpu_flags, "-print-file-name=libc_nano.a"], capture_output=True, text=True, check=False
    )
    found = result.stdout.strip()
    if result.returncode != 0 or not Path(found).is_absolute() or not Path(found).is_file():
        raise ToolError(
            "newlib for arm-none-eabi is not installed (no libc_nano.a for this core).",
            f"Install it: apt-get install -y {ARM_PACKAGES}",
        )


def qemu_system() -> str:
    """Path of qemu-system-arm, checked to be new enough for the emulated Cortex-M boards."""
    path = shutil.which("qemu-system-arm")
    if path is None:
        raise ToolError("qemu-system-arm is not installed: the firmware cannot run on an emulated board.", QEMU_INSTALL)
    version = qemu_version(path)
    if version < MIN_QEMU:
        raise ToolError(
            f"qemu-system-arm {'.'.join(map(str, version))} is too old for the emulated Cortex-M boards "
            f"(needs {'.'.join(map(str, MIN_QEMU))} or newer).",
            QEMU_INSTALL,
        )
    return path


@functools.cache
def qemu_version(path: str) -> tuple[int, int]:
    result = subprocess.run([path, "--version"], capture_output=True, text=True, check=False, timeout=30)
    match = re.search(r"version (\d+)\.(\d+)", result.stdout)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def qemu_version_text() -> str:
    path = shutil.which("qemu-system-arm")
    if path is None:
        return "not installed"
    result = subprocess.run([path, "--version"], capture_output=True, text=True, check=False, timeout=30)
    return result.stdout.splitlines()[0] if result.stdout else "unknown"
