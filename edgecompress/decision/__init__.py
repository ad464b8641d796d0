"""Decide, gate and ship: which artifact to recommend, by measurement and with statistics.

    from edgecompress.decision import decide
    verdict = decide(report, RunFiles(run_dir), acceptance)   # a JSON-ready verdict document

Modules: rules (the Acceptance rules and their command-line overrides), statistics (McNemar,
bootstrap intervals, Welch), evidence (the figures each rule reads, per artifact and target),
verdict (the decision itself), gate (the CI exit).
"""
