"""Which passing artifact to recommend: the rules' preference, with ties a person would agree with.

The preference order is the rules' (`prefer: size` looks at size, then latency, then
accuracy; rules.TIE_BREAK). At each figure the best artifact is kept with every artifact it
cannot be told apart from, and the next figure decides among those:

* sizes within `size_tolerance_percent` of each other (default 5 %) are as small: a few
  percent of a file is alignment, metadata and graph layout, not compression;
* latencies within `latency_tolerance` times the board's timing noise (default 3; the noise
  is measured per board, decision.timing) are as fast, and so are latencies whose interval
  of their ratio holds 1; without timing rounds, overlapping 95% intervals of the medians;
* firmwares on an emulated board count instructions, exact but no time: counts within
  INSTRUCTIONS_TIE of each other are as fast (a real core's cycles per instruction move by more);
* accuracies McNemar's test cannot tell apart on the same images are as accurate.

So a significant accuracy gain wins among artifacts within the size and latency tolerances,
and the reason says so. Left with several at the end, the best point figure of the preferred
kind decides -- except latency, whose point estimate is noise among artifacts that tied on it:
there the smaller file (exact, repeatable) decides.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from edgecompress.decision import statistics as stats
from edgecompress.decision.evidence import Evidence
from edgecompress.decision.rules import TIE_BREAK
from edgecompress.decision.timing import rounds_ratio
from edgecompress.profiles import Acceptance

Board = dict[tuple[str, str], Evidence]

#: how each preference is named when it decides
SUPERLATIVE = {"size": "smallest", "latency": "fastest", "accuracy": "most accurate"}
TIE_WORDS = {"size": "as small as", "latency": "equally fast as", "accuracy": "as accurate as"}

#: instruction counts of emulated firmware are exact, but within this fraction of each other they are "equally
#: fast": a real core's cycles per instruction move by more than that between two builds of the same kernels
INSTRUCTIONS_TIE = 0.01


#: (criterion, artifact) -> how its figure is quoted, e.g. 'accuracy 93.15 ± 0.17% over 3 seeds'
Quote = Callable[[str, str], str]


def choose(
    passing: list[str], rules: Acceptance, evidence: Board, targets: list[str], *, quote: Quote | None = None
) -> tuple[str, list[str]]:
    """The preferred artifact among `passing`, and the phrases that explain the choice.

    `quote` words an artifact's figure (default: the evidence's own); a tune quotes its trials
    by their mean and standard deviation over seeds.
    """
    show: Quote = quote or (lambda criterion, name: figure(criterion, name, evidence, targets))
    remaining, phrases = list(passing), []
    for position, criterion in enumerate(TIE_BREAK[rules.prefer]):
        best = min(remaining, key=lambda name: (_point(criterion, name, evidence, targets), passing.index(name)))
        tied = [n for n in remaining if n == best or not better(criterion, best, n, evidence, targets, rules)]
        if len(tied) == 1:
            phrases.append(_decided(criterion, position, best, remaining, evidence, targets, rules, show))
            return best, phrases
        others = ", ".join(name for name in tied if name != best)
        why = _tie_why(criterion, tied, evidence, targets, rules, show)
        phrases.append(f"{best} is {TIE_WORDS[criterion]} {others} ({why})")
        remaining = tied
    first = TIE_BREAK[rules.prefer][0]
    final = "size" if first == "latency" else first  # a latency point estimate among ties is noise; bytes are not
    winner = min(remaining, key=lambda name: (_point(final, name, evidence, targets), passing.index(name)))
    phrases.append(f"indistinguishable on every figure; {winner} has the best {final} figure")
    return winner, phrases


def _decided(
    criterion: str,
    position: int,
    best: str,
    among: list[str],
    evidence: Board,
    targets: list[str],
    rules: Acceptance,
    show: Quote,
) -> str:
    scope = "passing artifact" if position == 0 else "of them"
    phrase = f"the {SUPERLATIVE[criterion]} {scope} ({show(criterion, best)})"
    if criterion != "accuracy" or position == 0:
        return phrase
    runner_up = min((n for n in among if n != best), key=lambda n: _point("accuracy", n, evidence, targets))
    test = _mcnemar(evidence[(best, targets[0])], evidence[(runner_up, targets[0])])
    p = f", McNemar p = {test.p_value:.2g}" if test is not None else ""
    kept = " and ".join(TIE_BREAK[rules.prefer][:position])
    return (
        f"{phrase}: a significant accuracy gain over {runner_up} ({show('accuracy', runner_up)}{p}) "
        f"decided among artifacts within the {kept} tolerances"
    )


def _tie_why(
    criterion: str, tied: list[str], evidence: Board, targets: list[str], rules: Acceptance, show: Quote
) -> str:
    if criterion == "size":
        sizes = " and ".join(show("size", name) for name in tied)
        return f"{sizes}: within the {rules.size_tolerance_percent:g} % size tolerance"
    if criterion == "accuracy":
        return "McNemar's test cannot tell them apart"
    if all(evidence[(name, t)].latency.get("median") is None for name in tied for t in targets):
        return f"their instruction counts are within {INSTRUCTIONS_TIE:.0%} of each other"
    noises = [ev.timing.noise for name in tied for t in targets if (ev := evidence[(name, t)]).timing is not None]
    if noises and all(n is not None for n in noises):
        worst = max(n.percent for n in noises if n is not None)
        return (
            f"their ratio is within {rules.latency_tolerance:g}x the timing noise of ±{worst:.1f} %, "
            "or its 95% interval holds 1"
        )
    return "their 95% intervals of the median overlap"


def _point(criterion: str, name: str, evidence: Board, targets: list[str]) -> float:
    """Lower is better: bytes, the slowest board's median, minus the worst board's accuracy."""
    evs = [evidence[(name, t)] for t in targets]
    if criterion == "size":
        return float(evs[0].size_bytes) if evs[0].size_bytes is not None else math.inf
    if criterion == "latency":
        medians = [ev.latency.get("median") if ev.latency.get("median") is not None else ev.instructions for ev in evs]
        known = [float(m) for m in medians if m is not None]
        return max(known) if len(known) == len(medians) else math.inf
    accuracies = [ev.accuracy for ev in evs]
    measured = [float(a) for a in accuracies if a is not None]
    return -min(measured) if len(measured) == len(accuracies) else math.inf


def better(criterion: str, a: str, b: str, evidence: Board, targets: list[str], rules: Acceptance) -> bool:
    """True when `a` is distinguishably better than `b`: on some board, and worse on none."""
    if criterion == "size":
        return _point("size", a, evidence, targets) < (1 - rules.size_tolerance_percent / 100) * _point(
            "size", b, evidence, targets
        )
    wins = losses = False
    for target in targets:
        ea, eb = evidence[(a, target)], evidence[(b, target)]
        order = latency_order(ea, eb, rules.latency_tolerance) if criterion == "latency" else _accuracy_order(ea, eb)
        wins, losses = wins or order > 0, losses or order < 0
    return wins and not losses


def latency_order(a: Evidence, b: Evidence, tolerance: float) -> int:
    """+1 when a is faster beyond `tolerance` x the timing noise, -1 when slower, 0 when they cannot be told apart."""
    if a.timing is not None and b.timing is not None:
        ratio = rounds_ratio(a.timing, b.timing)
        if ratio is not None:
            noise = max((n.fraction for n in (a.timing.noise, b.timing.noise) if n is not None), default=0.0)
            return stats.latency_order(ratio, noise, tolerance)
    if a.interval is not None and b.interval is not None:
        return 0 if a.interval.overlaps(b.interval) else (1 if a.interval.median < b.interval.median else -1)
    ma, mb = a.latency.get("median"), b.latency.get("median")
    if ma is None and mb is None and a.instructions and b.instructions:  # firmware on an emulated board
        if abs(a.instructions - b.instructions) <= INSTRUCTIONS_TIE * max(a.instructions, b.instructions):
            return 0
        return 1 if a.instructions < b.instructions else -1
    return 0 if ma is None or mb is None or ma == mb else (1 if ma < mb else -1)


def _mcnemar(a: Evidence, b: Evidence) -> stats.PairedAccuracy | None:
    if a.correct is None or b.correct is None or len(a.correct) != len(b.correct):
        return None
    return stats.mcnemar_exact(b.correct, a.correct, alpha=a.paired.alpha if a.paired else stats.ALPHA)


def _accuracy_order(a: Evidence, b: Evidence) -> int:
    """+1 when a is more accurate beyond noise (McNemar on the same images), -1 when less, 0 otherwise."""
    test = _mcnemar(a, b)
    if test is not None:
        if not test.significant:
            return 0
        return 1 if test.only_candidate_right > test.only_reference_right else -1
    if a.accuracy is None or b.accuracy is None or a.accuracy == b.accuracy:
        return 0
    return 1 if a.accuracy > b.accuracy else -1


def comparison(name: str, winner: str, evidence: Board, targets: list[str]) -> str:
    """'65,536 bytes, median 0.041 ms, accuracy 71.35% against cqat's ...': the figures a person compares."""

    def figures(artifact: str) -> str:
        return "; ".join(figure(c, artifact, evidence, targets) for c in ("size", "latency", "accuracy"))

    return f"{figures(name)}; {winner}: {figures(winner)}"


def figure(criterion: str, name: str, evidence: Board, targets: list[str]) -> str:
    ev = evidence[(name, targets[0])]
    if criterion == "size":
        return f"{ev.size_bytes:,} bytes"
    if criterion == "latency":
        shown = [
            f"{evidence[(name, t)].latency.get('median'):.3g} ms"
            for t in targets
            if evidence[(name, t)].latency.get("median") is not None
        ]
        counted = [f"{ev.instructions:,.0f}" for t in targets if (ev := evidence[(name, t)]).instructions]
        if not shown and counted:
            return f"{', '.join(counted)} instructions per inference"
        return "median " + ", ".join(shown)
    return "accuracy " + ", ".join(
        f"{100 * (evidence[(name, t)].accuracy or 0.0):.2f}%"
        for t in targets
        if evidence[(name, t)].accuracy is not None
    )


__all__ = ["better", "choose", "comparison", "figure", "latency_order"]
