"""Does a TFLM build fit the microcontroller profile's RAM and flash budgets, and by how much?

The budgets have one meaning everywhere (profiles.py states it): `flash_budget_bytes` is the flash
the whole TFLite Micro firmware may take (model, interpreter, kernels, start-up and application),
`model_memory_budget_bytes` the RAM it may take (tensor arena, stack and the rest of data/bss);
what the bootloader, RTOS and radio stack need is already left out of both. Before a firmware is
linked they are ESTIMATED the same way:

RAM needed = tensor arena with its safety margin (it already holds the input and output
tensors) + one input-sized staging buffer the application fills from its sensor (the stack and
the runtime's own data, RUNTIME_RAM_BYTES, are added where a whole-device figure is shown: the
dry run).
Flash needed = the compiled model-data object + the kernel code for the ops the resolver
registers (KERNEL_CODE_BYTES_PER_OP each) + the interpreter, start-up code and libc
(RUNTIME_FLASH_BYTES). Once a firmware is linked, `check_firmware` reads the same wholes off its ELF.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from edgecompress.errors import BudgetError

#: Flash per registered kernel, an estimate: TFLM's reference and CMSIS-NN int8 kernels
#: compile to roughly 1-10 KiB each at -Os on Cortex-M (reshape ~0.5 KiB, conv with its
#: CMSIS-NN variants ~10 KiB); 4 KiB is a middle figure.
KERNEL_CODE_BYTES_PER_OP = 4096
#: Flash of a linked firmware beside the model and its kernels: the TFLM interpreter (23.4-23.7 KB)
#: and start-up code, application and libc (18.1-20.5 KB) in every build of benchmarks/results/micro.json;
#: the lower end, so an estimate never refuses what the linker would accept.
RUNTIME_FLASH_BYTES = 40 * 1024
#: RAM of a linked firmware beside the arena: the stack (at least image.STACK_MIN_BYTES, 2 KiB) and the
#: runtime's and application's data (13 B + 539-623 B in benchmarks/results/micro.json).
RUNTIME_RAM_BYTES = 2048 + 512


@dataclass(frozen=True)
class BudgetCheck:
    ram_needed_bytes: int
    ram_budget_bytes: int
    flash_needed_bytes: int
    flash_budget_bytes: int
    ram_breakdown: dict[str, int]
    flash_breakdown: dict[str, int]
    basis: str = (
        f"estimate: model data + {KERNEL_CODE_BYTES_PER_OP} B of kernel code per registered op + "
        f"{RUNTIME_FLASH_BYTES} B of interpreter and start-up code; arena measured by the host TFLM"
    )

    @property
    def ram_fits(self) -> bool:
        return self.ram_needed_bytes <= self.ram_budget_bytes

    @property
    def flash_fits(self) -> bool:
        return self.flash_needed_bytes <= self.flash_budget_bytes

    @property
    def fits(self) -> bool:
        return self.ram_fits and self.flash_fits

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "ram": self.ram_fits,
            "flash": self.flash_fits,
            "margins": {
                "ram_headroom_bytes": self.ram_budget_bytes - self.ram_needed_bytes,
                "flash_headroom_bytes": self.flash_budget_bytes - self.flash_needed_bytes,
                "ram_used_fraction": round(self.ram_needed_bytes / self.ram_budget_bytes, 4),
                "flash_used_fraction": round(self.flash_needed_bytes / self.flash_budget_bytes, 4),
            },
            "basis": self.basis,
        }

    def shortfalls(self) -> list[str]:
        """One sentence per budget that is exceeded, with every figure behind it."""
        lines = []
        if not self.ram_fits:
            lines.append(
                f"RAM: needs {self.ram_needed_bytes:,} B ({_parts(self.ram_breakdown)}) but the budget is "
                f"{self.ram_budget_bytes:,} B, {self.ram_needed_bytes - self.ram_budget_bytes:,} B over"
            )
        if not self.flash_fits:
            lines.append(
                f"flash: needs {self.flash_needed_bytes:,} B ({_parts(self.flash_breakdown)}) but the budget is "
                f"{self.flash_budget_bytes:,} B, {self.flash_needed_bytes - self.flash_budget_bytes:,} B over"
            )
        return lines


def _parts(parts: dict[str, int]) -> str:
    return " + ".join(f"{name} {value:,} B" for name, value in parts.items())


def stored_class_names(class_names: Sequence[str], labelled: bool, output_elements: int) -> list[str]:
    """The names a firmware stores beside its model (firmware/tflm/model_data.cc.in's kClassNames): for labelled
    data one per score (a single sigmoid score has two classes), an index where the data names none; otherwise one
    'output' (the demo prints the largest output's index, and there is no label to check)."""
    if not labelled:
        return ["output"]
    n_classes = max(len(class_names), 2 if output_elements == 1 else output_elements)
    return [class_names[i] if i < len(class_names) else str(i) for i in range(n_classes)]


def model_flash_bytes(tflite_bytes: bytes, class_names: Sequence[str] = ()) -> int:
    """The flash an exported model takes in a TFLM firmware, measured on the file: the .tflite with every
    tensor TFLM's compressor can store as look-up-table indices stored so (micro/compress.py) and what TFLM
    never reads dropped (micro/slim.py), before the firmware build leaves any tensor uncompressed for RAM.

    With `class_names`, what the firmware's model_data.o holds beside the array (firmware/tflm/
    model_data.cc.in): the array padded to its 16-byte alignment, and a pointer and a NUL-ended string per
    class on the 32-bit core -- the figure the linked ELF's map gives the model, to a few bytes."""
    from edgecompress.micro import compress as lut
    from edgecompress.micro.slim import slim

    plan = lut.plan_lut(bytes(tflite_bytes))
    compressed = lut.apply_lut(bytes(tflite_bytes), plan.chosen) if plan.chosen else bytes(tflite_bytes)
    size = len(slim(compressed).model)
    if not class_names:
        return size
    return -(-size // 16) * 16 + sum(4 + len(name.encode("utf-8")) + 1 for name in class_names)


def check_budget(
    profile: Any, *, arena_with_margin: int, input_bytes: int, model_flash_bytes: int, op_count: int
) -> BudgetCheck:
    ram = {"arena incl. margin and I/O tensors": arena_with_margin, "input staging buffer": input_bytes}
    flash = {
        "model data": model_flash_bytes,
        "kernel code (estimate)": op_count * KERNEL_CODE_BYTES_PER_OP,
        "interpreter, start-up and libc (estimate)": RUNTIME_FLASH_BYTES,
    }
    return BudgetCheck(
        ram_needed_bytes=sum(ram.values()),
        ram_budget_bytes=int(profile.model_memory_budget_bytes),
        flash_needed_bytes=sum(flash.values()),
        flash_budget_bytes=int(profile.flash_budget_bytes),
        ram_breakdown=ram,
        flash_breakdown=flash,
    )


def check_firmware(profile: Any, device: Any) -> BudgetCheck:
    """The budgets against the linked firmware: flash and RAM read from its ELF and map (footprint.Footprint).

    The profile's flash budget is the flash the TFLM firmware may take (interpreter, kernels,
    model, application) and its RAM budget the RAM it may take (data, bss with the arena, stack):
    what the bootloader, RTOS and radio stack leave, as each profile's comments say.
    """
    names = {
        "model": "model",
        "tflm_runtime": "TFLM runtime",
        "kernels": "kernels",
        "arena": "tensor arena",
        "stack": "stack",
        "rest": "start-up, application and libc",
    }
    flash = {names[k]: v for k, v in device.flash.items() if k in names and v}
    ram = {names[k]: v for k, v in device.ram.items() if k in names and v}
    return BudgetCheck(
        ram_needed_bytes=device.ram_bytes,
        ram_budget_bytes=int(profile.model_memory_budget_bytes),
        flash_needed_bytes=device.flash_bytes,
        flash_budget_bytes=int(profile.flash_budget_bytes),
        ram_breakdown=ram,
        flash_breakdown=flash,
        basis="measured: flash and RAM of the linked firmware.elf (section headers, itemised from the linker map)",
    )


def refuse(
    profile_name: str, candidates: dict[str, BudgetCheck], biggest: str, notes: Sequence[str] = ()
) -> BudgetError:
    """The error for a model none of whose builds fits, listing each build's figures."""
    details = "; ".join(f"{name}: {', '.join(check.shortfalls())}" for name, check in candidates.items())
    return BudgetError(
        f"The model does not fit {profile_name}. {details}. Largest contributor: {biggest}."
        + "".join(f" {note}" for note in notes),
        "Compress harder (clustering or mixed precision to <= 16 unique weights per layer lets TFLM store 4-bit "
        "indices), shrink the largest layer, or pick a profile with more RAM/flash.",
    )
