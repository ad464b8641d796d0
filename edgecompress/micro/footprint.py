"""Flash and RAM of a linked firmware, from its ELF section headers and its linker map.

Flash = everything loaded into code memory: vector table, code, constants, C++ init tables
and the initial values of .data. RAM = .data + .bss (which holds the tensor arena) + the
stack reserved by the linker script. The linker map says which object file each input
section came from, so both totals are itemised: the model (model_data.o), the TFLM runtime
(interpreter, allocators, planners, schema), the kernels (TFLM kernels and CMSIS-NN), the
tensor arena, the stack, and the rest (start-up code, the application, newlib, libgcc,
alignment). The items always add up to the totals from the section headers.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecompress.micro.toolchain import arm_tool

#: Output sections in code memory (the linker script's CODE region); .data also takes flash.
FLASH_SECTIONS = (".vectors", ".text", ".rodata", ".ARM.extab", ".ARM.exidx", ".init_array")
RAM_SECTIONS = (".data", ".bss", ".arena", ".stack")
ITEMS = ("model", "tflm_runtime", "kernels", "arena", "stack", "harness", "rest")
#: The tensor arena: main.cc's array (in .bss), or the linker script's .arena region (harness).
ARENA_SYMBOLS = ("g_tensor_arena",)
_HARNESS_UNITS = ("emulator_main.cc", "semihosting.c", "systick_time.cc")


@dataclass
class Footprint:
    """Flash and RAM of one ELF, in bytes, itemised."""

    elf: str
    sections: dict[str, int]
    flash: dict[str, int]
    ram: dict[str, int]
    arena_bytes: int
    stack_bytes: int
    notes: list[str] = field(default_factory=list)

    @property
    def flash_bytes(self) -> int:
        return self.flash["total"]

    @property
    def ram_bytes(self) -> int:
        return self.ram["total"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "elf": self.elf,
            "flash_bytes": self.flash_bytes,
            "ram_bytes": self.ram_bytes,
            "flash": self.flash,
            "ram": self.ram,
            "sections": self.sections,
            "arena_bytes": self.arena_bytes,
            "stack_bytes": self.stack_bytes,
            "notes": self.notes,
            "definitions": {
                "flash": "text + rodata + data (initial values) of the linked ELF",
                "ram": "data + bss (including the tensor arena) + the stack the linker script reserves",
            },
        }


def measure(elf: Path, map_file: Path, origins: dict[str, str]) -> Footprint:
    """Footprint of `elf`; `origins` maps object paths to 'framework' | 'kernel' | 'third-party' | 'application'."""
    sections = section_sizes(elf)
    in_bss = sum(symbol_sizes(elf, ARENA_SYMBOLS).values())
    contributions = _merged_strings_scaled(map_contributions(map_file), sections)
    flash = {item: 0 for item in ITEMS if item not in ("arena", "stack")}
    ram = {item: 0 for item in ITEMS}
    for output, source, size in contributions:
        item = _item(source, origins)
        if output in FLASH_SECTIONS or output == ".data":
            flash[item] += round(size)
        if output in (".data", ".bss"):
            ram[item] += round(size)
    ram["stack"] = sections.get(".stack", 0)
    ram["rest"] -= in_bss  # main.cc's arena array is in the application's .bss: show it on its own
    arena = in_bss + sections.get(".arena", 0)
    ram["arena"] = arena
    flash_total = image_extent(elf) or sum(sections.get(name, 0) for name in (*FLASH_SECTIONS, ".data"))
    ram_total = sum(sections.get(name, 0) for name in RAM_SECTIONS)
    notes = []
    for totals, items, what in ((flash_total, flash, "flash"), (ram_total, ram, "RAM")):
        gap = totals - sum(items.values())
        items["rest"] += gap  # alignment fill between output sections
        if abs(gap) > max(256, totals // 200):
            notes.append(f"{gap:,} B of {what} could not be attributed from the map and were counted as rest")
        items["total"] = totals
    return Footprint(str(elf), sections, flash, ram, arena, sections.get(".stack", 0), notes)


def _merged_strings_scaled(
    rows: list[tuple[str, str, int, str]], sections: dict[str, int]
) -> list[tuple[str, str, float]]:
    """The map lists string sections before the linker merges duplicates: shrink them to what was kept.

    Each object's mergeable strings (`.rodata.*.str1.*`) are scaled by the same factor, so
    the items still add up to the section's real size and each keeps its share.
    """
    totals: dict[str, float] = {}
    merged: dict[str, float] = {}
    for output, _, size, name in rows:
        totals[output] = totals.get(output, 0) + size
        if ".str" in name:
            merged[output] = merged.get(output, 0) + size
    factor = {}
    for output, total in totals.items():
        excess = total - sections.get(output, total)
        strings = merged.get(output, 0)
        factor[output] = max(0.0, (strings - excess) / strings) if excess > 0 and strings else 1.0
    return [(output, source, size * (factor[output] if ".str" in name else 1.0)) for output, source, size, name in rows]


def _item(source: str, origins: dict[str, str]) -> str:
    name = Path(source.split("(")[0]).name
    unit = name.split(".")[0] + "." + name.split(".")[1] if name.count(".") >= 2 else name
    if unit == "model_data.cc":
        return "model"
    if unit in _HARNESS_UNITS:
        return "harness"
    origin = origins.get(source)
    if origin == "framework":
        return "tflm_runtime"
    if origin in ("kernel", "third-party"):
        return "kernels"
    return "rest"


def section_sizes(elf: Path) -> dict[str, int]:
    """Allocated section sizes from arm-none-eabi-size -A."""
    result = subprocess.run([arm_tool("size"), "-A", str(elf)], capture_output=True, text=True, check=True)
    sizes = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


def image_extent(elf: Path) -> int:
    """Bytes from the first to the last byte loaded into code memory (LOAD segments' physical
    addresses), alignment gaps included: exactly what is written to flash."""
    result = subprocess.run([arm_tool("readelf"), "-lW", str(elf)], capture_output=True, text=True, check=True)
    spans = []
    for line in result.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] == "LOAD" and len(parts) >= 6 and int(parts[4], 16) > 0:
            start = int(parts[3], 16)  # PhysAddr (the load address: .data's initial values sit in flash)
            spans.append((start, start + int(parts[4], 16)))
    return max(end for _, end in spans) - min(start for start, _ in spans) if spans else 0


def symbol_sizes(elf: Path, names: tuple[str, ...]) -> dict[str, int]:
    result = subprocess.run([arm_tool("nm"), "-S", "-C", str(elf)], capture_output=True, text=True, check=True)
    found = {}
    for line in result.stdout.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) == 4 and parts[3].split("::")[-1] in names:
            found[parts[3]] = int(parts[1], 16)
    return found


_OUTPUT = re.compile(r"^(\.[\w.]+)\s*(0x[0-9a-f]+)?\s*(0x[0-9a-f]+)?")
_INPUT = re.compile(r"^ (\.[^\s]+|COMMON)\s*$|^ (\.[^\s]+|COMMON)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(\S.*)$")
_CONTINUED = re.compile(r"^\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(\S.*)$")


def map_contributions(map_file: Path) -> list[tuple[str, str, int, str]]:
    """(output section, object file, bytes, input section) for every input section the linker placed."""
    lines = map_file.read_text(errors="replace").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Linker script and memory map"))
    except StopIteration:
        return []
    output, pending, rows = "", None, []
    for line in lines[start + 1 :]:
        if line.startswith("Cross Reference Table"):
            break
        if line and not line.startswith(" "):
            match = _OUTPUT.match(line)
            output = match[1] if match else ""
            pending = None
            continue
        if pending is not None:
            match = _CONTINUED.match(line)
            if match:
                rows.append((output, match[3].strip(), int(match[2], 16), pending))
            pending = None
            continue
        match = _INPUT.match(line)
        if not match:
            continue
        if match[1]:
            pending = match[1]
        else:
            rows.append((output, match[5].strip(), int(match[4], 16), match[2]))
    return [row for row in rows if row[2] and row[0]]
