"""Where compression costs accuracy: per class, and on which very examples.

An overall accuracy that moves by 0.1 point can hide a class that lost ten (Hooker et al.,
"What do compressed deep neural networks forget?", 2019), so every compressed artifact is
compared with the baseline measured on the same target, class by class, and example by
example: the samples on which the two disagree are the ones worth looking at.

Per-class recall is what the runner calls per-class accuracy (correct / samples of that
class); precision comes from the confusion matrix's columns.

A class is *impacted* (the sigma rule) when its recall moves, either way, by more than the
standard deviation of the baseline's per-class recalls: a move larger than the ordinary
spread between classes is not the model's usual unevenness. With several seeds the
decision package replaces the rule by Welch's t-test over seeds (decision.statistics).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Classes listed as "hurt most" per artifact.
HURT_MOST = 5
#: Disagreeing examples drawn in the image grid (and listed in report.json).
GRID_EXAMPLES = 16
#: Disagreeing sample indices kept in report.json; the full list is in the measurement files.
MAX_INDICES = 1000

#: Disagreement kinds, in the order examples are chosen for the grid: the ones the
#: compressed model newly gets wrong come first, as they are the cost of compression.
DISAGREEMENT_KINDS = ("baseline_right_compressed_wrong", "baseline_wrong_compressed_right", "both_wrong")


def class_metrics(accuracy: dict[str, Any]) -> list[dict[str, Any]]:
    """[{index, name, n, correct, recall, precision}] from one runner accuracy block."""
    confusion = np.asarray(accuracy["confusion"]) if accuracy.get("confusion") else None
    rows = []
    for key, entry in sorted(accuracy.get("per_class", {}).items(), key=lambda item: int(item[0])):
        index = int(key)
        n, correct = entry.get("n"), entry.get("correct")
        recall = entry.get("accuracy")
        predicted_as = int(confusion[:, index].sum()) if confusion is not None and index < confusion.shape[1] else 0
        precision = None
        if confusion is not None and predicted_as:
            precision = round(float(confusion[index, index]) / predicted_as, 6)
        rows.append(
            {
                "index": index,
                "name": entry.get("name", key),
                "n": n,
                "correct": correct,
                "recall": recall,
                "precision": precision,
            }
        )
    return rows


def per_class_impact(measurements: list[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """One block per target on which the baseline was measured with per-class accuracy."""
    blocks = []
    for target in dict.fromkeys(m["target"] for m in measurements):
        measured = {
            m["artifact"]: class_metrics(m["accuracy"])
            for m in measurements
            if m["target"] == target and (m.get("accuracy") or {}).get("per_class")
        }
        if baseline not in measured:
            continue
        blocks.append(_target_block(target, baseline, measured))
    return blocks


def _target_block(target: str, baseline: str, measured: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    base_rows = measured[baseline]
    compressed = [name for name in measured if name != baseline]
    by_artifact = {name: {row["index"]: row for row in rows} for name, rows in measured.items()}
    classes = []
    for base in base_rows:
        index = base["index"]
        recall = {name: by_artifact[name].get(index, {}).get("recall") for name in measured}
        precision = {name: by_artifact[name].get(index, {}).get("precision") for name in measured}
        classes.append(
            {
                "index": index,
                "name": base["name"],
                "n": base["n"],
                "recall": recall,
                "precision": precision,
                "recall_change_points": {name: _change_points(recall[baseline], recall[name]) for name in compressed},
            }
        )
    sigma = sigma_points([row["recall"][baseline] for row in classes])
    return {
        "target": target,
        "baseline": baseline,
        "artifacts": list(measured),
        "classes": classes,
        "sigma_points": sigma,
        "compressed": {name: _impact_summary(classes, baseline, name, sigma) for name in compressed},
    }


def sigma_points(recalls: Sequence[float | None]) -> float | None:
    """The sigma rule's threshold: population standard deviation of per-class recalls, in points."""
    values = [100 * float(v) for v in recalls if v is not None]
    return round(float(np.std(values)), 4) if len(values) > 1 else None


def impacted_by_sigma(classes: list[dict[str, Any]], name: str, sigma: float | None) -> list[dict[str, Any]]:
    """The classes whose recall moved by more than `sigma` points (either way), largest move first."""
    if sigma is None:
        return []
    moved = [
        (row, row["recall_change_points"][name]) for row in classes if row["recall_change_points"].get(name) is not None
    ]
    return [
        {"index": row["index"], "name": row["name"], "recall_change_points": change}
        for row, change in sorted(moved, key=lambda pair: (-abs(pair[1]), pair[0]["index"]))
        if abs(change) > sigma
    ]


def _change_points(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else round(100 * (after - before), 2)


def _impact_summary(
    classes: list[dict[str, Any]], baseline: str, name: str, sigma: float | None = None
) -> dict[str, Any]:
    changes = [
        (row, row["recall_change_points"][name]) for row in classes if row["recall_change_points"][name] is not None
    ]
    worse = sorted((pair for pair in changes if pair[1] < 0), key=lambda pair: (pair[1], pair[0]["index"]))
    impacted = impacted_by_sigma(classes, name, sigma)
    return {
        "largest_drop_points": -worse[0][1] if worse else 0.0,
        "impacted": {"rule": "sigma", "threshold_points": sigma, "count": len(impacted), "classes": impacted},
        "classes_worse": len(worse),
        "classes_better": sum(1 for _, change in changes if change > 0),
        "classes_unchanged": sum(1 for _, change in changes if change == 0),
        "hurt_most": [
            {
                "index": row["index"],
                "name": row["name"],
                "n": row["n"],
                "baseline_recall": row["recall"][baseline],
                "recall": row["recall"][name],
                "recall_change_points": change,
            }
            for row, change in worse[:HURT_MOST]
        ],
    }


def disagreements(
    y: np.ndarray, baseline_predictions: Sequence[int], predictions: Sequence[int], class_names: Sequence[str]
) -> dict[str, Any]:
    """How often, and on which samples, a compressed artifact and the baseline disagree."""
    y = np.asarray(y, dtype=np.int64)
    base = np.asarray(baseline_predictions, dtype=np.int64)
    compressed = np.asarray(predictions, dtype=np.int64)
    if not (len(y) == len(base) == len(compressed)):
        raise ValueError(f"labels ({len(y)}) and predictions ({len(base)}, {len(compressed)}) differ in length")
    differ = base != compressed
    base_right, compressed_right = base == y, compressed == y
    kinds = {
        "baseline_right_compressed_wrong": differ & base_right & ~compressed_right,
        "baseline_wrong_compressed_right": differ & ~base_right & compressed_right,
        "both_wrong": differ & ~base_right & ~compressed_right,
    }
    indices = np.flatnonzero(differ)
    chosen = [(int(i), kind) for kind in DISAGREEMENT_KINDS for i in np.flatnonzero(kinds[kind])][:GRID_EXAMPLES]

    def name(index: int) -> str:
        return str(class_names[index]) if 0 <= index < len(class_names) else str(index)

    by_class = np.bincount(y[differ], minlength=len(class_names))
    return {
        "n": int(len(y)),
        "count": int(differ.sum()),
        "rate": round(float(differ.mean()), 6) if len(y) else None,
        **{kind: int(mask.sum()) for kind, mask in kinds.items()},
        "by_class": {name(index): int(count) for index, count in enumerate(by_class) if count},
        "indices": [int(i) for i in indices[:MAX_INDICES]],
        "indices_truncated": bool(len(indices) > MAX_INDICES),
        "examples": [
            {
                "index": i,
                "label": name(int(y[i])),
                "baseline": name(int(base[i])),
                "compressed": name(int(compressed[i])),
                "kind": kind,
            }
            for i, kind in chosen
        ],
    }


def as_image(sample: np.ndarray) -> np.ndarray | None:
    """A sample scaled to 0..1 for display (H, W) or (H, W, 3); None when it is not an image.

    Each image is stretched to its own range: eval inputs come scaled for the model (0-1,
    0-255 or -1..1), and what matters here is what the picture shows.
    """
    image = np.asarray(sample, dtype=np.float64)
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = np.moveaxis(image, 0, -1)  # channels-first
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3)):
        return None
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def disagreement_grid(
    x: np.ndarray, examples: list[dict[str, Any]], *, baseline: str, artifact: str, path: Path
) -> Path | None:
    """A small PNG of the disagreeing examples, each titled 'label / baseline -> compressed'.

    Returns None (and writes nothing) when there is nothing to draw or the inputs are not images.
    """
    found = [as_image(x[example["index"]]) for example in examples]
    images = [image for image in found if image is not None]
    if not examples or len(images) < len(found):
        return None
    from edgecompress.reporting.plots import pyplot

    plt = pyplot()
    columns = min(8, len(examples))
    rows = -(-len(examples) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(max(4.8, 1.45 * columns), 1.75 * rows + 0.6), squeeze=False)
    colours = {
        "baseline_right_compressed_wrong": "#b03a2e",
        "baseline_wrong_compressed_right": "#1e8449",
        "both_wrong": "#7f8c8d",
    }
    for axis in axes.flat:
        axis.axis("off")
    for axis, example, image in zip(axes.flat, examples, images):
        axis.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
        axis.set_title(
            f"#{example['index']} true {example['label']}\n{example['baseline']} → {example['compressed']}",
            fontsize=7,
            color=colours[example["kind"]],
        )
    figure.suptitle(
        f"{artifact} vs {baseline}: label, then baseline → compressed prediction\n"
        "red: newly wrong   green: newly right   grey: both wrong",
        fontsize=8,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
