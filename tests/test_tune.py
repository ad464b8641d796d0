"""The parts of `edgecompress tune` that need no Ray: the search space as data, candidates checked by the
profile schema, the TwoNN prior, the Pareto front and hypervolume, figures read off a measured report,
the deploy split the trials use (build here, measure there), and the cache shared by parallel trials.
The search itself runs against a real Ray cluster in test_tune_ray.py.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

import edgecompress
from edgecompress.analysis import SignificanceProfile
from edgecompress.cache import StageCache
from edgecompress.decision.checks import RULES
from edgecompress.decision.judging import Judging
from edgecompress.errors import EdgeCompressError, ProfileError
from edgecompress.pipeline.artifacts import BASELINE
from edgecompress.profiles import load_profile, with_overrides
from edgecompress.tune import objectives as objs
from edgecompress.tune import prior, results
from edgecompress.tune.pareto import bounds, front_mask, hypervolume
from edgecompress.tune.records import COMPLETE, FAILED, TrialRecord, TuneFolder
from edgecompress.tune.request import TuneRequest, parse_duration
from edgecompress.tune.search import Search, Ticket
from edgecompress.tune.space import KNOBS, STRATEGY, Space, SpaceFacts, delta_values


def _significance(changes: list[float]) -> SignificanceProfile:
    """A measured-looking profile: input, first layer, middle layers with these |dID|, last layer."""
    from edgecompress.analysis.significance import LayerSignificance

    ids = [30.0]
    for change in [5.0, *changes, 4.0]:
        ids.append(ids[-1] + change)
    layers = [LayerSignificance("input", "InputLayer", (8, 8, 1), ids[0], 0.1, None, False, False, "reference")]
    for index, value in enumerate(ids[1:], start=1):
        edge = index in (1, len(ids) - 1)
        layers.append(
            LayerSignificance(f"layer{index}", "Conv2D", (4,), value, 0.1, abs(value - ids[index - 1]), False, edge, "")
        )
    return SignificanceProfile(layers, "twonn", 20.0, 500, 0, 4, 0.1)


@pytest.fixture(scope="module")
def rpi4_space() -> Space:
    return Space.build(SpaceFacts(load_profile("rpi4"), _significance([2.0, 8.0, 30.0])))


def test_a_candidate_is_overrides_of_the_profiles_compression_block_checked_by_its_schema(rpi4_space: Space) -> None:
    candidate = rpi4_space.candidate(
        {STRATEGY: "cqat", "clusters": 8, "delta": rpi4_space.choices["delta"][1], "first_last": "int8"}
    )
    overrides = candidate.overrides()
    assert overrides == {
        "compression": {
            "strategy": "cqat",
            "clusters": 8,
            "significance_delta": rpi4_space.choices["delta"][1],
            "first_last_precision": "int8",
        }
    }
    changed = with_overrides(load_profile("rpi4"), overrides)
    assert changed.compression.clusters == 8 and changed.compression.strategy == "cqat" and changed.name == "rpi4"

    with pytest.raises(ProfileError) as refused:  # a bad candidate is refused like a bad profile file
        with_overrides(load_profile("rpi4"), {"compression": {"clusters": 1, "ptq": "fp16"}})
    assert "compression.clusters = 1" in refused.value.problem and "fp16" in refused.value.problem


def test_knobs_apply_to_the_strategies_whose_recipes_use_them(rpi4_space: Space) -> None:
    uses = {knob["knob"]: set(knob["applies_to"]) for knob in rpi4_space.describe()}
    assert uses["clusters"] == {"clustering", "cqat", "cqat-binary"}
    assert uses["bits"] == {"mixed-precision"}
    assert uses["delta"] == {
        "cqat",
        "cqat-binary",
        "mixed-precision",
    }  # significant and insignificant layers treated apart
    assert "ptq-only" not in uses["first_last"]  # a post-training model ignores per-layer choices
    candidate = rpi4_space.candidate(
        {
            STRATEGY: "mixed-precision",
            "clusters": 16,
            "bits": 3,
            "delta": rpi4_space.choices["delta"][0],
            "first_last": "int8",
        }
    )
    assert set(candidate.values) == {STRATEGY, "bits", "delta", "first_last"}
    assert rpi4_space.size() == sum(
        int(
            np.prod(
                [len(rpi4_space.choices[k.name]) for k in rpi4_space.knobs if k.name != STRATEGY and k.applies_to(s)]
            )
        )
        for s in rpi4_space.choices[STRATEGY]
    )


def test_the_space_keeps_only_values_the_profile_accepts() -> None:
    coral = load_profile("coral-devboard")  # an int8-only Edge TPU: no float layers at all
    space = Space.build(SpaceFacts(coral, _significance([2.0, 8.0])))
    assert space.choices["first_last"] == ("int8",)
    assert [knob.name for knob in KNOBS][0] == STRATEGY


def test_delta_values_come_from_the_measured_id_changes_one_per_set_of_significant_layers() -> None:
    facts = SpaceFacts(load_profile("rpi4"), _significance([2.0, 8.0, 30.0]))
    values = delta_values(facts)
    sets = [tuple(layer.significant for layer in facts.significance.with_delta(v).layers) for v in values]
    assert len(values) == 4 and len(set(sets)) == 4  # every threshold changes which layers count
    assert list(values) == sorted(values)


def test_the_prior_starts_from_the_plan_deploy_builds_then_its_neighbours(rpi4_space: Space) -> None:
    profile = load_profile("rpi4")
    plan = {
        "strategy": "cqat",
        "layers": [{"role": "significant", "parameters": 100}, {"role": "insignificant", "parameters": 900}],
    }
    base = prior.base_candidate(rpi4_space, profile, plan)
    assert base.values[STRATEGY] == "cqat" and base.values["clusters"] == 16 and base.values["first_last"] == "float32"
    seeds = prior.seeds(rpi4_space, base, plan, limit=20)
    assert seeds[0] == base and len({json.dumps(s.values, sort_keys=True) for s in seeds}) == len(seeds)
    for seed in seeds[1:]:
        assert (
            sum(
                seed.values.get(k) != base.values.get(k)
                for k in rpi4_space.choices
                if k in seed.values or k in base.values
            )
            >= 1
        )
    # most weights in insignificant layers: the harsher neighbours come first (fewer clusters, a more aggressive strategy)
    assert seeds[1].values[STRATEGY] == "cqat-binary" and seeds[2].values["clusters"] == 8
    milder = prior.seeds(rpi4_space, base, {**plan, "layers": [{"role": "significant", "parameters": 900}]}, limit=3)
    assert milder[1].values[STRATEGY] == "clustering"
    assert len(prior.seeds(rpi4_space, base, plan, limit=2)) == 2


def test_pareto_front_and_hypervolume() -> None:
    directions = ["maximize", "minimize"]
    points = [[90.0, 100.0], [95.0, 200.0], [89.0, 150.0], [95.0, 200.0], [80.0, 50.0]]
    assert front_mask(points, directions).tolist() == [True, True, False, True, True]
    low, high = bounds([points], directions)
    full = hypervolume(points, directions, low, high)
    assert 0 < full <= 1.1**2
    assert hypervolume(points[:2], directions, low, high) < full  # more of the front, more volume
    assert hypervolume(points + [[70.0, 190.0]], directions, low, high) == pytest.approx(
        full
    )  # a dominated point adds nothing


def test_a_trials_figures_are_read_off_its_measured_report(rpi4_run) -> None:
    report = rpi4_run.report
    name = objs.candidate_name(report)
    assert name == report["plan"]["strategy"]
    figures = objs.figures(report, objs.parse("accuracy,size,latency"))
    row = next(r for r in report["comparison"] if r["artifact"] == name)
    assert figures["accuracy"] == pytest.approx(100 * row["accuracy"])
    assert figures["size"] == row["file_bytes"] and figures["latency"] == row["latency_median_ms"]
    constraints = objs.constraints(report, name)
    assert len(constraints) == len(RULES) and (max(constraints) <= 0) == objs.passes(report, name)
    with pytest.raises(EdgeCompressError, match="unknown speed"):
        objs.parse("accuracy,speed")


def test_tune_settings_are_checked_before_ray_starts() -> None:
    deploy = edgecompress.pipeline.DeployRequest.build("m.h5", "rpi4")
    with pytest.raises(EdgeCompressError, match="--trials 0"):
        TuneRequest(deploy, trials=0).check()
    with pytest.raises(EdgeCompressError, match="--recipe"):
        TuneRequest(edgecompress.pipeline.DeployRequest.build("m.h5", "rpi4", recipe="cqat")).check()
    assert parse_duration("2h") == 7200 and parse_duration("45m") == 2700 and parse_duration("90") == 90
    with pytest.raises(EdgeCompressError, match="duration"):
        parse_duration("two hours")


def test_a_trial_is_built_without_boards_then_measured_on_boards_given_to_it(
    digits_model: Path, tmp_path: Path
) -> None:
    from edgecompress import pipeline
    from edgecompress.targets.local import LocalTarget

    request = pipeline.DeployRequest.build(
        digits_model,
        "rpi4",
        data="sklearn:digits",
        output=tmp_path,
        recipe="ptq-int8",
        target="ssh://nobody@127.0.0.1:9",
        max_eval=100,
        warmup=1,
        runs=3,
        run_name="trial-0001",
        profile_overrides={"compression": {"clusters": 8}},
    )
    built = pipeline.run(request, stop_before="measure")  # the SSH board is never contacted
    assert built.run_dir == tmp_path / "trial-0001.partial" and not (built.run_dir / "measurements").exists()
    assert "compression.clusters = 8" in (built.run_dir / "deploy.log").read_text()

    class Board(LocalTarget):
        name = "ssh://nobody@127.0.0.1:9"  # the pool's connected board stands for the request's target

    done = pipeline.resume(built.run_dir, boards=[Board()])
    assert done.run_dir == tmp_path / "trial-0001" and done.report["verdict"]["targets"][0]["target"] == Board.name
    log = (done.run_dir / "deploy.log").read_text()
    assert "Stopping before step 'measure'" in log and "Measuring ptq-int8" in log


def test_a_bad_candidate_is_refused_before_a_run_folder_exists(digits_model: Path, tmp_path: Path) -> None:
    from edgecompress import pipeline

    with pytest.raises(ProfileError, match="mixed_precision_bits = 9"):
        pipeline.deploy(
            digits_model,
            "rpi4",
            data="sklearn:digits",
            output=tmp_path,
            profile_overrides={"compression": {"mixed_precision_bits": 9}},
        )
    assert not any(tmp_path.iterdir())


def test_parallel_writers_of_one_cache_key_leave_the_first_entry_whole(tmp_path: Path) -> None:
    cache = StageCache(tmp_path, limit_bytes=10**9)
    barrier = threading.Barrier(4)

    def write(text: str):  # noqa: ANN202
        def into(folder: Path) -> None:
            barrier.wait()
            (folder / "file").write_text(text * 1000)

        return into

    hits = []
    threads = [
        threading.Thread(target=lambda t=t: hits.append(cache.store("kind", "k", write(t), {"by": t}))) for t in "abcd"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entry = cache.lookup("kind", "k")
    assert entry is not None and all(hit is not None and hit.path == entry.path for hit in hits)
    content = entry.file("file").read_text()
    assert content == entry.meta["by"] * 1000  # one writer's whole entry, never a mix
    assert not [p for p in (tmp_path / "kind").iterdir() if p.name.startswith(".")]  # no scratch folders left


def _measured_record(name: str, number: int, accuracy: float, size: float, passes: bool) -> TrialRecord:
    figures = {"accuracy": accuracy, "size": size, "latency": 1.0}
    return TrialRecord(name, number, 0, {STRATEGY: "cqat"}, {}, state=COMPLETE, figures=figures, passes=passes)


def test_a_passing_trial_beaten_only_by_failing_ones_is_shortlisted_for_the_verdict(tmp_path: Path) -> None:
    folder = TuneFolder(tmp_path)
    # trial 1 beats trial 2 on every objective but fails a rule (say, a class collapsed); trial 2 passes
    for record in (
        _measured_record("trial-0001", 1, 95.0, 100.0, False),
        _measured_record("trial-0002", 2, 94.0, 120.0, True),
        _measured_record("trial-0003", 3, 93.0, 150.0, True),  # beaten by trial 2, which passes too
    ):
        folder.put(record)
    objectives = objs.parse("accuracy,size,latency")
    assert [r.name for r in results.pareto(folder, objectives)] == ["trial-0001"]
    assert [r.name for r in results.shortlist(folder, objectives)] == ["trial-0002", "trial-0001"]
    assert results.to_rerun(folder, objectives, 1) == ["trial-0002"]  # the passing one is re-run first


def test_a_trial_equal_to_a_pareto_trial_is_not_listed_as_dominated_by_it(tmp_path: Path) -> None:
    from edgecompress.tune.report import _dominated_by

    objectives = objs.parse("accuracy,size")
    best = _measured_record("trial-0001", 1, 95.0, 100.0, True)
    twin = _measured_record("trial-0002", 2, 95.0, 100.0, True)
    twin.figures["latency"] = 2.0  # not an objective here: equal on every objective
    worse = _measured_record("trial-0003", 3, 95.0, 120.0, True)
    assert _dominated_by(twin, [best], objectives) == []
    assert _dominated_by(worse, [best], objectives) == ["trial-0001"]


def _search(tmp_path: Path, said: list[str]) -> Search:
    request = TuneRequest(edgecompress.pipeline.DeployRequest.build("m.h5", "rpi4"))
    space = Space.build(SpaceFacts(load_profile("rpi4"), _significance([2.0, 8.0])))
    objectives = objs.parse("accuracy,size,latency")
    return Search(request, TuneFolder(tmp_path), space, objectives, None, None, None, said.append)


def test_a_report_without_usable_figures_fails_its_trial_and_the_search_goes_on(rpi4_run, tmp_path: Path) -> None:
    import copy

    said: list[str] = []
    search = _search(tmp_path, said)
    request = search.request.deploy
    no_candidate = Ticket(TrialRecord("trial-0001", None, 0, {STRATEGY: "cqat"}, {}), request)
    search._complete(no_candidate, {"artifacts": [{"name": BASELINE}], "plan": {"strategy": "cqat"}})
    assert search.folder.records["trial-0001"].state == FAILED
    assert "no compressed artifact" in search.folder.records["trial-0001"].reason

    report = copy.deepcopy(rpi4_run.report)  # a board sent back a latency that is not a number
    name = objs.candidate_name(report)
    for entry in objs.verdict_entries(report, name):
        entry["evidence"]["latency_ms"]["median"] = float("nan")
    nan_latency = Ticket(TrialRecord("trial-0002", None, 0, {STRATEGY: "cqat"}, {}), request)
    search._complete(nan_latency, report)
    record = search.folder.records["trial-0002"]
    assert record.state == FAILED and "latency" in record.reason and "finite" in record.reason
    assert results.measured(search.folder) == []  # neither reaches the Pareto front

    search._complete(Ticket(TrialRecord("trial-0003", None, 0, {STRATEGY: "cqat"}, {}), request), rpi4_run.report)
    assert search.folder.records["trial-0003"].state == COMPLETE


def test_a_tune_stopped_before_its_study_existed_resumes_by_starting_it(tmp_path: Path) -> None:
    from edgecompress.tune.study import open_study

    objectives = objs.parse("accuracy,size")
    study = open_study(tmp_path, objectives, seed=0, trials=4, create=False)  # no study.journal yet
    assert study.trials == [] and len(study.directions) == 2
    study.enqueue_trial({STRATEGY: "cqat"})
    again = open_study(tmp_path, objectives, seed=0, trials=4, create=False)
    assert len(again.trials) == 1  # the same study, loaded with its history


def test_resume_refuses_options_it_would_ignore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgecompress.cli import main

    code = main(["tune", "--resume", str(tmp_path), "--trials", "5", "--no-prior", "--max-accuracy-drop", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot take --trials, --prior/--no-prior, --max-accuracy-drop" in err
    assert "--resume-trials" in err and not any(tmp_path.iterdir())
    assert main(["tune", "--resume-trials", "5"]) == 2
    assert "--resume-trials only applies to a resumed tune" in capsys.readouterr().err


def test_time_budgets_that_are_not_durations_are_refused() -> None:
    for text in ("nan", "inf", "infh", "h", "-"):
        with pytest.raises(EdgeCompressError, match="not a duration"):
            parse_duration(text)
    assert parse_duration("1.5h") == 5400


def test_a_trials_own_error_comes_back_from_its_worker_as_data(tmp_path: Path) -> None:
    from edgecompress.tune.worker import build_trial

    request = edgecompress.pipeline.DeployRequest.build(
        str(tmp_path / "missing.h5"), "rpi4", output=str(tmp_path / "trials"), run_name="trial-0001"
    )
    outcome = build_trial({"request": request.to_json(), "tune_dir": str(tmp_path)})  # not raised: Ray would retry it
    assert outcome["error"]["type"] == "ModelError" and "missing.h5" in outcome["error"]["problem"]
    assert outcome["error"]["fix"] and outcome["error"]["run_dir"] is None and "run_dir" not in outcome
    attempt = json.loads((tmp_path / "workers" / "trial-0001" / "attempt-1.json").read_text())
    assert attempt["attempt"] == 1 and "seconds" in attempt


def test_a_trial_recorded_before_the_interruption_is_told_not_built_again(tmp_path: Path) -> None:
    """Interrupted between writing a trial's record and telling Optuna: the resumed tune tells its figures."""
    import optuna

    from edgecompress.tune.search import tell_recorded
    from edgecompress.tune.study import open_study

    objectives = objs.parse("accuracy,size")
    first = open_study(tmp_path, objectives, seed=0, trials=4, create=True)
    for name in ("trial-0000", "trial-0001"):
        asked = first.ask()
        asked.suggest_int("clusters", 4, 32)
        asked.set_user_attr("name", name)
    record = TrialRecord("trial-0000", 0, 0, {STRATEGY: "cqat"}, {}, state=COMPLETE)
    record.figures, record.constraints = {"accuracy": 93.3, "size": 8416.0}, [0.0] * len(objs.RULES)
    record.constraints[0] = 1.5  # fails the first rule
    unusable = TrialRecord("trial-0001", 1, 0, {STRATEGY: "cqat"}, {}, state=COMPLETE)

    resumed = open_study(tmp_path, objectives, seed=0, trials=4, create=False)  # a new process: frozen trials
    measured, broken = resumed.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert tell_recorded(resumed, measured, record, objectives) == COMPLETE
    assert tell_recorded(resumed, broken, unusable, objectives) == FAILED
    again = open_study(tmp_path, objectives, seed=0, trials=4, create=False).trials
    complete = [t for t in again if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 1 and complete[0].values == [93.3, 8416.0]
    assert complete[0].user_attrs["name"] == "trial-0000" and complete[0].params == measured.params
    assert sorted(complete[0].constraints.values()) == sorted(record.constraints)
    assert not [t for t in again if t.state == optuna.trial.TrialState.RUNNING]


def test_a_left_over_entry_without_its_meta_file_is_replaced_not_reused(tmp_path: Path) -> None:
    """A writer interrupted before publishing was atomic left a folder without meta.json: it is no entry."""
    cache = StageCache(tmp_path, limit_bytes=10**9)
    left_over = tmp_path / "kind" / "k"
    left_over.mkdir(parents=True)
    (left_over / "file").write_text("half written")
    assert cache.lookup("kind", "k") is None

    hit = cache.store("kind", "k", lambda folder: (folder / "file").write_text("whole"), {"by": "new"})
    assert hit is not None and hit.file("file").read_text() == "whole" and hit.meta["by"] == "new"
    assert [p.name for p in (tmp_path / "kind").iterdir()] == ["k"]  # nothing set aside is left behind


def test_the_tune_verdict_compares_trials_through_their_baselines_and_quotes_seeded_figures(tmp_path: Path) -> None:
    """The issue's tune: two trials of the same file size, the second measured while the board ran 1.6x slower.

    On absolute medians the first trial looks faster, the size tie goes to it, and accuracy is never
    consulted. Through each run's own baseline (timed in the same rounds) they are equally fast, so
    the significantly more accurate trial wins, quoted by its mean +- std over its three seeds.
    """
    from test_verdict_rounds import BASELINE as BASE
    from test_verdict_rounds import STEADY, make_run, right_on

    from edgecompress.reporting import write_all

    (tmp_path / "tune").mkdir()
    folder = TuneFolder(tmp_path / "tune")
    plain = make_run(tmp_path / "trial-0001", {BASE: {"bytes": 2_000_000, "right": right_on(1800), "median": 0.20},
                     "cqat": {"bytes": 554_320, "right": right_on(1794), "median": 0.080, "sha": "1" * 64}},
                     drift=STEADY, jitter=0.01)  # fmt: skip
    clustered = make_run(tmp_path / "trial-0002", {BASE: {"bytes": 2_000_000, "right": right_on(1800), "median": 0.32},
                         "cqat": {"bytes": 554_400, "right": right_on(1863), "median": 0.128, "sha": "2" * 64}},
                         drift=STEADY, jitter=0.01, seed=1)  # fmt: skip
    for run in (plain, clustered):
        write_all(run, judging=Judging({"max_accuracy_drop_points": 100.0}))
    records = [
        TrialRecord("trial-0001", 1, 0, {STRATEGY: "cqat"}, {}, state=COMPLETE, run_dir=str(plain), artifact="cqat",
                    figures={"accuracy": 89.7, "size": 554_320, "latency": 0.080}, passes=True),
        TrialRecord("trial-0002", 2, 0, {STRATEGY: "clustering"}, {}, state=COMPLETE, run_dir=str(clustered),
                    artifact="cqat", figures={"accuracy": 93.15, "size": 554_400, "latency": 0.128}, passes=True),
    ]  # fmt: skip
    for seed, accuracy, latency in ((1, 93.0, 0.075), (2, 93.3, 0.081)):
        records.append(TrialRecord(f"trial-0002-seed{seed}", None, seed, {STRATEGY: "clustering"}, {}, state=COMPLETE,
                                   artifact="cqat", figures={"accuracy": accuracy, "size": 554_400, "latency": latency},
                                   passes=True, rerun_of="trial-0002"))  # fmt: skip
    for record in records:
        folder.put(record)

    verdict = results.decide(folder, records[:2], {})

    assert verdict["recommended_trial"] == "trial-0002"
    reason = verdict["reason"]
    assert "it passes every rule on pi (on 3 of 3 seeds)" in reason
    assert "equally fast as trial-0002/cqat (their ratio is within 3x the timing noise" in reason
    assert "accuracy 93.15 ± 0.15% over 3 seeds" in reason and "median 0.0947 ± 0.029 ms over 3 seeds" in reason
    assert "accuracy 93.15%" not in reason  # never the search seed's own figure


def test_ctrl_c_while_optuna_writes_its_journal_waits_for_the_write() -> None:
    """An interrupt inside the journal's file lock broke its clean-up; it now lands after the write."""
    import os
    import signal

    from edgecompress.tune.study import uninterrupted

    steps = []
    # as in a terminal: a process started in the background (CI's own runner) inherits SIGINT ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with uninterrupted():
                os.kill(os.getpid(), signal.SIGINT)
                steps.append("the write finished")
        assert steps == ["the write finished"] and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
