"""What a run's report says, in reading order, as a `Document` (no output format here).

The order follows the questions people bring: what to ship and why (the verdict); how much smaller, faster, how much accuracy
lost (at a glance, then the table); where the accuracy went (per class, the very examples);
why the model was compressed that way (significance, plan, weights); and what produced
the numbers (device, runtime, versions). Sections with nothing to show are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecompress.reporting import formatting as fmt
from edgecompress.reporting.document import (
    Bullets,
    Card,
    Cards,
    Cell,
    Column,
    Document,
    Figure,
    Paragraph,
    Section,
    Table,
    cell,
)
from edgecompress.reporting.headline import HEADLINE_COLUMNS, report_title, stand_ins, tone_of
from edgecompress.reporting.micro import micro_section
from edgecompress.reporting.speed import plan_speed_bullets, plan_speed_columns, speed_section
from edgecompress.reporting.timing import timing_section
from edgecompress.reporting.verdict_section import verdict_section

#: Tables longer than this fold away in HTML (every class of CIFAR-100, every layer of a ResNet).
FOLD_ROWS = 20

#: The fine-tuning table's columns, one row per stage.
_TRAINING_COLUMNS = (
    Column("stage"),
    Column("steps", numeric=True),
    Column("budget", numeric=True),
    Column("epochs-equivalent", numeric=True),
    Column("wall time", numeric=True),
    Column("stopped by"),
    Column("best step", numeric=True),
    Column("val accuracy", numeric=True),
)
#: The validation curve's columns, one row per validation check.
_CURVE_COLUMNS = (
    Column("stage"),
    Column("step", numeric=True),
    Column("epochs", numeric=True),
    Column("loss", numeric=True),
    Column("val loss", numeric=True),
    Column("val accuracy", numeric=True),
    Column("elapsed", numeric=True),
)


def build_document(report: dict[str, Any], figures: dict[str, Path], *, run_name: str = "") -> Document:
    sections = [
        verdict_section(report),
        _glance(report),
        _headline(report, figures),
        speed_section(report),
        timing_section(report),
        *_per_class(report, figures),
        _significance(report, figures),
        _plan(report, figures),
        _training(report),
        _weights(report),
        micro_section(report),
        _fleet(report),
        _provenance(report),
    ]
    return Document(
        title=report_title(report),
        subtitle=" · ".join(
            part
            for part in (
                run_name,
                f"created {report.get('created', '?')}",
                f"edgecompress {report.get('edgecompress_version', '?')}",
                f"report schema {report['schema_version']}",
            )
            if part
        ),
        sections=[section for section in sections if section is not None and section.blocks],
    )


def headline_key(row: dict[str, Any], column: str) -> str:
    """The stable key of one headline figure, e.g. 'ptq-int8@local:accuracy'."""
    return f"{row['artifact']}@{row['target']}:{column}"


# ---------------------------------------------------------------------------- at a glance


def _glance(report: dict[str, Any]) -> Section:
    model, data, profile = report["model"], report.get("data") or {}, report["profile"]
    eval_n = next((row.get("eval_n") for row in report["comparison"] if row.get("eval_n")), None)
    facts = [
        f"{Path(model['path']).name}: {fmt.integer(model.get('parameters'))} parameters, input {model.get('input_shape')}, "
        f"{model.get('n_outputs')} outputs ({model.get('output_kind')}).",
        f"Profile {profile['name']}: {profile.get('description', '')}.",
        f"Evaluated on {fmt.integer(eval_n)} images of {data.get('source', '?')} "
        f"({len(data.get('classes') or [])} classes: {', '.join(map(str, (data.get('classes') or [])[:12]))}"
        f"{', ...' if len(data.get('classes') or []) > 12 else ''}).",
    ]
    worst = _worst_classes(report)
    flash = {a["name"]: a.get("flash_bytes") for a in report["artifacts"]}
    cards = []
    for row in report["comparison"]:
        if row["artifact"] == report["baseline"]:
            continue
        firmware = row.get("instructions_median") is not None  # on an emulated board: counts, flash
        detail = [
            f"{fmt.integer(row['instructions_median'])} instructions per inference (about "
            f"{fmt.milliseconds(row.get('estimated_latency_ms'))} ms)"
            if firmware
            else f"median {fmt.milliseconds(row.get('latency_median_ms'))} ms ({fmt.speed(row.get('speedup_x'))})",
            f"accuracy {fmt.percent(row.get('accuracy'))} ({fmt.points(row.get('accuracy_delta_points'))})",
        ]
        hurt = worst.get((row["artifact"], row["target"]))
        if hurt:
            detail.append(f"most hurt class {hurt['name']} ({fmt.points(hurt['recall_change_points'])})")
        cards.append(
            Card(
                title=f"{row['artifact']} on {row['target']}",
                value=f"{fmt.integer(flash.get(row['artifact']))} B of flash"
                if firmware
                else f"{fmt.ratio(row.get('smaller_x_file'))} smaller",
                detail=" · ".join(detail),
                tone=fmt.tone(row.get("accuracy_delta_points")),
                key=headline_key(row, "glance"),
            )
        )
    blocks: list[Any] = [Bullets(facts)]
    if cards:
        blocks.append(Cards(cards))
    else:
        blocks.append(Paragraph("Only the baseline was measured: nothing to compare it with.", lead="Note:"))
    return Section("At a glance", blocks, id="glance")


def _worst_classes(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (name, block["target"]): summary["hurt_most"][0]
        for block in report.get("per_class") or []
        for name, summary in block["compressed"].items()
        if summary.get("hurt_most")
    }


# ---------------------------------------------------------------------------- headline


def _headline(report: dict[str, Any], figures: dict[str, Path]) -> Section:
    single_target = len({row["target"] for row in report["comparison"]}) == 1  # then named in "Measured on"
    present = [
        c
        for c in HEADLINE_COLUMNS
        if any(row.get(c.key) is not None for row in report["comparison"]) and not (single_target and c.key == "target")
    ]
    table = Table(
        columns=[Column(c.title, numeric=c.numeric, help=c.help) for c in present],
        rows=[
            [
                cell(row.get(c.key), c.format, key=headline_key(row, c.key), tone=tone_of(c, row.get(c.key)))
                for c in present
            ]
            for row in report["comparison"]
        ],
        caption=f"Baseline: {report['baseline']}. Ratios and Δ are against the baseline on the same target.",
        id="headline",
    )
    blocks: list[Any] = [table, Bullets(_measured_on(report))]
    definitions = report.get("size_definitions")
    if definitions:
        titles = {column.key: column.title for column in HEADLINE_COLUMNS}
        blocks.append(Bullets([f"{titles.get(key, key)}: {text}" for key, text in definitions.items()]))
    for key, caption in (
        ("size_accuracy", "Accuracy against size: filled dots are the files, hollow ones the bit-packed weights."),
        ("latency", "Every timed inference (dots) and their quartiles (boxes)."),
    ):
        if key in figures:
            blocks.append(Figure(figures[key], caption, alt=caption))
    return Section("Size, speed and accuracy", blocks, id="headline-section")


def _measured_on(report: dict[str, Any]) -> list[str]:
    """One line per target: the device, runtime(s), threads and run counts behind the numbers."""
    lines = []
    standing = {entry.target: entry for entry in stand_ins(report)}
    for target in dict.fromkeys(row["target"] for row in report["comparison"]):
        rows = [row for row in report["comparison"] if row["target"] == target]
        first = rows[0]
        runtimes = ", ".join(dict.fromkeys(fmt.text(row.get("runtime")) for row in rows))
        threads = ", ".join(dict.fromkeys(fmt.integer(row.get("threads")) for row in rows))
        lines.append(
            f"Measured on {target}: {fmt.text(first.get('device'))}; runtime {runtimes}; {threads} thread(s); "
            f"{fmt.integer(first.get('warmup'))} warm-up + {fmt.integer(first.get('runs'))} timed batch-1 runs per artifact; "
            f"accuracy on {fmt.integer(first.get('eval_n'))} evaluation images."
            + (f" {standing[target].words[0].upper()}{standing[target].words[1:]}." if target in standing else "")
        )
    return lines


# ---------------------------------------------------------------------------- per class


def _per_class(report: dict[str, Any], figures: dict[str, Path]) -> list[Section]:
    sections = []
    for block in report.get("per_class") or []:
        if not block["compressed"]:
            continue
        target, baseline = block["target"], block["baseline"]
        blocks: list[Any] = [Bullets([_impact_line(name, summary) for name, summary in block["compressed"].items()])]
        if f"per_class:{target}" in figures:
            caption = f"Recall change per class against {baseline} (points); bars below zero are classes the compression hurt."
            blocks.append(Figure(figures[f"per_class:{target}"], caption, alt=caption))
        blocks.append(_class_table(block))
        blocks.extend(_disagreement_blocks(block, figures))
        sections.append(Section(f"Per-class impact on {target}", blocks, id=f"per-class-{target}"))
    return sections


def _impact_line(name: str, summary: dict[str, Any]) -> str:
    hurt = ", ".join(
        f"{row['name']} ({fmt.percent(row['baseline_recall'])} → {fmt.percent(row['recall'])}, {fmt.points(row['recall_change_points'])})"
        for row in summary["hurt_most"]
    )
    counts = (
        f"{fmt.count(summary['classes_worse'], 'class', 'classes')} worse, {summary['classes_better']} better, "
        f"{summary['classes_unchanged']} unchanged"
    )
    return f"{name}: {counts}." + (f" Hurt most: {hurt}." if hurt else " No class lost recall.")


def _class_table(block: dict[str, Any]) -> Table:
    baseline, compressed = block["baseline"], list(block["compressed"])
    columns = [
        Column("class"),
        Column("n", numeric=True),
        Column(f"{baseline} recall", numeric=True, help="per-class accuracy"),
        Column(f"{baseline} precision", numeric=True),
    ]
    for name in compressed:
        columns += [
            Column(f"{name} recall", numeric=True),
            Column("Δ recall", numeric=True),
            Column(f"{name} precision", numeric=True),
        ]
    rows = []
    for row in block["classes"]:
        cells = [
            Cell(str(row["name"])),
            cell(row["n"], fmt.integer),
            cell(row["recall"][baseline], fmt.percent),
            cell(row["precision"][baseline], fmt.percent),
        ]
        for name in compressed:
            change = row["recall_change_points"][name]
            cells += [
                cell(row["recall"][name], fmt.percent),
                cell(change, fmt.points, tone=fmt.tone(change)),
                cell(row["precision"][name], fmt.percent),
            ]
        rows.append(cells)
    return Table(
        columns,
        rows,
        caption="Recall is the share of a class's examples predicted as that class (per-class accuracy).",
        id=f"classes-{block['target']}",
        collapsed=len(rows) > FOLD_ROWS,
    )


def _disagreement_blocks(block: dict[str, Any], figures: dict[str, Path]) -> list[Any]:
    blocks: list[Any] = []
    for name, summary in block["compressed"].items():
        found = summary.get("disagreements")
        if found is None:
            blocks.append(
                Paragraph(
                    f"{name} vs {block['baseline']}: not available, the measurements carry no per-sample predictions "
                    "(measured by a runner older than this report).",
                    lead="Disagreements:",
                )
            )
            continue
        by_class = ", ".join(
            f"{label} ({count})" for label, count in sorted(found["by_class"].items(), key=lambda kv: -kv[1])[:8]
        )
        blocks.append(
            Paragraph(
                f"{name} and {block['baseline']} disagree on {found['count']} of {found['n']} examples ({fmt.percent(found['rate'])}): "
                f"{found['baseline_right_compressed_wrong']} newly wrong, {found['baseline_wrong_compressed_right']} newly right, "
                f"{found['both_wrong']} wrong in both but differently."
                + (f" By true class: {by_class}." if by_class else ""),
                lead="Disagreements:",
            )
        )
        key = f"disagreements:{name}@{block['target']}"
        if key in figures:
            caption = f"Examples where {name} and {block['baseline']} disagree (first {len(found['examples'])}, newly wrong first)."
            blocks.append(Figure(figures[key], caption, alt=caption))
    return blocks


# ---------------------------------------------------------------------------- why this compression


def _significance(report: dict[str, Any], figures: dict[str, Path]) -> Section | None:
    significance = report.get("significance")
    if not significance:
        return None
    blocks: list[Any] = [
        Paragraph(
            f"{significance.get('method', '?')} on {fmt.integer(significance.get('n_samples'))} samples, threshold delta = "
            f"{significance.get('delta')}: a layer is significant when |ΔID| exceeds it; first and last layers are kept "
            "at higher precision whatever their change."
        )
    ]
    if "id_profile" in figures:
        blocks.append(
            Figure(figures["id_profile"], "Intrinsic-dimension profile with the threshold.", alt="ID profile")
        )
    columns = [
        Column("layer"),
        Column("type"),
        Column("output shape"),
        Column("ID", numeric=True),
        Column("± spread", numeric=True),
        Column("|ΔID|", numeric=True),
        Column("significant"),
        Column("kept high precision"),
        Column("robust"),
    ]
    rows = [
        [
            Cell(str(layer.get("name"))),
            Cell(fmt.text(layer.get("class_name"))),
            Cell(fmt.text(layer.get("output_shape"))),
            cell(layer.get("id"), fmt.number),
            cell(layer.get("id_std"), fmt.number),
            cell(layer.get("delta_id"), fmt.number),
            cell(layer.get("significant"), fmt.yes_no),
            cell(layer.get("kept_high_precision"), fmt.yes_no),
            cell(layer.get("robust"), fmt.yes_no),
        ]
        for layer in significance.get("layers", [])
    ]
    blocks.append(Table(columns, rows, id="significance", collapsed=len(rows) > FOLD_ROWS))
    return Section("Layer significance", blocks, id="significance-section")


def _plan(report: dict[str, Any], figures: dict[str, Path]) -> Section | None:
    plan = report.get("plan")
    if not plan:
        return None
    fits = plan.get("fits")
    blocks: list[Any] = [
        Bullets(
            [
                f"Strategy {plan.get('strategy')}: {plan.get('description', '')}",
                f"Export {plan.get('export_mode')} (input/output {plan.get('io_dtype')})"
                + (f"; kept in float32: {', '.join(plan['float_layers'])}" if plan.get("float_layers") else ""),
                f"Estimated {fmt.human_bytes(plan.get('estimated_bytes'))} bit-packed"
                + (
                    ""
                    if plan.get("budget_bytes") is None
                    else f" against a budget of {fmt.human_bytes(plan['budget_bytes'])} ({plan.get('budget_field')}): {'fits' if fits else 'does not fit'}"
                ),
                *plan_speed_bullets(plan),
                *[f"Note: {note}" for note in plan.get("notes") or []],
            ]
        )
    ]
    if "plan" in figures:
        blocks.append(
            Figure(
                figures["plan"],
                "Planned size per layer (colour: recipe) against its float32 weights (grey).",
                alt="compression plan per layer",
            )
        )
    speed_columns, speed_cells = plan_speed_columns(plan)
    columns = [
        Column("layer"),
        Column("type"),
        Column("role"),
        Column("parameters", numeric=True),
        *speed_columns,
        Column("recipe"),
        Column("setting"),
        Column("estimated", numeric=True),
        Column("note"),
    ]
    rows = [
        [
            Cell(str(layer.get("name"))),
            Cell(fmt.text(layer.get("layer_class"))),
            Cell(fmt.text(layer.get("role"))),
            cell(layer.get("parameters"), fmt.integer),
            *speed_cells(layer),
            Cell(fmt.text(layer.get("recipe"))),
            Cell(fmt.text(layer.get("setting"))),
            cell(layer.get("estimated_bytes"), fmt.human_bytes),
            Cell(fmt.text(layer.get("note"))),
        ]
        for layer in plan.get("layers", [])
    ]
    blocks.append(Table(columns, rows, id="plan", collapsed=len(rows) > FOLD_ROWS))
    return Section("Compression plan", blocks, id="plan-section")


def _training(report: dict[str, Any]) -> Section | None:
    """What fine-tuning did: steps against the budget, epochs-equivalent, time, why it stopped, the curve."""
    training = report.get("training") or {}
    stages = training.get("stages") or []
    if not stages:
        return None
    blocks: list[Any] = [_stages_table(stages, (training.get("device") or {}).get("description"))]
    curve = _curve_table(stages)
    if curve is not None:
        blocks.append(curve)
    return Section("Fine-tuning", blocks, id="training-section")


def _stages_table(stages: list[dict[str, Any]], device: str | None) -> Table:
    """One row per fine-tuning stage: how far it got against its budget and why it stopped."""
    rows = [
        [
            Cell(fmt.text(stage.get("stage"))),
            cell(stage.get("steps"), fmt.integer),
            cell(stage.get("budget_steps"), fmt.integer),
            cell(stage.get("epochs_equivalent"), fmt.number),
            cell(stage.get("wall_seconds"), _seconds),
            Cell(fmt.text(stage.get("stopped_by"))),
            cell(stage.get("best_step"), fmt.integer),
            cell(stage.get("val_accuracy"), fmt.percent),
        ]
        for stage in stages
    ]
    return Table(
        list(_TRAINING_COLUMNS),
        rows,
        caption="Fine-tuning per stage"
        + (f", on {device}" if device else "")
        + "; the model keeps the weights of the best validation check.",
        id="training",
    )


def _curve_table(stages: list[dict[str, Any]]) -> Table | None:
    """Every validation check of every stage, folded when long; None when no stage kept a curve."""
    rows = [
        [
            Cell(fmt.text(stage.get("stage"))),
            cell(point.get("step"), fmt.integer),
            cell(point.get("epochs_equivalent"), fmt.number),
            cell(point.get("loss"), fmt.number),
            cell(point.get("val_loss"), fmt.number),
            cell(point.get("val_accuracy"), fmt.percent),
            cell(point.get("elapsed_s"), _seconds),
        ]
        for stage in stages
        for point in stage.get("curve") or []
    ]
    if not rows:
        return None
    return Table(
        list(_CURVE_COLUMNS),
        rows,
        caption="Validation curve.",
        id="training-curve",
        collapsed=len(rows) > FOLD_ROWS,
    )


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} s"


def _weights(report: dict[str, Any]) -> Section | None:
    blocks: list[Any] = []
    columns = [
        Column("tensor"),
        Column("layer"),
        Column("op"),
        Column("dtype"),
        Column("weights", numeric=True),
        Column("unique values", numeric=True),
        Column("max unique / channel", numeric=True),
        Column("bits / weight", numeric=True),
        Column("codebook"),
    ]
    for artifact in report["artifacts"]:
        if not artifact.get("weights"):
            continue
        rows = [
            [
                Cell(fmt.text(row.get("name"))),
                Cell(fmt.text(row.get("layer"))),
                Cell(fmt.text(row.get("op"))),
                Cell(fmt.text(row.get("dtype"))),
                cell(row.get("n_weights"), fmt.integer),
                cell(row.get("unique_values"), fmt.integer),
                cell(row.get("max_unique_per_channel"), fmt.integer),
                cell(row.get("bits_per_weight"), fmt.integer),
                Cell(fmt.text(row.get("codebook"))),
            ]
            for row in artifact["weights"]
        ]
        blocks.append(
            Table(
                columns,
                rows,
                caption=f"{artifact['name']}: weights read back from {artifact['path']}",
                id=f"weights-{artifact['name']}",
                collapsed=True,
            )
        )
    return Section("Weights per layer", blocks, id="weights-section") if blocks else None


def _fleet(report: dict[str, Any]) -> Section | None:
    spread = report.get("fleet_spread") or {}
    if not spread:
        return None
    columns = [
        Column("artifact"),
        Column("targets"),
        Column("median ms: min", numeric=True),
        Column("median", numeric=True),
        Column("max", numeric=True),
        Column("accuracy: min", numeric=True),
        Column("max", numeric=True),
    ]
    rows = []
    for name, entry in spread.items():
        latency, accuracy = entry.get("latency_median_ms") or {}, entry.get("accuracy") or {}
        rows.append(
            [
                Cell(name),
                Cell(", ".join(entry["targets"])),
                cell(latency.get("min"), fmt.milliseconds),
                cell(latency.get("median"), fmt.milliseconds),
                cell(latency.get("max"), fmt.milliseconds),
                cell(accuracy.get("min"), fmt.percent),
                cell(accuracy.get("max"), fmt.percent),
            ]
        )
    return Section(
        "Across the fleet",
        [Table(columns, rows, caption="How much the boards disagree, per artifact.", id="fleet")],
        id="fleet-section",
    )


# ---------------------------------------------------------------------------- provenance


def _provenance(report: dict[str, Any]) -> Section:
    model, data, host = report["model"], report.get("data") or {}, report.get("host") or {}
    packages = ", ".join(f"{name} {version}" for name, version in (host.get("packages") or {}).items() if version)
    request = report.get("request") or {}
    items = [
        f"Model: {model['path']} (sha256 {str(model.get('sha256', '?'))[:16]}…)",
        f"Data: {data.get('source', '?')}, scaling {data.get('scaling', '?')}, split {data.get('split', '?')}"
        + "".join(f"; {note}" for note in data.get("notes") or []),
        f"Settings: seed {request.get('seed')}, warm-up {request.get('warmup')}, runs {request.get('runs')}, "
        f"max eval {request.get('max_eval') or 'all'}, threads {request.get('threads') or 'runtime default'}",
        f"Host: Python {host.get('python', '?')} on {host.get('machine', '?')} {host.get('system', '')}; {packages}",
        f"Command: {' '.join(map(str, report.get('command') or [])) or '?'}",
        *(
            [
                (
                    "Wall time: "
                    + ", ".join(f"{phase} {_seconds(seconds)}" for phase, seconds in report["timings_s"].items())
                )
            ]
            if report.get("timings_s")
            else []
        ),
        *[
            f"Artifact {a['name']}: {a.get('description', '')}, {a.get('format')}, sha256 {str(a.get('sha256', '?'))[:16]}…"
            for a in report["artifacts"]
        ],
    ]
    blocks: list[Any] = [Bullets(items)]
    if report.get("report_notes"):
        blocks.append(Bullets([f"Left out: {note}" for note in report["report_notes"]]))
    return Section("How these numbers were produced", blocks, id="provenance")
