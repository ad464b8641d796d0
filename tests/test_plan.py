"""The plan: what deploy will do to each layer, decided from the profile before any training.

Profiles are the bundled ones (real `Profile` objects), adjusted with `model_copy` where a
test needs a different budget or capability. The model is the digits CNN the example
command trains (conv - pool - conv - dense - dense); it does not need training to be planned.
"""

from __future__ import annotations

import json

import pytest
from rich.console import Console
from verdicts import LayerVerdict, Significance

from edgecompress.budget import FIRMWARE_BESIDE_MODEL_BYTES as FIRMWARE
from edgecompress.compression import BASELINES, RECIPES, baseline_plan, make_plan
from edgecompress.compression.estimate import LayerShape, packed_bytes
from edgecompress.errors import BudgetError, EdgeCompressError
from edgecompress.profiles import load_profile

FIRST, SIGNIFICANT, INSIGNIFICANT, LAST = "conv2d", "conv2d_1", "dense", "dense_1"


SIGNIFICANCE = Significance(
    [
        LayerVerdict(FIRST, True, kept_high_precision=True, id=9.0),
        LayerVerdict(SIGNIFICANT, True, id=8.0),
        LayerVerdict(INSIGNIFICANT, False, id=6.0),
        LayerVerdict(LAST, True, kept_high_precision=True, id=2.5),
    ]
)


@pytest.fixture(scope="module")
def model():
    from edgecompress._tf import keras
    from edgecompress.example_model import build_digits_cnn

    keras().backend.clear_session()  # layer names conv2d, conv2d_1, dense, dense_1
    return build_digits_cnn(10)


def profile(name: str = "rpi4", **changes):
    """A bundled profile with top-level fields and `compression.<field>` changed."""
    base = load_profile(name)
    compression = {key.split(".", 1)[1]: value for key, value in changes.items() if key.startswith("compression.")}
    top = {key: value for key, value in changes.items() if not key.startswith("compression.")}
    return base.model_copy(update={**top, "compression": base.compression.model_copy(update=compression)})


def layer(plan, name: str):
    """The plan's row for one layer."""
    return next(row for row in plan.layers if row.name == name)


def recipes(plan) -> dict[str, str]:
    return {layer.name: layer.recipe for layer in plan.layers}


def estimate_of(plan, strategy: str) -> int:
    return next(a["estimated_bytes"] for a in plan.alternatives if a["strategy"] == strategy)


def test_an_int8_board_with_room_gets_cqat_on_significant_and_clustering_on_insignificant_layers(model) -> None:
    plan = make_plan(profile("rpi4", **{"compression.first_last_precision": "int8"}), model, SIGNIFICANCE)
    assert plan.strategy == "cqat"
    assert plan.export_mode == "int8"
    assert recipes(plan) == {FIRST: "keep", SIGNIFICANT: "cqat", INSIGNIFICANT: "clustering", LAST: "keep"}
    assert layer(plan, SIGNIFICANT).params == {"clusters": 16}
    assert plan.fits is True


def test_first_and_last_layers_stay_in_float_when_the_profile_says_so(model) -> None:
    plan = make_plan(load_profile("rpi4"), model, SIGNIFICANCE)  # rpi4 ships first_last_precision: float32
    assert recipes(plan)[FIRST] == recipes(plan)[LAST] == "float"
    assert plan.float_layers == [FIRST, LAST]
    assert layer(plan, FIRST).role == "edge"


def mcu(**changes):
    """A microcontroller profile that prefers CQAT, with its flash budget and fields changed."""
    return profile("stm32h7", **{"compression.strategy": "cqat", "compression.first_last_precision": "int8", **changes})


def test_a_flash_budget_the_clustered_model_exceeds_pushes_insignificant_layers_to_binary(model) -> None:
    loose = make_plan(mcu(), model, SIGNIFICANCE)
    budget = FIRMWARE + estimate_of(loose, "cqat-binary") + 1  # the budget is the whole firmware's
    assert FIRMWARE + estimate_of(loose, "cqat") > budget
    plan = make_plan(mcu(flash_budget_bytes=budget), model, SIGNIFICANCE)
    assert plan.strategy == "cqat-binary"
    assert recipes(plan) == {FIRST: "keep", SIGNIFICANT: "cqat", INSIGNIFICANT: "binary", LAST: "keep"}
    assert (
        plan.budget_figure <= budget and plan.budget_figure == plan.estimated_bytes + FIRMWARE
    )  # flash holds LUT-packed weights beside the interpreter and kernels
    assert "preferred strategy 'cqat'" in plan.notes[0]


def test_a_tighter_flash_budget_gives_mixed_precision_with_first_and_last_layers_kept(model) -> None:
    loose = make_plan(mcu(), model, SIGNIFICANCE)
    budget = FIRMWARE + estimate_of(loose, "mixed-precision") + 1
    assert FIRMWARE + estimate_of(loose, "cqat-binary") > budget
    plan = make_plan(mcu(flash_budget_bytes=budget), model, SIGNIFICANCE)
    assert plan.strategy == "mixed-precision"
    assert recipes(plan) == {FIRST: "keep", SIGNIFICANT: "bits", INSIGNIFICANT: "binary", LAST: "keep"}
    assert layer(plan, SIGNIFICANT).params == {"bits": 2}
    assert layer(plan, INSIGNIFICANT).params == {"bits": 1}


def test_on_a_linux_board_the_budget_holds_the_file_as_it_is_mapped_into_memory(model) -> None:
    """Binary weights are still int8 in a .tflite file: they do not make a model fit a Linux board's RAM."""
    loose = make_plan(profile(**{"compression.first_last_precision": "int8"}), model, SIGNIFICANCE)
    assert loose.budget_field == "model_memory_budget_bytes" and loose.budget_figure == loose.estimated_file_bytes
    budget = estimate_of(loose, "binary") + 1  # enough bit-packed, not enough as a file
    with pytest.raises(BudgetError) as info:
        make_plan(
            profile(model_memory_budget_bytes=budget, **{"compression.first_last_precision": "int8"}),
            model,
            SIGNIFICANCE,
        )
    assert "the model file as copied to the device" in info.value.problem


def test_a_device_without_int8_gets_an_fp16_or_float_export_and_no_qat(model) -> None:
    fp16_board = profile("jetson-nano")
    assert not fp16_board.int8 and fp16_board.fp16
    plan = make_plan(
        fp16_board.model_copy(update={"compression": fp16_board.compression.model_copy(update={"strategy": "cqat"})}),
        model,
        SIGNIFICANCE,
    )
    assert (plan.export_mode, plan.io_dtype) == ("fp16", "float32")
    assert recipes(plan)[SIGNIFICANT] == "clustering"
    assert "cqat needs the int8 export mode, not fp16" in layer(plan, SIGNIFICANT).note
    assert recipes(plan)[FIRST] == "keep"  # float32 first/last only means something in an integer model
    assert plan.float_layers == []

    float_only = profile("rpi4", int8=False, fp16=False, **{"compression.ptq": "int8"})
    plan = make_plan(float_only, model, SIGNIFICANCE)
    assert plan.export_mode == "float32"
    assert any("no int8 path" in note for note in plan.notes)


def test_an_int8_only_accelerator_forces_a_full_integer_export(model) -> None:
    plan = make_plan(load_profile("coral-devboard"), model, SIGNIFICANCE)
    assert (plan.export_mode, plan.io_dtype) == ("int8", "int8")
    assert plan.float_layers == []
    assert recipes(plan)[FIRST] == recipes(plan)[LAST] == "keep"


def test_an_impossible_budget_stops_before_training_with_the_miss_and_the_closest_option(model) -> None:
    loose = make_plan(mcu(), model, SIGNIFICANCE)
    smallest = estimate_of(loose, "binary")
    assert smallest == min(a["estimated_bytes"] for a in loose.alternatives)
    budget = FIRMWARE + smallest - 1000
    with pytest.raises(BudgetError) as info:
        make_plan(mcu(flash_budget_bytes=budget), model, SIGNIFICANCE)
    problem = info.value.problem
    assert f"{budget:,} bytes" in problem
    assert "'binary'" in problem
    assert f"{FIRMWARE + smallest:,} bytes" in problem
    assert "1,000 bytes" in problem  # by how much it misses
    assert "Nothing was trained" in problem
    assert "flash_budget_bytes" in info.value.fix


def test_a_microcontroller_is_held_to_its_flash_budget(model) -> None:
    board = load_profile("stm32h7")
    plan = make_plan(board, model, SIGNIFICANCE)
    assert plan.budget_field == "flash_budget_bytes"
    assert plan.budget_bytes == board.flash_budget_bytes


def test_without_a_significance_analysis_every_middle_layer_counts_as_significant(model) -> None:
    plan = make_plan(profile(**{"compression.first_last_precision": "int8"}), model, None)
    assert recipes(plan)[SIGNIFICANT] == recipes(plan)[INSIGNIFICANT] == "cqat"
    assert any("no significance analysis" in note for note in plan.notes)


def test_layers_a_recipe_cannot_handle_are_left_alone_with_a_note() -> None:
    from edgecompress._tf import keras

    k = keras()
    model = k.Sequential(
        [
            k.layers.Input((8, 8, 1)),
            k.layers.Conv2D(8, 3, name="first"),
            k.layers.DepthwiseConv2D(3, name="depthwise"),
            k.layers.BatchNormalization(name="norm"),
            k.layers.Flatten(),
            k.layers.Dense(10, name="last"),
        ]
    )
    plan = make_plan(
        profile(**{"compression.first_last_precision": "int8", "compression.strategy": "cqat"}), model, None
    )
    depthwise, norm = layer(plan, "depthwise"), layer(plan, "norm")
    assert depthwise.recipe == "keep"
    assert "cqat does not support DepthwiseConv2D" in depthwise.note
    assert "clustering does not support DepthwiseConv2D" in depthwise.note
    assert norm.recipe == "keep" and "no kernel" in norm.note
    auto = make_plan(profile(**{"compression.first_last_precision": "int8"}), model, None)
    assert auto.strategy == "ptq-only" and not auto.needs_training  # nothing to compress beyond the export
    assert auto.ladder[0] == {
        **auto.ladder[0],
        "strategy": "ptq-only",
        "outcome": "chosen: the mildest whose estimate fits",
    }


def test_the_plan_is_stored_as_json_and_shown_as_a_table(model) -> None:
    plan = make_plan(load_profile("rpi4"), model, SIGNIFICANCE)
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["strategy"] == "cqat"
    assert [layer["recipe"] for layer in data["layers"]] == ["float", "cqat", "clustering", "float"]
    assert data["estimated_bytes"] == sum(layer["estimated_bytes"] for layer in data["layers"])
    assert {a["strategy"] for a in data["alternatives"]} >= {"ptq-only", "cqat", "mixed-precision", "binary"}
    console = Console(record=True, width=200)
    console.print(plan.table())
    text = console.export_text()
    assert "cluster-preserving QAT on significant layers" in text
    assert SIGNIFICANT in text and "16 clusters" in text
    assert "budget: 1,073,741,824 bytes" in text


def test_the_size_estimate_counts_index_bits_codebooks_scales_and_biases() -> None:
    dense = LayerShape(n_weights=100 * 10, out_channels=10, n_bias=10)
    # 16 clusters in an int8 export: 4 index bits per weight + a 16-entry int8 codebook per
    # output channel beats one tensor-wide codebook; plus 10 float32 scales and int32 biases.
    assert (
        packed_bytes("clusters", dense, "int8", {"clusters": 16}) == (1000 * 4 + 10 * 16 * 8 + 10 * 32 + 10 * 32) // 8
    )
    assert packed_bytes("codes", dense, "int8", {"bits": 1}) == (1000 * 1 + 10 * 2 * 8 + 10 * 32 + 10 * 32) // 8
    assert packed_bytes("dense", dense, "fp16", {}) == (1000 * 16 + 10 * 16) // 8
    assert packed_bytes("float", dense, "int8", {}) == (1000 * 32 + 10 * 32) // 8


def test_every_named_baseline_is_a_plan_with_its_export_mode(model) -> None:
    assert set(BASELINES) == {
        "ptq-int8",
        "ptq-fp16",
        "ptq-dynamic",
        "ptq-int16x8",
        "qat",
        "clustering-ptq",
        "pruning-ptq",
        "cqat",
        "twonn-cqat",
        "twonn-mixed",
        "twonn-prune",
        "uniform-prune",
        "lowrank",
        "twonn-prune-cqat",
    }
    for name, baseline in BASELINES.items():
        plan = baseline_plan(name, model, significance=SIGNIFICANCE)
        assert plan.export_mode == baseline.export_mode
        assert all(layer.recipe in RECIPES for layer in plan.layers)
    assert recipes(baseline_plan("cqat", model)) == dict.fromkeys([FIRST, SIGNIFICANT, INSIGNIFICANT, LAST], "cqat")
    assert recipes(baseline_plan("twonn-mixed", model, significance=SIGNIFICANCE))[INSIGNIFICANT] == "binary"


def test_twonn_baselines_refuse_to_run_without_a_significance_analysis(model) -> None:
    with pytest.raises(EdgeCompressError, match="significance") as info:
        baseline_plan("twonn-cqat", model)
    assert "cqat" in info.value.fix
    with pytest.raises(EdgeCompressError, match="Unknown recipe 'cqtat'"):
        baseline_plan("cqtat", model)


# --------------------------------------------------------------------------- strategy: auto


def test_auto_gives_a_model_that_fits_as_int8_the_mildest_compression_not_binarised_layers(model) -> None:
    board = load_profile("arduino-nano-33-ble")
    assert board.compression.strategy == "auto"
    plan = make_plan(board, model, SIGNIFICANCE)
    assert plan.auto and plan.strategy == "cqat" and plan.fits
    assert "binary" not in recipes(plan).values() and "bits" not in recipes(plan).values()
    steps = {step["strategy"]: step["outcome"] for step in plan.ladder}
    # README order; strategies that only cluster are tried with half the clusters, then a quarter, before binarising
    assert list(steps) == [
        "ptq-only",
        "clustering",
        "cqat",
        "clustering-8",
        "cqat-8",
        "clustering-4",
        "cqat-4",
        "cqat-binary",
        "mixed-precision",
        "binary",
    ]
    assert steps["ptq-only"].startswith("skipped: post-training quantization only: every deploy builds")
    assert steps["clustering"] == "skipped: cqat reaches the same size and also trains for the int8 export"
    assert steps["clustering-8"] == "skipped: cqat-8 reaches the same size and also trains for the int8 export"
    assert steps["cqat"] == "chosen: the mildest whose estimate fits"
    assert plan.harsher == ["cqat-8", "cqat-4", "cqat-binary", "mixed-precision", "binary"]  # a measured miss climbs
    assert all(steps[name] == "not needed yet: a milder one fits" for name in plan.harsher)
    assert any(line.startswith("strategy auto, mildest first: ptq-only: skipped") for line in plan.summary_lines())


def test_auto_climbs_past_every_strategy_whose_estimate_is_over_the_budget_and_says_why(model) -> None:
    loose = make_plan(mcu(**{"compression.strategy": "auto"}), model, SIGNIFICANCE)
    budget = FIRMWARE + estimate_of(loose, "mixed-precision") + 1  # the budget is the whole firmware's
    plan = make_plan(mcu(flash_budget_bytes=budget, **{"compression.strategy": "auto"}), model, SIGNIFICANCE)
    assert plan.strategy == "mixed-precision" and plan.harsher == ["binary"]
    steps = {step["strategy"]: step for step in plan.ladder}
    for harsher_needed in ("cqat", "cqat-binary"):
        figure = FIRMWARE + estimate_of(loose, harsher_needed)
        assert steps[harsher_needed]["outcome"] == f"estimated {figure:,} bytes, over the budget" and figure > budget
    assert steps["mixed-precision"]["outcome"] == "chosen: the mildest whose estimate fits"


def test_auto_moves_to_the_next_rung_when_the_exported_model_measures_over_the_budget(model) -> None:
    from edgecompress.budget import exported_resources
    from edgecompress.compression import next_rung

    board = mcu(**{"compression.strategy": "auto"})
    plan = make_plan(board, model, SIGNIFICANCE)
    assert plan.strategy == "cqat"
    over = exported_resources(50_000, board.flash_budget_bytes - FIRMWARE + 10)  # model + firmware beside it
    higher = next_rung(board, model, SIGNIFICANCE, plan, over)
    assert higher is not None and higher.auto and higher.strategy == "cqat-8"  # fewer clusters before binarising
    assert {layer.setting for layer in higher.layers if layer.recipe in ("cqat", "clustering")} == {"8 clusters"}
    assert "8 clusters (the profile's 16 halved to fit)" in higher.description
    step = next(s for s in higher.ladder if s["strategy"] == "cqat")
    assert step["measured_bytes"] == board.flash_budget_bytes + 10
    assert step["outcome"].startswith(f"measured {board.flash_budget_bytes + 10:,} bytes after export")
    chosen = next(s for s in higher.ladder if s["outcome"].startswith("chosen"))
    assert chosen["strategy"] == "cqat-8" and higher.harsher == ["cqat-4", "cqat-binary", "mixed-precision", "binary"]
    assert len(higher.ladder) == len({s["strategy"] for s in higher.ladder}) == 10
    last = make_plan(mcu(**{"compression.strategy": "binary"}), model, SIGNIFICANCE)
    last.auto, last.ladder = True, [{"strategy": "binary", "outcome": "chosen"}]
    assert next_rung(board, model, SIGNIFICANCE, last, over) is None  # nothing harsher: the verdict shows the miss
    assert last.ladder[0]["outcome"].startswith("measured") and last.harsher == []


def test_an_explicit_strategy_still_wins_over_auto(model) -> None:
    plan = make_plan(profile("arduino-nano-33-ble", **{"compression.strategy": "mixed-precision"}), model, SIGNIFICANCE)
    assert plan.strategy == "mixed-precision" and not plan.auto and plan.ladder == []


def test_fewer_clusters_and_fewer_bits_get_a_larger_fine_tuning_cap() -> None:
    """Each bit an index loses below 4 adds one base step budget; binarisation keeps the largest."""
    from edgecompress.compression.recipes import RECIPES

    clustering = RECIPES["clustering"]
    assert [clustering.step_scale_for({"clusters": k}) for k in (32, 16, 8, 4)] == [1.0, 1.0, 2.0, 3.0]
    assert RECIPES["binary"].step_scale_for({"bits": 1}) == 4.0 > clustering.step_scale_for({"clusters": 4})
    assert RECIPES["bits"].step_scale_for({"bits": 2}) == 2.0 and RECIPES["keep"].step_scale_for({}) == 1.0
