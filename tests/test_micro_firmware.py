"""The whole TFLite Micro firmware: compiled and linked for a Cortex-M4F, run on an emulated board.

Real parts only: TFLM's own sources (prepared offline from ../shared/third-party), Debian's
arm-none-eabi GCC + newlib, qemu-system-arm's mps2-an386 board. The model is the session's
tiny int8 digits CNN. The TFLM objects are compiled once per (revision, core, kernels, flags)
into the cache, so only the first run of this file pays for them.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgecompress.errors import ToolError
from edgecompress.micro import FirmwareOptions, build_micro, cores, emulator, image, tflm
from edgecompress.micro.footprint import ITEMS
from edgecompress.profiles import load_profile
from edgecompress.targets import MeasureJob
from edgecompress.targets.qemu import QemuTarget

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("arm-none-eabi-g++") is None or shutil.which("qemu-system-arm") is None,
        reason="needs gcc-arm-none-eabi and qemu-system-arm (.ci/run installs both)",
    ),
]


@pytest.fixture(scope="module")
def arduino():
    return load_profile("arduino-nano-33-ble")


@pytest.fixture(scope="module")
def linked(tiny_tflite_int8: Path, eval_npz: Path, arduino, tmp_path_factory):
    """The tiny CNN's whole firmware for the Nano 33 BLE's Cortex-M4F, CMSIS-NN kernels."""
    out = tmp_path_factory.mktemp("micro_linked")
    return build_micro(
        tiny_tflite_int8.read_bytes(),
        profile=arduino,
        eval_npz=eval_npz,
        out_dir=out,
        compress=False,
        name="digits",
        firmware_options=FirmwareOptions(mode="require"),
    )


@pytest.fixture(scope="module")
def on_qemu(linked, eval_npz: Path):
    """The firmware measured on the emulated board, exactly as `deploy --target qemu` measures it."""
    return QemuTarget().measure(MeasureJob(model=linked.image.image, eval_data=eval_npz))


# --------------------------------------------------------------------------- build and footprint


def test_firmware_links_for_the_profiles_core_with_only_the_models_kernels(linked):
    fw = linked.image
    assert (fw.core.mcpu, fw.core.tflm_arch, fw.board.name) == ("cortex-m4", "cortex-m4+fp", "mps2-an386")
    assert fw.device_elf.is_file() and fw.emulator_elf.is_file() and fw.image.is_file()
    kernels = {Path(source).stem for source in fw.build["sources"]["kernel"]}
    assert {"conv", "fully_connected", "pooling", "reshape", "softmax"} <= kernels
    assert not kernels & {"add", "mul", "depthwise_conv", "lstm_eval", "svdf", "decode"}  # ops the model does not use
    assert any(
        "cmsis_nn/conv.cc" in source for source in fw.build["sources"]["kernel"]
    )  # CMSIS-NN's, not the reference
    third_party = fw.build["sources"]["third-party"]
    assert third_party and all("cmsis_nn/Source" in source for source in third_party)
    flags = fw.build["link_command"]
    assert "-mcpu=cortex-m4" in flags and "-mfloat-abi=hard" in flags and "-Os" in flags


def test_flash_and_ram_come_from_the_elf_itemised_and_are_checked_against_the_budgets(linked, arduino):
    device = linked.image.device
    assert (
        device.flash_bytes
        == sum(v for k, v in device.flash.items() if k != "total")
        == linked.image.image.stat().st_size
    )
    assert device.ram_bytes == sum(v for k, v in device.ram.items() if k != "total")
    assert set(device.flash) >= {"model", "tflm_runtime", "kernels", "rest"} and set(device.ram) >= set(ITEMS) - {
        "model"
    }
    carried = linked.compression["slimming"]["slimmed_bytes"]  # the model the firmware carries (micro/slim.py)
    assert carried <= device.flash["model"] < carried + 512  # the array, aligned
    assert device.flash["tflm_runtime"] > 10_000 and device.flash["kernels"] > 10_000  # real code, not a stub
    assert (
        device.ram["arena"] == linked.image.arena["size_bytes"]
        and device.ram["stack"] == linked.image.stack["reserved_bytes"]
    )
    assert device.flash["harness"] == 0 and device.ram["harness"] == 0  # the device image carries no emulator harness
    assert linked.image.emulator.flash["harness"] > 0
    fits = linked.fits
    assert fits["flash_needed_bytes"] == device.flash_bytes and fits["ram_needed_bytes"] == device.ram_bytes
    assert fits["flash_budget_bytes"] == arduino.flash_budget_bytes and fits["flash"] and fits["ram"]
    assert fits["basis"].startswith("measured")
    assert linked.flash_bytes["used_for_budget"] == device.flash_bytes


def test_arena_is_measured_on_the_32_bit_core_and_sizes_the_project(linked):
    arena = linked.image.arena
    assert arena["measured_32bit_bytes"] > 0 and arena["source"].startswith("smallest arena the firmware runs in")
    assert arena["smallest_working_bytes"] >= arena["measured_32bit_bytes"] + 16 and arena["search_probes"] >= 1
    assert arena["size_bytes"] == arena["smallest_working_bytes"] + arena["margin_bytes"]
    assert (
        arena["measured_32bit_bytes"] < linked.arena.minimum_bytes
    )  # 32-bit pointers: less than the 64-bit host needs
    header = (linked.firmware_dir / "model_data.h").read_text()
    assert f"kTensorArenaSize = {arena['size_bytes']};" in header and "emulated 32-bit core" in header
    assert (
        linked.image.stack["peak_bytes"] > 0
        and linked.image.stack["reserved_bytes"] >= linked.image.stack["peak_bytes"]
    )


def test_a_second_build_compiles_only_the_models_own_files(linked, eval_npz: Path):
    again = image.build_firmware(
        linked.firmware_dir,
        core=linked.image.core,
        kernels="cmsis_nn",
        host_arena_bytes=linked.arena_with_margin,
        probe=_probe(linked, eval_npz),
        emulate=False,
        out_name="rebuild",
    )
    assert again.build["compiled_now"] == 0 and again.build["from_cache"] > 20
    assert again.device.flash["tflm_runtime"] == linked.image.device.flash["tflm_runtime"]


def test_the_project_carries_a_makefile_for_a_users_own_board(linked):
    import subprocess

    project = linked.firmware_dir
    assert (project / "Makefile").is_file() and (project / "firmware.ld").is_file()
    dry = subprocess.run(
        ["make", "-n", "-C", str(project), f"TFLM_DIR={linked.image.tree.root}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    compiled = re.findall(r"-c (\S+) -o", dry)
    tflm_sources = {
        str(linked.image.tree.root / s)
        for origin in ("framework", "kernel", "third-party")
        for s in linked.image.build["sources"].get(origin, [])
    }
    assert tflm_sources <= set(compiled)  # the very sources edgecompress linked, no more
    assert {"main.cc", "model_data.cc", "sample_input.cc", "startup_cortex_m.c"} <= set(compiled)
    assert "-mcpu=cortex-m4" in dry and "-Tfirmware.ld" in dry and "arm-none-eabi-g++" in dry


# --------------------------------------------------------------------------- on the emulated board


def test_firmware_outputs_equal_tflm_python_on_every_sample(on_qemu, linked):
    result = on_qemu.result
    assert result["accuracy"]["n"] == linked.tflm_accuracy["n"]
    assert result["accuracy"]["overall"] == linked.accuracy
    assert result["accuracy"]["predictions"] == linked.tflm_accuracy["predictions"]
    comparison = result["vs_tflm_python"]
    assert comparison["available"] and comparison["samples"] == linked.tflm_accuracy["n"]
    assert comparison["decision_agreement"] == 1.0
    assert comparison["identical_outputs"]  # CMSIS-NN rounds like the reference kernels on this model


def test_instructions_are_counted_per_inference_and_per_op_and_labelled(on_qemu, linked):
    instructions = on_qemu.result["instructions"]
    per_inference = instructions["per_inference"]
    assert (
        "instructions" in per_inference["unit"]
        and "QEMU" in per_inference["unit"]
        and "Cortex-M4F" in per_inference["unit"]
    )
    assert per_inference["samples"] == linked.tflm_accuracy["n"]
    assert linked.macs["total"] / 4 < per_inference["median"] < 200 * linked.macs["total"]
    ops = [row["op"] for row in instructions["per_op"]]
    assert ops == ["CONV_2D", "MAX_POOL_2D", "CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    assert sum(row["instructions"] for row in instructions["per_op"]) <= per_inference["mean"]
    estimate = on_qemu.result["latency_estimate"]
    assert estimate["clock_mhz"] == 64 and estimate["cycles_per_instruction"] > 0 and "estimate" in estimate["label"]
    assert estimate["milliseconds"] == pytest.approx(
        per_inference["median"] * estimate["cycles_per_instruction"] / 64e3, rel=1e-3
    )
    assert on_qemu.result["latency_ms"] == {}  # nothing here passes for wall-clock time on a device
    assert on_qemu.result["memory"]["arena_used_32bit_bytes"] == linked.image.arena["measured_32bit_bytes"]


def test_the_arena_search_finds_the_boundary_to_16_bytes():
    from edgecompress.micro.image import smallest_arena

    tried = []

    def runs_in(size: int) -> bool:
        tried.append(size)
        return size >= 2_900  # e.g. 2,052 B used + the planner's scratch while preparing

    found = smallest_arena(2_052, 69_552, runs_in)
    assert 2_896 < found["bytes"] <= 2_912 and found["probes"] == len(tried) <= 12
    assert smallest_arena(2_052, 69_552, lambda size: True) == {"bytes": 2_080, "probes": 1}


def test_systick_calibration_reads_40_instructions_per_tick_and_counts_repeat_exactly(linked, eval_npz: Path, tmp_path):
    board = cores.BOARDS["mps2-an386"]
    probe = _probe(linked, eval_npz)
    runs = [
        emulator.run_firmware(
            linked.image.emulator_elf,
            board,
            probe.sample * 3,
            input_bytes=probe.input_bytes,
            output_bytes=probe.output_bytes,
            output_dtype=probe.output_dtype,
            workdir=tmp_path / str(i),
        )
        for i in range(2)
    ]
    for run in runs:
        calibration = run.calibration
        # -icount shift=0: 1 ns per instruction; SysTick at the board's 25 MHz: one tick per 40 instructions.
        assert calibration.instructions_per_tick == 1e9 / board.sysclk_hz == 40.0
        assert calibration.long_ticks - calibration.short_ticks == 2 * (1_250_000 - 250_000) // 40
    assert np.array_equal(runs[0].ticks, runs[1].ticks)  # the same firmware and inputs: the very same counts
    assert np.array_equal(runs[0].outputs, runs[1].outputs)
    assert runs[0].ticks.max() - runs[0].ticks.min() <= 1  # one sample three times: equal up to where a tick falls


def test_reference_kernels_match_tflm_python_bit_for_bit_and_take_more_instructions(linked, on_qemu, eval_npz: Path):
    reference = image.build_firmware(
        linked.firmware_dir,
        core=linked.image.core,
        kernels="reference",
        host_arena_bytes=linked.arena_with_margin,
        probe=_probe(linked, eval_npz),
        out_name="reference",
        manifest_extra=_manifest_extra(linked),
    )
    assert not any("cmsis_nn" in source for source in reference.build["sources"].get("kernel", []))
    assert "third-party" not in reference.build["sources"]
    result = QemuTarget().measure(MeasureJob(model=reference.image, eval_data=eval_npz)).result
    assert result["vs_tflm_python"]["expected_identical"] and result["vs_tflm_python"]["identical_outputs"]
    assert result["accuracy"]["predictions"] == linked.tflm_accuracy["predictions"]
    cmsis = on_qemu.result["instructions"]["per_inference"]["median"]
    assert result["instructions"]["per_inference"]["median"] > 3 * cmsis


def test_a_model_fed_0_255_pixels_has_input_scale_one_and_its_firmware_builds_and_runs(arduino, tmp_path):
    """Any model that takes raw 0-255 pixels gets an int8 input scale of exactly 1.0 (`1f` did not compile)."""
    model_bytes, eval_path = _pixels_0_255_model(tmp_path)
    built = build_micro(
        model_bytes,
        profile=arduino,
        eval_npz=eval_path,
        out_dir=tmp_path / "micro",
        compress=False,
        name="pixels",
        firmware_options=FirmwareOptions(mode="require"),
    )
    assert built.io.input.scale == 1.0 and built.io.input.zero_point == -128
    assert "constexpr float kInputScale = 1.0f;" in (built.firmware_dir / "model_data.h").read_text()
    measured = QemuTarget().measure(MeasureJob(model=built.image.image, eval_data=eval_path)).result
    assert measured["accuracy"]["predictions"] == built.tflm_accuracy["predictions"]
    assert measured["accuracy"]["overall"] == built.accuracy > 0.8  # a trained digits model, through the firmware
    assert measured["vs_tflm_python"]["decision_agreement"] == 1.0


def _pixels_0_255_model(tmp_path: Path) -> tuple[bytes, Path]:
    """A tiny digits CNN trained on 0-255 pixels (no rescaling layer), as int8 with int8 I/O, and its eval set."""
    from sklearn.datasets import load_digits

    from edgecompress._tf import keras, tensorflow

    tf, k = tensorflow(), keras()
    digits = load_digits()
    x = (digits.images * (255 / 16)).astype(np.float32)[..., None]  # 0..255 exactly
    y = digits.target.astype(np.int64)
    k.utils.set_random_seed(0)
    model = k.Sequential(
        [
            k.layers.Input((8, 8, 1)),
            k.layers.Conv2D(8, 3, padding="same", activation="relu"),
            k.layers.Flatten(),
            k.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer=k.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(x[:1400], y[:1400], epochs=8, batch_size=64, verbose=0)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([sample[None]] for sample in x[:300])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    eval_path = tmp_path / "eval.npz"
    np.savez(
        eval_path,
        x=x[1400:1600],
        y=y[1400:1600],
        class_names=np.array([str(d) for d in range(10)]),
        output_kind=np.array("softmax"),
    )
    return converter.convert(), eval_path


# --------------------------------------------------------------------------- failures


def test_an_emulator_that_hangs_is_stopped_and_reported(linked, eval_npz: Path, tmp_path, monkeypatch):
    from edgecompress.errors import TargetError

    probe = _probe(linked, eval_npz)
    # far below what QEMU needs to boot and run 2,000 samples on any machine: the run is always cut off
    monkeypatch.setattr(emulator, "_timeout", lambda samples, timeout_s, hint: 0.01)
    with pytest.raises(TargetError, match="did not finish within") as raised:
        emulator.run_firmware(
            linked.image.emulator_elf,
            cores.BOARDS["mps2-an386"],
            probe.sample * 2000,
            input_bytes=probe.input_bytes,
            output_bytes=probe.output_bytes,
            output_dtype=probe.output_dtype,
            workdir=tmp_path,
        )
    assert "--resume" in raised.value.fix


def test_a_missing_tflm_tree_ends_in_one_paragraph_with_the_commands(tmp_path, monkeypatch):
    from edgecompress.micro import tflm_tree

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.delenv(tflm_tree.ENV_TFLM_DIR, raising=False)
    with pytest.raises(ToolError) as raised:
        tflm_tree.find_tree()
    assert "edgecompress micro setup" in raised.value.fix and "--tflm-source" in raised.value.fix
    with pytest.raises(ToolError, match="not a tflite-micro tree"):
        tflm_tree.find_tree(tmp_path)


def test_a_board_with_another_core_is_refused(linked, eval_npz: Path):
    from edgecompress.errors import TargetError

    with pytest.raises(TargetError, match="cortex-m7"):
        QemuTarget("mps2-an500").measure(MeasureJob(model=linked.image.image, eval_data=eval_npz))
    with pytest.raises(TargetError, match="no emulated board called"):
        QemuTarget("mps2-an999")


def test_a_model_that_does_not_fit_is_refused_with_the_elf_figures(
    tiny_tflite_int8: Path, eval_npz: Path, arduino, tmp_path
):
    from edgecompress.errors import BudgetError

    small = arduino.model_copy(update={"flash_budget_bytes": 40_000})
    with pytest.raises(BudgetError) as raised:
        build_micro(
            tiny_tflite_int8.read_bytes(),
            profile=small,
            eval_npz=eval_npz,
            out_dir=tmp_path,
            compress=False,
            firmware_options=FirmwareOptions(mode="require", emulate=False),
        )
    message = raised.value.problem
    needed = int(re.search(r"flash: needs ([\d,]+) B", message)[1].replace(",", ""))
    assert needed > 40_000 and "TFLM runtime" in message and "kernels" in message
    report = json.loads((tmp_path / "micro_build.json").read_text())
    assert report["refused"]


def test_a_build_kept_over_budget_is_linked_and_says_by_how_much(
    tiny_tflite_int8: Path, eval_npz: Path, arduino, tmp_path
):
    """The post-training model a deploy builds to compare with: kept when it does not fit, with its figures."""
    small = arduino.model_copy(update={"flash_budget_bytes": 40_000})
    built = build_micro(
        tiny_tflite_int8.read_bytes(),
        profile=small,
        eval_npz=eval_npz,
        out_dir=tmp_path,
        compress=False,
        firmware_options=FirmwareOptions(mode="require", emulate=False, keep_over_budget=True),
    )
    assert built.image is not None and built.image.image.is_file()
    assert not built.fits["flash"] and built.fits["ram"] and built.fits["basis"].startswith("measured")
    over = built.fits["flash_needed_bytes"] - 40_000
    assert over == -built.fits["margins"]["flash_headroom_bytes"] > 0
    assert any(f"{over:,} B over" in note for note in built.notes)


# --------------------------------------------------------------------------- helpers


def _probe(linked, eval_npz: Path) -> image.ProbeInput:
    io = linked.io
    data = tflm.runner_module().EvalData(str(eval_npz))
    sample = image.quantized_bytes(data.head(1), io.input.dtype, io.input.scale, io.input.zero_point)
    return image.ProbeInput(sample, io.input.bytes, io.output.bytes, io.output.dtype)


def _manifest_extra(linked) -> dict:
    return {
        key: value
        for key, value in json.loads(linked.image.manifest.read_text()).items()
        if key in ("input", "output", "clock_mhz", "profile", "model_bytes", "reference_scores", "shipped")
    }


# --------------------------------------------------------------------------- through deploy


def _nano_qemu_deploy(tiny_h5: Path, output: Path, **options):  # noqa: ANN202 - a DeployResult
    """`deploy --profile arduino-nano-33-ble --target qemu` of the tiny digits CNN, as a user runs it."""
    import edgecompress

    return edgecompress.deploy(
        tiny_h5,
        "arduino-nano-33-ble",
        data="sklearn:digits",
        target="qemu",
        output=output,
        max_eval=120,
        epochs=1,
        **options,
    )


@pytest.fixture(scope="module")
def qemu_run(tiny_h5: Path, tmp_path_factory):
    return _nano_qemu_deploy(tiny_h5, tmp_path_factory.mktemp("qemu_runs"))


def test_deploy_to_the_emulated_board_measures_both_firmwares_against_the_fp32_baseline(qemu_run):
    report = qemu_run.report
    compressed = report["plan"]["strategy"]
    firmwares = {f"{compressed}-firmware", "ptq-int8-firmware"}
    on_qemu = {m["artifact"]: m for m in report["measurements"] if m["target"] == "qemu"}
    assert set(on_qemu) == firmwares | {"baseline-fp32"}  # no .tflite runs on the emulated board itself
    for name in firmwares:
        measured = on_qemu[name]
        assert measured["latency_ms"] == {} and measured["instructions"]["per_inference"]["median"] > 0
        assert measured["accuracy"]["n"] == 120 and measured["vs_tflm_python"]["decision_agreement"] == 1.0
    baseline = on_qemu["baseline-fp32"]  # the accuracy reference: the fp32 .tflite on the host runner
    assert baseline["reference_for"]["scored_by"] == "host runner" and baseline["latency_ms"] == {}
    assert baseline["accuracy"]["n"] == 120
    builds = {b["firmware_artifact"]: b for b in report["micro"]["firmwares"]}
    assert set(builds) == firmwares and {b["role"] for b in builds.values()} == {"compressed", "post-training"}
    for name, build in builds.items():
        artifact = next(a for a in report["artifacts"] if a["name"] == name)
        device = build["linked_firmware"]["device"]
        assert artifact["file_bytes"] == device["flash_bytes"] == artifact["flash_bytes"]  # the flash image
        assert artifact["ram_bytes"] == device["ram_bytes"] == build["fits"]["ram_needed_bytes"]
    rows = {r["artifact"]: r for r in report["comparison"] if r["target"] == "qemu"}
    for name in firmwares:
        assert rows[name]["instructions_median"] == on_qemu[name]["instructions"]["per_inference"]["median"]
        assert rows[name]["latency_median_ms"] is None and rows[name]["estimated_latency_ms"] > 0
        expected = round(100 * (rows[name]["accuracy"] - rows["baseline-fp32"]["accuracy"]), 2)
        assert rows[name]["accuracy_delta_points"] == expected
        # a firmware's model is compared by the flash it takes, not by the image that carries the runtime
        artifact = next(a for a in report["artifacts"] if a["name"] == name)
        base_file = next(a for a in report["artifacts"] if a["name"] == "baseline-fp32")["file_bytes"]
        assert 0 < artifact["model_flash_bytes"] < artifact["file_bytes"]
        assert rows[name]["smaller_x_file"] == round(base_file / artifact["model_flash_bytes"], 3) > 1
    markdown = (qemu_run.run_dir / "report.md").read_text()
    assert "Microcontroller firmware" in markdown and "instructions per inference" in markdown
    assert "the fp32 model on the host runner" in markdown


def test_the_verdict_recommends_a_firmware_judged_on_its_own_build(qemu_run):
    verdict = qemu_run.report["verdict"]
    [target] = verdict["targets"]
    entries = {entry["artifact"]: entry for entry in target["artifacts"]}
    assert {name for name, e in entries.items() if e["role"] == "candidate"} == {
        f"{qemu_run.report['plan']['strategy']}-firmware",
        "ptq-int8-firmware",
    }
    for entry in entries.values():
        if entry["role"] == "candidate":  # flash and RAM read from the run's own build, accuracy tested paired
            budget = next(c for c in entry["checks"] if c["rule"] == "budget")
            assert budget["passed"] and "not known" not in budget["text"] and "flash_budget_bytes" in budget["text"]
            assert entry["evidence"]["accuracy_test"]["test"] == "mcnemar-exact"
    # post-training int8 of this model loses nothing that matters: it passes, so a firmware is recommended
    assert entries["ptq-int8-firmware"]["passed"], entries["ptq-int8-firmware"]["first_failure"]
    assert verdict["passed"] and verdict["recommended"] in target["passing"]
    assert verdict["recommended"].endswith("-firmware")
    assert any("host runner" in note for note in verdict["notes"])


def test_the_bundle_holds_the_recommended_firmware_and_ship_relinks_it(qemu_run, capsys):
    from edgecompress.cli import main
    from edgecompress.ship import load_manifest

    bundle = qemu_run.run_dir / "ship"
    manifest = load_manifest(bundle)
    assert manifest["kind"] == "firmware" and manifest["artifact"]["name"] == qemu_run.report["verdict"]["recommended"]
    for name in ("firmware.elf", "firmware.map", "firmware.bin", "Makefile", "model_data.cc", "firmware.json"):
        assert f"firmware/{name}" in manifest["files"]
    assert not any(name.startswith("firmware/build/") for name in manifest["files"])
    assert manifest["firmware"]["flash_bytes"] <= manifest["firmware"]["budget"]["flash_budget_bytes"]
    capsys.readouterr()
    assert main(["ship", str(qemu_run.run_dir)]) == 0
    printed = capsys.readouterr().out
    assert "identical to the measured firmware.bin" in printed
    assert (
        'openocd -f interface/cmsis-dap.cfg -f target/nrf52.cfg -c "program firmware.elf verify reset exit"' in printed
    )
    assert main(["ship", str(qemu_run.run_dir), "--target", "ssh://pi@127.0.0.1:1"]) == 3  # TargetError
    assert "flashed, not installed over SSH" in capsys.readouterr().err
    load_manifest(bundle)  # checking it wrote nothing into the bundle


@pytest.fixture(scope="module")
def region_run(qemu_run, tiny_h5: Path, tmp_path_factory):
    """The same deploy for an application whose flash map reserves for the model one byte less than the first
    plan's firmware gave it (`model_flash_budget_bytes`)."""
    first = qemu_run.report["plan"]["strategy"]
    builds = {b["firmware_artifact"]: b for b in qemu_run.report["micro"]["firmwares"]}
    budget = builds[f"{first}-firmware"]["flash_bytes"]["model_in_elf"] - 1
    output = tmp_path_factory.mktemp("region_runs")
    run = _nano_qemu_deploy(tiny_h5, output, profile_overrides={"model_flash_budget_bytes": budget})
    return run, first, budget


def test_a_flash_region_for_the_model_climbs_to_fewer_clusters_and_fails_the_int8_firmware(qemu_run, region_run):
    run, first, budget = region_run
    plan = run.report["plan"]
    assert plan["strategy"] == f"{first}-8" and plan["budget_field"] == "model_flash_budget_bytes"
    assert {layer["params"]["clusters"] for layer in plan["layers"] if "clusters" in layer["params"]} == {8}
    steps = {step["strategy"]: step["outcome"] for step in plan["ladder"]}
    # the first plan's estimate fits the region, its exported model (graph, scales, class names) does not
    assert steps[first].startswith("measured ") and "over the" in steps[first]
    assert "model_flash_budget_bytes: a harsher strategy was needed" in steps[first]
    assert plan["measured"]["fits"] and plan["measured"]["bytes"] <= budget
    builds = {b["firmware_artifact"]: b for b in run.report["micro"]["firmwares"]}
    assert builds[f"{first}-8-firmware"]["flash_bytes"]["model_in_elf"] <= budget  # the map agrees
    entries = {e["artifact"]: e for e in run.report["verdict"]["targets"][0]["artifacts"]}
    int8_budget = next(c for c in entries["ptq-int8-firmware"]["checks"] if c["rule"] == "budget")
    assert not int8_budget["passed"] and "model_flash_budget_bytes" in int8_budget["text"]
    ours = next(c for c in entries[f"{first}-8-firmware"]["checks"] if c["rule"] == "budget")
    assert ours["passed"] and "model_flash_budget_bytes" in ours["text"]
    assert run.report["verdict"]["recommended"] == f"{first}-8-firmware"


def test_deploy_refuses_qemu_for_a_linux_board_before_doing_anything(tiny_h5: Path, tmp_path):
    import edgecompress
    from edgecompress.errors import TargetError

    with pytest.raises(TargetError, match="emulates microcontroller boards"):
        edgecompress.deploy(tiny_h5, "rpi4", data="sklearn:digits", target="qemu", output=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_missing_toolchain_and_emulator_say_what_to_install(tmp_path, monkeypatch):
    from edgecompress.errors import TargetError
    from edgecompress.micro import toolchain

    monkeypatch.setenv("PATH", str(tmp_path))  # no arm-none-eabi-*, no qemu-system-arm
    with pytest.raises(ToolError) as raised:
        toolchain.arm_tool("g++")
    assert (
        "apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"
        in raised.value.fix
    )
    with pytest.raises(ToolError) as raised:
        toolchain.qemu_system()
    assert "bookworm-backports" in raised.value.fix and "qemu-system-arm" in raised.value.fix
    with pytest.raises(TargetError, match="qemu-system-arm is not installed"):
        QemuTarget().probe()
