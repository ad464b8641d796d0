"""Device profiles, as a user meets them: list and show the bundled ones, write your own,
and get told exactly what is wrong (file, field, value, what is allowed) when it is wrong.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from typer.testing import CliRunner

from edgecompress.cli.profiles import app
from edgecompress.errors import ProfileError
from edgecompress.profiles import (
    CONSISTENCY_RULES,
    Profile,
    Strategy,
    format_size,
    list_profiles,
    load_profile,
    parse_size,
    profile_names,
)
from edgecompress.resources import bundled_dir

BUNDLED = [
    "android-phone",
    "arduino-nano-33-ble",
    "coral-devboard",
    "esp32-s3",
    "jetson-nano",
    "rpi-zero-2w",
    "rpi4",
    "rpi5",
    "stm32h7",
]
PROFILES_DIR = bundled_dir("profiles")
runner = CliRunner()


def bundled_dict(name: str) -> dict[str, Any]:
    return yaml.safe_load((PROFILES_DIR / f"{name}.yaml").read_text())


def write_profile(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    return str(caught.value)


# --- the bundled profiles ---------------------------------------------------------------


def test_every_bundled_profile_loads_and_cites_its_sources() -> None:
    assert profile_names() == BUNDLED
    for profile in list_profiles():
        assert profile.name in BUNDLED
        assert profile.sources, f"{profile.name} cites no source for its figures"
        assert all("https://" in source for source in profile.sources)
        assert Profile.model_validate(profile.to_dict()) == profile  # to_dict round-trips


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("rpi4", {"ram_bytes": 4 * 2**30, "int8": True, "fp16": False, "accelerator": "none"}),
        ("rpi-zero-2w", {"ram_bytes": 512 * 2**20}),
        (
            "rpi5",
            {
                "ram_bytes": 8 * 2**30,
                "cpu": {
                    "arch": "aarch64",
                    "cores": 4,
                    "clock_mhz": 2400,
                    "model": "Broadcom BCM2712, 4x Arm Cortex-A76 (Armv8.2-A)",
                    "core": "cortex-a76",
                },
            },
        ),
        ("jetson-nano", {"int8": False, "fp16": True, "accelerator": "gpu"}),
        ("coral-devboard", {"accelerator": "edgetpu", "accelerator_int8_only": True, "ram_bytes": 2**30}),
        ("esp32-s3", {"ram_bytes": 512 * 2**10, "external_ram_bytes": 8 * 2**20}),
        ("arduino-nano-33-ble", {"ram_bytes": 256 * 2**10, "device_class": "microcontroller"}),
        ("stm32h7", {"ram_bytes": 2**20}),
    ],
)
def test_bundled_figures_match_the_datasheets(name: str, expected: dict[str, Any]) -> None:
    facts = load_profile(name).to_dict()
    assert {key: facts[key] for key in expected} == expected


def test_the_device_class_decides_runtime_artifact_and_budget() -> None:
    from edgecompress.budget import Budget

    for profile in list_profiles():
        storage = Budget.of(profile).storage
        if profile.device_class == "microcontroller":
            assert profile.flash_budget_bytes and profile.compression.final_artifact == "tflite-micro"
            assert (storage.measure, storage.bytes) == ("flash_bytes", profile.flash_budget_bytes)
        else:
            assert profile.compression.final_artifact == "tflite"
            assert (storage.measure, storage.bytes) == ("file_bytes", profile.model_memory_budget_bytes)


def test_importing_profiles_does_not_load_tensorflow() -> None:
    code = "import sys, edgecompress.profiles, edgecompress.cli.profiles; print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# --- sizes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "size"),
    [
        (4096, 4096),
        ("4096", 4096),
        ("256KiB", 262144),
        ("256 KiB", 262144),
        ("1MB", 10**6),
        ("1kB", 1000),
        ("1.5GiB", 3 * 2**29),
        ("4GiB", 4 * 2**30),
        ("12B", 12),
    ],
)
def test_sizes_accept_bytes_or_a_unit(written: int | str, size: int) -> None:
    assert parse_size(written) == size


@pytest.mark.parametrize(
    ("written", "complaint"),
    [
        ("8Mb", "unknown unit 'Mb'"),
        ("4 gigs", "unknown unit"),
        ("0.5B", "whole number"),
        (True, "not a size"),
        ("-1KiB", "not a size"),
        ("KiB", "not a size"),
        (1.5, "not a size"),
    ],
)
def test_ambiguous_or_broken_sizes_are_refused(written: Any, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_size(written)


def test_sizes_print_in_the_unit_they_were_written_in() -> None:
    assert [format_size(n) for n in (262144, 4 * 2**30, 10**6, 1536 * 1024, 1000, 12, 1500 * 1024 + 1)] == [
        "256 KiB",
        "4 GiB",
        "1 MB",
        "1536 KiB",
        "1 KB",
        "12 B",
        "1.5 MiB",
    ]


# --- the CLI ----------------------------------------------------------------------------


def test_profiles_list_shows_every_profile_with_its_key_facts() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    for name in BUNDLED:
        assert name in result.output
    rpi4_row = next(line for line in result.output.splitlines() if line.lstrip().startswith("rpi4 "))
    assert all(fact in rpi4_row for fact in ("linux-board", "4x 1.8 GHz", "4 GiB", "1 GiB RAM", "int8", "none"))
    assert "edgetpu*" in result.output and "microcontroller" in result.output


def test_profiles_show_prints_every_field_in_human_units() -> None:
    result = runner.invoke(app, ["show", "stm32h7"])
    assert result.exit_code == 0, result.output
    for field, _ in load_profile("stm32h7").summary_rows():
        assert field in result.output
    assert "1 MiB (1,048,576 bytes)" in result.output
    assert "1536 KiB" in result.output and "tflite-micro" in result.output


def test_profiles_show_json_is_the_profile_dict() -> None:
    result = runner.invoke(app, ["show", "coral-devboard", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == load_profile("coral-devboard").to_dict()


def test_profiles_show_accepts_a_users_file(tmp_path: Path) -> None:
    document = bundled_dict("rpi4") | {"name": "my-pi", "description": "the Pi on my desk"}
    path = write_profile(tmp_path / "desk.yaml", document)
    result = runner.invoke(app, ["show", str(path)])
    assert result.exit_code == 0, result.output
    assert "the Pi on my desk" in result.output


def test_profiles_show_of_an_unknown_name_raises_profile_error_for_the_main_cli() -> None:
    result = runner.invoke(app, ["show", "rpi-4"])
    assert isinstance(result.exception, ProfileError)
    assert "did you mean 'rpi4'?" in str(result.exception)


def test_the_main_cli_prints_profile_errors_as_one_paragraph(capsys: pytest.CaptureFixture[str]) -> None:
    from edgecompress.cli import main

    assert main(["profiles", "show", "jetson"]) == ProfileError.exit_code
    err = capsys.readouterr().err
    assert "did you mean 'jetson-nano'?" in err and "Traceback" not in err


# --- user profiles ------------------------------------------------------------------------


def test_a_user_profile_loads_by_path_in_yaml_or_toml(tmp_path: Path) -> None:
    document = bundled_dict("esp32-s3") | {"name": "my-esp"}
    from_yaml = load_profile(write_profile(tmp_path / "my-esp.yml", document))
    toml = "\n".join(
        [f"{key} = {json.dumps(value)}" for key, value in document.items() if not isinstance(value, dict)]
        + [
            line
            for table in ("cpu", "compression", "programmer")
            for line in [f"[{table}]", *(f"{k} = {json.dumps(v)}" for k, v in document[table].items())]
        ]
    )
    (tmp_path / "my-esp.toml").write_text(toml)
    assert from_yaml == load_profile(tmp_path / "my-esp.toml")
    assert from_yaml.model_memory_budget_bytes == 2 * 2**20 and from_yaml.name == "my-esp"


def test_the_readme_example_is_a_valid_profile(tmp_path: Path) -> None:
    readme = (PROFILES_DIR / "README.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", readme, re.S)
    assert example is not None
    profile = load_profile(write_profile(tmp_path / "example.yaml", yaml.safe_load(example.group(1))))
    assert profile.name == "my-board"


def test_the_readme_documents_every_field() -> None:
    readme = (PROFILES_DIR / "README.md").read_text()
    for field, _ in load_profile("esp32-s3").summary_rows():
        assert f"`{field}`" in readme, f"profiles/README.md does not document {field}"


def test_a_typo_in_a_field_names_file_field_and_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "my-board.yaml"
    path.write_text((PROFILES_DIR / "rpi4.yaml").read_text().replace("int8:", "int8_suport:", 1))
    message = load_error(path)
    assert str(path) in message
    assert "unknown field 'int8_suport' (did you mean 'int8'?)" in message
    assert "missing" not in message  # the misspelt field is not reported a second time


def test_a_typo_in_a_nested_field_gives_its_full_path(tmp_path: Path) -> None:
    document = bundled_dict("rpi4")
    document["compression"]["custers"] = document["compression"].pop("clusters")
    message = load_error(write_profile(tmp_path / "b.yaml", document))
    assert "unknown field 'compression.custers' (did you mean 'compression.clusters'?)" in message


def test_a_field_at_the_wrong_level_is_pointed_home(tmp_path: Path) -> None:
    document = bundled_dict("rpi4") | {"io_dtype": "int8"}
    message = load_error(write_profile(tmp_path / "b.yaml", document))
    assert "unknown field 'io_dtype' (did you mean 'compression.io_dtype'?)" in message


def test_a_bad_choice_lists_the_allowed_values(tmp_path: Path) -> None:
    document = bundled_dict("rpi4")
    document["compression"]["ptq"] = "int4"
    message = load_error(write_profile(tmp_path / "b.yaml", document))
    assert "compression.ptq = int4 is not allowed" in message
    assert "Allowed values: int8, fp16, dynamic, float32." in message


def test_a_bad_list_item_is_named_by_position(tmp_path: Path) -> None:
    document = bundled_dict("rpi4") | {"preferred_runtimes": ["litert", "tensorrt"]}
    message = load_error(write_profile(tmp_path / "b.yaml", document))
    assert "preferred_runtimes[1] = tensorrt is not allowed" in message and "onnxruntime" in message


def test_every_problem_in_a_file_is_reported_at_once(tmp_path: Path) -> None:
    document = bundled_dict("rpi4") | {"fp16": "maybe", "ram_bytes": "4 Gb"}
    del document["description"]
    message = load_error(write_profile(tmp_path / "b.yaml", document))
    assert "has 3 problems" in message
    assert "fp16 = maybe is not allowed. Allowed values: true, false." in message
    assert "ram_bytes = 4 Gb: unknown unit 'Gb' (did you mean 'GB'?)" in message
    assert "required field 'description' is missing" in message


def test_an_unknown_name_lists_the_profiles_and_suggests_one() -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile("rpi-zero")
    assert "did you mean 'rpi-zero-2w'?" in caught.value.problem
    assert all(name in caught.value.problem for name in BUNDLED)
    assert "profiles list" in caught.value.fix


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("name: x\ncpu:\n  arch: aarch64\n cores: 4\n", "line 4"),
        ("name: x\nname: y\n", "duplicate key 'name' (first at line 1)"),
        ("", "is empty"),
        ("- rpi4\n", "must hold a mapping"),
    ],
)
def test_malformed_files_say_where(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(content)
    assert expected in load_error(path)


def test_malformed_toml_says_where(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\nint8 = \n')
    assert "line 2" in load_error(path)


def test_a_missing_file_or_wrong_suffix_is_explained(tmp_path: Path) -> None:
    assert "does not exist" in load_error(tmp_path / "nope.yaml")
    (tmp_path / "board.json").write_text("{}")
    assert "profiles end in .yaml, .yml, .toml" in load_error(tmp_path / "board.json")


# --- consistency rules ----------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        target = document
        for part in parents:
            target = target[part]
        if value is None:
            target.pop(leaf, None)
        else:
            target[leaf] = value

    return edit


#: (starting profile, edits, the field the error must name)
CONTRADICTIONS = {
    "int8 ptq without int8": ("rpi4", [_set("int8", False)], "compression.ptq = int8"),
    "fp16 ptq without fp16": ("jetson-nano", [_set("fp16", False)], "compression.ptq = fp16"),
    "int8 io with fp16 model": ("jetson-nano", [_set("compression.io_dtype", "int8")], "compression.io_dtype = int8"),
    "int8-only without accelerator": ("rpi4", [_set("accelerator_int8_only", True)], "accelerator_int8_only = true"),
    "int8-only without int8": (
        "android-phone",
        [
            _set("accelerator_int8_only", True),
            _set("int8", False),
            _set("compression.ptq", "fp16"),
            _set("compression.io_dtype", "float32"),
        ],
        "int8 = false",
    ),
    "int8-only fed fp16": (
        "coral-devboard",
        [_set("compression.ptq", "fp16"), _set("fp16", True), _set("compression.io_dtype", "float32")],
        "compression.ptq = fp16",
    ),
    "int8-only fed float io": (
        "coral-devboard",
        [_set("compression.io_dtype", "float32")],
        "compression.io_dtype = float32",
    ),
    "int8-only with float layers": (
        "coral-devboard",
        [_set("compression.first_last_precision", "float32")],
        "compression.first_last_precision = float32",
    ),
    "edge tpu not int8-only": (
        "coral-devboard",
        [_set("accelerator_int8_only", False)],
        "accelerator_int8_only = false",
    ),
    "edgetpu runtime without tpu": (
        "rpi4",
        [_set("preferred_runtimes", ["edgetpu", "litert"])],
        "preferred_runtimes = [edgetpu, litert]",
    ),
    "runtime twice": (
        "rpi4",
        [_set("preferred_runtimes", ["litert", "litert"])],
        "preferred_runtimes = [litert, litert]",
    ),
    "mcu without flash budget": ("stm32h7", [_set("flash_budget_bytes", None)], "flash_budget_bytes is not set"),
    "mcu shipping tflite": (
        "stm32h7",
        [_set("compression.final_artifact", "tflite")],
        "compression.final_artifact = tflite",
    ),
    "board shipping tflite-micro": (
        "rpi4",
        [_set("compression.final_artifact", "tflite-micro")],
        "compression.final_artifact = tflite-micro",
    ),
    "mcu without tflite-micro": ("esp32-s3", [_set("preferred_runtimes", ["litert"])], "preferred_runtimes = [litert]"),
    "board with tflite-micro": (
        "rpi4",
        [_set("preferred_runtimes", ["tflite-micro"])],
        "preferred_runtimes = [tflite-micro]",
    ),
    "tflite-micro dynamic range": (
        "stm32h7",
        [_set("compression.ptq", "dynamic"), _set("compression.io_dtype", "float32")],
        "compression.ptq = dynamic",
    ),
    "mcu without core": ("stm32h7", [_set("cpu.core", None)], "cpu.core is not set"),
    "core of another arch": ("rpi4", [_set("cpu.core", "cortex-m7")], "cpu.core = cortex-m7"),
    "model flash budget off a microcontroller": (
        "rpi4",
        [_set("model_flash_budget_bytes", "64KiB")],
        "model_flash_budget_bytes = 65536",
    ),
    "model flash budget over the firmware's": (
        "arduino-nano-33-ble",
        [_set("model_flash_budget_bytes", "600KiB")],
        "model_flash_budget_bytes = 614400",
    ),
    "budget over ram": (
        "arduino-nano-33-ble",
        [_set("model_memory_budget_bytes", "300KiB")],
        "model_memory_budget_bytes = 307200",
    ),
}


@pytest.mark.parametrize("case", sorted(CONTRADICTIONS))
def test_contradicting_fields_are_refused_naming_the_field(case: str, tmp_path: Path) -> None:
    start, edits, field = CONTRADICTIONS[case]
    document = bundled_dict(start) | {"name": "edited"}
    for edit in edits:
        edit(document)
    path = write_profile(tmp_path / "edited.yaml", document)
    message = load_error(path)
    assert str(path) in message and field in message, message


def test_every_consistency_rule_has_a_case(tmp_path: Path) -> None:
    messages = []
    for start, edits, _ in CONTRADICTIONS.values():
        document = bundled_dict(start)
        for edit in edits:
            edit(document)
        messages.append(load_error(write_profile(tmp_path / f"{start}.yaml", document)))
    untested = [
        rule.why for rule in CONSISTENCY_RULES if not any(rule.why.split("{")[0] in message for message in messages)
    ]
    assert untested == []


def test_psram_counts_toward_the_memory_budget(tmp_path: Path) -> None:
    document = bundled_dict("esp32-s3")
    assert load_profile(write_profile(tmp_path / "ok.yaml", document)).usable_ram_bytes == 512 * 2**10 + 8 * 2**20
    document["external_ram_bytes"] = None
    assert "model_memory_budget_bytes" in load_error(write_profile(tmp_path / "no-psram.yaml", document))


def test_profile_strategies_are_the_ones_the_planner_knows() -> None:
    from edgecompress.compression.recipes import AUTO, STRATEGIES

    assert get_args(Strategy) == (AUTO, *(strategy.name for strategy in STRATEGIES))
