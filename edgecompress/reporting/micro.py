"""The report's microcontroller section: what the linked firmware costs and how it ran on the
emulated board, each figure labelled measured or estimated."""

from __future__ import annotations

from typing import Any

from edgecompress.micro.emulated import ROLES
from edgecompress.reporting import formatting as fmt
from edgecompress.reporting.document import Bullets, Cell, Column, Paragraph, Section, Table, cell

_ITEM_NAMES = {
    "model": "model",
    "tflm_runtime": "TFLM runtime",
    "kernels": "kernels",
    "arena": "tensor arena",
    "stack": "stack",
    "harness": "emulator harness",
    "rest": "start-up, application, libc, alignment",
    "total": "total",
}


def micro_section(report: dict[str, Any]) -> Section | None:
    """The microcontroller section, one part per firmware built, or None for a run that built none."""
    firmwares = (report.get("micro") or {}).get("firmwares") or []
    if not firmwares:
        return None
    blocks: list[Any] = []
    for build in firmwares:
        blocks.extend(_firmware_blocks(build, report))
    return Section("Microcontroller firmware", blocks, id="micro-section")


def _firmware_blocks(build: dict[str, Any], report: dict[str, Any]) -> list[Any]:
    """One firmware: what it was built from, its measured cost, how it ran on the emulated board."""
    name = build.get("firmware_artifact", "firmware")
    head = Paragraph(
        f"built from {build.get('source')} ({ROLES.get(str(build.get('role')), build.get('role'))}).", lead=f"{name}:"
    )
    if not build.get("built", True):
        return [head, Paragraph(f"{build.get('reason')}", lead="Not built:")]
    linked = build.get("linked_firmware")
    if linked:
        blocks = [head, *_linked(linked, build, name)]
    else:
        blocks = [head, Paragraph(f"{build.get('whole_firmware', 'not built')}.", lead="Firmware not linked:")]
    for measurement in report.get("measurements", []):
        if measurement.get("instructions") and measurement["artifact"] == name:
            blocks.extend(_emulated(measurement))
    latency = build.get("latency_estimate") or {}
    if latency:
        blocks.append(
            Paragraph(
                f"{fmt.milliseconds(latency.get('milliseconds'))} from {fmt.integer(latency.get('macs'))} "
                f"MACs at {latency.get('cycles_per_mac')} cycles per MAC and {latency.get('clock_mhz')} MHz "
                f"({latency.get('core')}).",
                lead="Estimated (MAC count):",
            )
        )
    return blocks


def _linked(linked: dict[str, Any], micro: dict[str, Any], name: str) -> list[Any]:
    """The linked firmware's measured cost: what was built, flash and RAM per part, arena, stack and build."""
    fits = micro.get("fits") or {}
    over = [] if fits.get("flash", True) and fits.get("ram", True) else [" It does not fit the profile's budgets."]
    return [
        Paragraph(
            f"firmware.elf for {linked['core']['family']} ({linked['kernels']} kernels, {linked['optimization']}, "
            f"{linked['toolchain']}), TFLM {linked['tflm']['revision']}. Flash and RAM are measured from the linked ELF and "
            "its map; the profile's budgets are checked against them." + "".join(over),
            lead="Measured.",
        ),
        _footprint(linked["device"], name),
        Bullets(_linked_facts(linked, micro)),
    ]


def _footprint(device: dict[str, Any], name: str) -> Table:
    """Flash and RAM per part of the firmware (model, runtime, arena, ...), as the linker map itemises them."""
    rows = []
    for key, part in _ITEM_NAMES.items():
        flash, ram = device["flash"].get(key), device["ram"].get(key)
        if flash is None and ram is None:
            continue
        rows.append([Cell(part), cell(flash, fmt.integer), cell(ram, fmt.integer)])
    return Table(
        [Column("part"), Column("flash bytes", numeric=True), Column("RAM bytes", numeric=True)],
        rows,
        caption=f"{name}: whole firmware, itemised from the linker map",
        id=f"micro-footprint-{name}",
    )


def _linked_facts(linked: dict[str, Any], micro: dict[str, Any]) -> list[str]:
    """Where the arena and stack sizes came from (and their margins), and what the build cost."""
    arena = linked["arena"]
    facts = [
        f"Tensor arena: {fmt.integer(arena['size_bytes'])} B shipped ({arena['source']}"
        + (
            f"; {fmt.integer(arena['measured_32bit_bytes'])} B used on the 32-bit core, margin "
            f"{fmt.integer(arena.get('margin_bytes'))} B"
            if arena.get("measured_32bit_bytes")
            else ""
        )
        + f"); the 64-bit host interpreter measured {fmt.integer(micro.get('arena_bytes'))} B "
        f"({fmt.integer(micro.get('arena_with_margin'))} B with its margin)."
    ]
    stack = linked["stack"]
    facts.append(
        f"Stack: {fmt.integer(stack['reserved_bytes'])} B reserved ({stack['source']}"
        + (f"; peak {fmt.integer(stack['peak_bytes'])} B" if stack.get("peak_bytes") else "")
        + ")."
    )
    build = linked["build"]
    facts.append(
        f"Build: {build['compiled_now']} TFLM/CMSIS-NN sources compiled now, {build['from_cache']} from the "
        f"object cache, {build['seconds']:.0f} s."
    )
    return facts


def _emulated(measurement: dict[str, Any]) -> list[Any]:
    instructions = measurement["instructions"]
    per_inference, estimate = instructions["per_inference"], measurement.get("latency_estimate") or {}
    blocks: list[Any] = [
        Paragraph(
            f"{fmt.integer(per_inference['median'])} instructions per inference (median of {per_inference['samples']}; "
            f"{per_inference['unit']}). At {estimate.get('clock_mhz')} MHz and an assumed {estimate.get('cycles_per_instruction')} "
            f"cycles per instruction ({estimate.get('cpi_basis')}) that is about {fmt.milliseconds(estimate.get('milliseconds'))} "
            "(an estimate: QEMU counts instructions, not cycles).",
            lead=f"Measured on {measurement['target']}:",
        )
    ]
    rows = [
        [
            Cell(str(row["index"])),
            Cell(row["op"]),
            cell(row["instructions"], fmt.integer),
            cell(row["share"], fmt.percent),
        ]
        for row in instructions.get("per_op", [])
    ]
    if rows:
        blocks.append(
            Table(
                [Column("#"), Column("operator"), Column("instructions", numeric=True), Column("share", numeric=True)],
                rows,
                caption=f"Instructions per operator on {measurement['target']} (mean per inference)",
                id=f"micro-ops-{measurement['artifact']}-{measurement['target']}",
                collapsed=len(rows) > 20,
            )
        )
    comparison = measurement.get("vs_tflm_python") or {}
    if comparison.get("available"):
        blocks.append(
            Paragraph(
                f"outputs identical on {'all' if comparison['identical_outputs'] else 'not all'} {comparison['samples']} samples "
                f"({comparison['samples_with_any_difference']} differ, by at most {comparison['max_abs_diff_quant_steps']} "
                f"quantization steps); predictions agree on {fmt.percent(comparison['decision_agreement'])}.",
                lead="Firmware vs TFLM Python interpreter:",
            )
        )
    return blocks
