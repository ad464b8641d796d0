"""The tune report: tune-report.json, .md and .html (written by edgecompress/reporting's writers).

It shows the search (Ray, boards, time), the space, the Pareto set as mean +- std over seeds,
the dominated trials and what beats them, the trials that failed or were refused and why, and
ends in the verdict and the ship/ bundle of the recommended trial.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from edgecompress.reporting import html, markdown
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
)
from edgecompress.tune import objectives as objs
from edgecompress.tune import results
from edgecompress.tune.figures import TrialPoint, front, hypervolume_history
from edgecompress.tune.pareto import bounds, hypervolume
from edgecompress.tune.records import COMPLETE, TrialRecord, TuneFolder

REPORT_JSON, REPORT_MD, REPORT_HTML, FIGURES, SHIP = (
    "tune-report.json",
    "tune-report.md",
    "tune-report.html",
    "figures",
    "ship",
)
SCHEMA = "edgecompress.tune-report"


def short(name: str) -> str:
    """'trial-0007' -> 'T7' (figures)."""
    return "T" + str(int(name.split("-")[1])) if name.startswith("trial-") else name


def hypervolume_trace(records: list[TrialRecord], objectives: list[objs.Objective]) -> list[float]:
    """Hypervolume of the front after each measured trial, on the scale of all of them."""
    directions = [o.direction for o in objectives]
    points = [[r.value(o.name) for o in objectives] for r in records]
    if not points:
        return []
    low, high = bounds([points], directions)
    return [round(hypervolume(points[: i + 1], directions, low, high), 6) for i in range(len(points))]


def build(
    folder: TuneFolder,
    tune: dict[str, Any],
    objectives: list[objs.Objective],
    verdict: dict[str, Any],
    space: list[dict[str, Any]],
    engine: dict[str, Any],
    boards: dict[str, Any],
) -> dict[str, Any]:
    """tune-report.json: every trial, the front with its seed statistics, the verdict."""
    measured = results.measured(folder)
    front_names = [r.name for r in results.pareto(folder, objectives)]
    trace = hypervolume_trace(measured, objectives)
    rows = [_trial_row(folder, record, front_names, objectives) for record in folder.searched()]
    builds = [r.build_s for r in measured if r.build_s]
    return {
        "schema": SCHEMA,
        "schema_version": 1,
        "tune": tune,
        "objectives": [{"name": o.name, "direction": o.direction, "unit": o.unit, "help": o.help} for o in objectives],
        "space": space,
        "engine": engine,
        "boards": boards,
        "counts": {
            state: sum(1 for r in folder.searched() if r.state == state)
            for state in ("complete", "failed", "infeasible", "duplicate")
        },
        "pareto": front_names,
        "hypervolume": trace[-1] if trace else None,
        "hypervolume_trace": trace,
        "mean_build_s": round(sum(builds) / len(builds), 2) if builds else None,
        "trials": rows,
        "verdict": verdict,
    }


def _trial_row(
    folder: TuneFolder, record: TrialRecord, front_names: list[str], objectives: list[objs.Objective]
) -> dict[str, Any]:
    """One trial as the report keeps it; a Pareto trial adds its seeds, a dominated one what beats it."""
    row: dict[str, Any] = {
        "trial": record.name,
        "number": record.number,
        "state": record.state,
        "reason": record.reason,
        "candidate": record.candidate,
        "overrides": record.overrides,
        "artifact": record.artifact,
        "figures": record.figures,
        "passes": record.passes,
        "run_dir": record.run_dir,
        "same_as": record.same_as,
        "pareto": record.name in front_names,
        "workers": record.workers,
        "build_s": record.build_s,
        "measure_s": record.measure_s,
        "queued_s": record.queued_s,
        "measurements_reused": record.measurements_reused,
    }
    if record.name in front_names or folder.reruns_of(record.name):  # the front, and passing trials re-run
        row["over_seeds"] = results.over_seeds(folder, record, objectives)
        row["reruns"] = [_rerun_row(r) for r in folder.reruns_of(record.name)]
    if record.state == COMPLETE and record.name not in front_names:
        row["dominated_by"] = _dominated_by(record, [folder.records[n] for n in front_names], objectives)
    return row


def _rerun_row(rerun: TrialRecord) -> dict[str, Any]:
    """A seed re-run of a Pareto trial: enough to find its run folder and see how it fared."""
    return {
        "trial": rerun.name,
        "seed": rerun.seed,
        "state": rerun.state,
        "reason": rerun.reason,
        "figures": rerun.figures,
        "passes": rerun.passes,
        "run_dir": rerun.run_dir,
    }


def _dominated_by(record: TrialRecord, front_records: list[TrialRecord], objectives: list[objs.Objective]) -> list[str]:
    """The Pareto trials at least as good on every objective and better on one (equal ones do not dominate)."""

    def losses(r: TrialRecord) -> list[float]:
        return [-r.value(o.name) if o.direction == "maximize" else r.value(o.name) for o in objectives]

    mine = losses(record)
    return [
        p.name
        for p in front_records
        if all(a <= b for a, b in zip(losses(p), mine)) and any(a < b for a, b in zip(losses(p), mine))
    ]


def write(folder: TuneFolder, document: dict[str, Any], objectives: list[objs.Objective]) -> dict[str, Path]:
    """tune-report.json, figures/, tune-report.md and .html; ship/ copied from the recommended trial."""
    folder.write_json(REPORT_JSON, document)
    figures = _figures(folder, document, objectives)
    rendered = _document(document, figures, objectives)
    md, page = folder.path / REPORT_MD, folder.path / REPORT_HTML
    md.write_text(markdown.render(rendered, base=folder.path), encoding="utf-8")
    page.write_text(html.render(rendered), encoding="utf-8")
    ship = folder.path / SHIP
    shutil.rmtree(ship, ignore_errors=True)
    run_dir = document["verdict"].get("run_dir")
    if run_dir and (Path(run_dir) / SHIP).is_dir():
        shutil.copytree(Path(run_dir) / SHIP, ship)
    return {"json": folder.path / REPORT_JSON, "markdown": md, "html": page, **figures}


def _points(document: dict[str, Any], x: str) -> list[TrialPoint]:
    points = []
    for row in document["trials"]:
        if row["state"] != COMPLETE or row["figures"].get(x) is None or row["figures"].get("accuracy") is None:
            continue
        seeds = row.get("over_seeds") or {}
        mean_x = (seeds.get(x) or {}).get("mean", row["figures"][x])
        mean_y = (seeds.get("accuracy") or {}).get("mean", row["figures"]["accuracy"])
        points.append(
            TrialPoint(
                short(row["trial"]),
                float(mean_x),
                float(mean_y),
                float((seeds.get(x) or {}).get("std", 0.0)),
                float((seeds.get("accuracy") or {}).get("std", 0.0)),
                row["pareto"],
                bool(row["passes"]),
            )
        )
    return points


def _figures(folder: TuneFolder, document: dict[str, Any], objectives: list[objs.Objective]) -> dict[str, Path]:
    out = folder.path / FIGURES
    found: dict[str, Path] = {}
    title = f"{Path(document['tune']['deploy']['model']).name} for {document['tune']['deploy']['profile']}"
    for name, objective in objs.OBJECTIVES.items():
        if name == "accuracy" or name not in ("size", "latency") and name not in [o.name for o in objectives]:
            continue
        scale = 1024 if objective.unit == "bytes" else 1
        points = [
            TrialPoint(p.label, p.x / scale, p.y, p.x_std / scale, p.y_std, p.pareto, p.passes)
            for p in _points(document, name)
        ]
        label = objective.label.replace("(bytes)", "(KiB)") if scale > 1 else objective.label
        drawn = front(
            points,
            out / f"front-accuracy-{name}.png",
            x_label=label,
            x_direction=objective.direction,
            title=f"{title}: accuracy against {name}",
            log_x=objective.unit == "bytes",
        )
        if drawn is not None:
            found[f"front_{name}"] = drawn
    drawn = hypervolume_history(
        document["hypervolume_trace"], out / "hypervolume.png", title=f"{title}: hypervolume of the front"
    )
    if drawn is not None:
        found["hypervolume"] = drawn
    return found


def _fmt(value: Any, objective: objs.Objective | None = None, std: float | None = None) -> str:
    if value is None:
        return "—"
    unit = objective.unit if objective else ""
    if unit == "bytes":
        text = f"{value:,.0f}"
        return text + (f" ± {std:,.0f}" if std else "") + " B"
    if unit == "%":
        return f"{value:.2f}" + (f" ± {std:.2f}" if std else "") + "%"
    if unit == "ms":
        return f"{value:.3g}" + (f" ± {std:.2g}" if std else "") + " ms"
    return str(value)


def _knobs(candidate: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in candidate.items())


def _document(doc: dict[str, Any], figures: dict[str, Path], objectives: list[objs.Objective]) -> Document:
    tune, verdict = doc["tune"], doc["verdict"]
    counts = doc["counts"]
    title = f"Tune of {Path(tune['deploy']['model']).name} for {tune['deploy']['profile']}"
    sections = [_glance(doc, verdict, counts)]
    pareto_rows = [row for row in doc["trials"] if row["pareto"]]
    columns = [Column("trial"), Column("candidate")] + [
        Column(f"{o.name} (mean ± std)", numeric=True, help=o.help) for o in objectives
    ]
    columns += [Column("seeds", numeric=True), Column("passes the rules")]
    table_rows = []
    for row in pareto_rows:
        seeds = row.get("over_seeds") or {}
        cells = [Cell(row["trial"]), Cell(_knobs(row["candidate"]))]
        for o in objectives:
            stat = seeds.get(o.name) or {}
            cells.append(
                Cell(
                    _fmt(stat.get("mean", row["figures"].get(o.name)), o, stat.get("std")),
                    stat.get("mean"),
                    key=f"{row['trial']}:{o.name}",
                )
            )
        passing = seeds.get("passes") or {"n": 1, "passing": int(bool(row["passes"]))}
        cells += [
            Cell(str(max(1, passing["n"])), passing["n"]),
            Cell(f"{passing['passing']} of {passing['n']} seeds", passing["passing"]),
        ]
        table_rows.append(cells)
    blocks: list[Any] = [
        Paragraph(
            f"{len(pareto_rows)} of {counts['complete']} measured trials are on the Pareto front of {', '.join(o.name for o in objectives)}: "
            f"no other trial is at least as good on every objective and better on one. Each was re-run with other seeds "
            f"(up to {tune['seeds']} in all); figures are the mean ± standard deviation over the seeds that finished."
        )
    ]
    blocks.append(Table(columns, table_rows, caption="Pareto set", id="pareto"))
    for key in ("front_size", "front_latency", "front_memory", "front_gzip"):
        if key in figures:
            blocks.append(
                Figure(
                    figures[key],
                    caption="Every measured trial: Pareto trials in colour with ±1 std over seeds, "
                    "others grey; hollow markers fail an acceptance rule.",
                    alt=key.replace("_", " "),
                )
            )
    sections.append(Section("Pareto front", blocks, id="pareto-section"))
    sections.append(_dominated(doc, objectives))
    sections.append(_others(doc))
    sections.append(_search(doc, figures))
    sections.append(_verdict(verdict))
    return Document(title, f"{counts['complete']} trials measured, {tune['seeds']} seeds for the Pareto set", sections)


def _glance(doc: dict[str, Any], verdict: dict[str, Any], counts: dict[str, int]) -> Section:
    cards = [
        Card(
            "recommended",
            verdict.get("recommended_trial") or "none",
            verdict.get("artifact") or "no trial passes the rules",
            "good" if verdict.get("passed") else "bad",
            "recommended",
        ),
        Card(
            "measured trials",
            str(counts["complete"]),
            f"{counts['failed']} failed, {counts['infeasible']} refused before "
            f"training, {counts['duplicate']} duplicate plans",
        ),
        Card(
            "Pareto trials",
            str(len(doc["pareto"])),
            f"hypervolume {doc['hypervolume']:.3f}" if doc["hypervolume"] is not None else "",
        ),
    ]
    return Section("At a glance", [Cards(cards), Paragraph(verdict.get("reason", ""), lead="Verdict:")], id="glance")


def _dominated(doc: dict[str, Any], objectives: list[objs.Objective]) -> Section:
    columns = (
        [Column("trial"), Column("candidate")]
        + [Column(o.name, numeric=True) for o in objectives]
        + [Column("dominated by")]
    )
    rows = [
        [Cell(r["trial"]), Cell(_knobs(r["candidate"]))]
        + [Cell(_fmt(r["figures"].get(o.name), o), r["figures"].get(o.name)) for o in objectives]
        + [Cell(", ".join(r.get("dominated_by") or []) or "—")]
        for r in doc["trials"]
        if r["state"] == COMPLETE and not r["pareto"]
    ]
    blocks: list[Any] = (
        [Table(columns, rows, caption="Dominated trials", id="dominated")]
        if rows
        else [Paragraph("Every measured trial is on the front.")]
    )
    return Section("Dominated trials", blocks, id="dominated-section")


def _others(doc: dict[str, Any]) -> Section:
    rows = [
        [Cell(r["trial"]), Cell(r["state"]), Cell(_knobs(r["candidate"])), Cell(r["reason"])]
        for r in doc["trials"]
        if r["state"] != COMPLETE
    ]
    columns = [Column("trial"), Column("state"), Column("candidate"), Column("why")]
    blocks: list[Any] = [
        Paragraph(
            "Refused trials were stopped before any training (the profile schema or the budget refused "
            "the candidate); duplicates build the same model as an earlier trial and take its figures; "
            "failed trials are kept with their run folder and deploy.log."
        )
    ]
    blocks.append(
        Table(columns, rows, caption="Trials not measured", id="others")
        if rows
        else Paragraph("None: every trial was measured.")
    )
    return Section("Failed, refused and duplicate trials", blocks, id="others-section")


def _search(doc: dict[str, Any], figures: dict[str, Path]) -> Section:
    tune, engine = doc["tune"], doc["engine"]
    items = [
        f"Ray: {engine.get('address')} ({engine.get('nodes')} node(s), {engine.get('cpus')} CPUs), {engine.get('parallel')} trial(s) "
        f"building at once, {tune['cpus_per_trial']:g} CPU per trial"
        + (f" and {tune['gpus_per_trial']:g} GPU" if tune.get("gpus_per_trial") else "")
        + f" (fine-tuning: --device {(tune.get('deploy') or {}).get('device', 'auto')}); workers used: {', '.join(engine.get('workers') or []) or '—'}",
        f"searcher: Optuna multi-objective TPE (seed {tune['search_seed']}), "
        + ("started from the TwoNN plan and its neighbours" if tune["prior"] else "random start (no TwoNN prior)"),
        f"budget: {tune['trials']} trials"
        + (f", {tune['time_budget_s']:.0f} s" if tune.get("time_budget_s") else "")
        + f"; searched for {engine.get('searched_s', 0):.0f} s, {engine.get('trials_per_hour') or 0:.1f} measured trials per hour",
        f"mean build time (fine-tune and export in a worker): {doc['mean_build_s'] or 0:.1f} s",
    ]
    for name, use in doc["boards"].items():
        items.append(
            f"board {name}: {use['measurements']} measurements, busy {use['busy_s']:.0f} s, trials waited {use['waited_s']:.0f} s for it"
        )
    items.append(
        "artifacts identical across trials (the baseline, the post-training quantized model) are measured once per board "
        "and their measurement shared by the trials that contain them"
    )
    blocks: list[Any] = [Bullets(items)]
    space_rows = [
        [
            Cell(k["knob"]),
            Cell(k["field"]),
            Cell(", ".join(map(str, k["values"]))),
            Cell(", ".join(k["applies_to"])),
            Cell(k["help"]),
        ]
        for k in doc["space"]
    ]
    blocks.append(
        Table(
            [Column("knob"), Column("profile field"), Column("values"), Column("strategies"), Column("meaning")],
            space_rows,
            caption="Search space",
            id="space",
        )
    )
    if "hypervolume" in figures:
        blocks.append(
            Figure(
                figures["hypervolume"], caption="Hypervolume of the front after each measured trial.", alt="hypervolume"
            )
        )
    return Section("The search", blocks, id="search-section")


def _verdict(verdict: dict[str, Any]) -> Section:
    blocks: list[Any] = [
        Paragraph(verdict.get("reason", ""), lead="Recommended:" if verdict.get("passed") else "No recommendation:")
    ]
    if verdict.get("rules_text"):
        blocks.append(
            Paragraph(
                f"{'; '.join(verdict['rules_text'])} ({verdict.get('rules_source')}; prefer {verdict.get('prefer')}).",
                lead="Rules:",
            )
        )
    if verdict.get("run_reason"):
        blocks.append(Paragraph(verdict["run_reason"], lead="The trial's own verdict:"))
    if verdict.get("passed"):
        blocks.append(
            Paragraph(
                f"ship/ here is the bundle of {verdict['artifact']} from {verdict['recommended_trial']} "
                f"(its run folder: {verdict['run_dir']}). Install it on a board with "
                f"`edgecompress ship {verdict['run_dir']} --target ssh://user@board`.",
                lead="Ship:",
            )
        )
    if verdict.get("next_steps"):
        blocks.append(Bullets(list(verdict["next_steps"])))
    return Section("Verdict", blocks, id="verdict")


__all__ = ["REPORT_HTML", "REPORT_JSON", "REPORT_MD", "SHIP", "build", "hypervolume_trace", "short", "write"]
