"""The command line's habits: --version, errors as one JSON document with --json, help that guides
(panels, choices, one style of default, required options marked, no markup), the exit-code table,
the dry run's checks, and profiles people can write. Nothing here deploys."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from rich.text import Text

import edgecompress
from edgecompress.cli import _mount_commands, app, main
from edgecompress.cli.options import tidy_help
from edgecompress.errors import EXIT_CODES, EdgeCompressError

README = Path(__file__).resolve().parents[1] / "README.md"


def command_tree() -> typer.main.TyperGroup:
    if not app.registered_commands:
        _mount_commands()
    return tidy_help(typer.main.get_command(app))


def every_command(group=None, path=("edgecompress",)):  # noqa: ANN001, ANN201
    group = group or command_tree()
    for name, command in getattr(group, "commands", {}).items():
        yield (*path, name), command
        yield from every_command(command, (*path, name))


def test_version_flag_and_command_print_the_version(capsys) -> None:
    assert main(["--version"]) == 0
    assert main(["version"]) == 0
    assert capsys.readouterr().out.split() == [edgecompress.__version__] * 2


def test_with_json_an_error_is_one_json_document_on_stdout(tmp_path: Path, capsys) -> None:
    code = main(["deploy", "--profile", "rpi-4", str(tmp_path / "m.h5"), "--data", "sklearn:digits", "--json"])
    captured = capsys.readouterr()
    document = json.loads(captured.out)  # the whole of stdout is one document
    assert code == 2 == document["exit_code"]
    assert document["schema"] == "edgecompress.error" and document["error"] == "ProfileError"
    assert "rpi-4" in document["problem"] and "profiles list" in document["fix"]
    assert "rpi-4" in captured.err  # the paragraph is still there for a person


def test_with_json_a_usage_error_is_a_json_document_too(capsys) -> None:
    code = main(["deploy", "model.h5", "--profile", "rpi4", "--data", "sklearn:digits", "--scaling", "0-9", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 2 == document["exit_code"]
    assert document["error"] == "BadParameter" and "--scaling" in document["problem"] and "--help" in document["fix"]


def test_deploy_without_data_is_refused_not_defaulted(tmp_path: Path, capsys) -> None:
    assert main(["deploy", "--profile", "rpi4", str(tmp_path / "m.h5")]) == 2
    assert "--data" in capsys.readouterr().err


def test_resume_needs_no_model_profile_or_data(tmp_path: Path, capsys) -> None:
    assert main(["deploy", "--resume", str(tmp_path)]) == 2
    assert "is not a resumable run folder" in capsys.readouterr().err  # got past the required options


def test_every_option_has_help_and_no_python_type_shows(help_of) -> None:
    for path, command in every_command():
        for param in command.params:
            if param.param_type_name == "option":
                assert (param.help or "").strip(), f"{' '.join(path)} {param.opts} has no help"
        shown = help_of(path)
        for leak in ("<bool>", "<str>", "<int>", "<float>", "<path>", "list[", "<list"):
            assert leak not in shown, f"{' '.join(path)} --help shows {leak}"


def test_help_texts_contain_no_console_markup() -> None:
    """Help is rendered by Rich with markup on: a bracket that looks like a tag would vanish from it."""
    for path, command in every_command():
        texts = [command.help or ""] + [param.help or "" for param in command.params if hasattr(param, "help")]
        for text in texts:
            assert Text.from_markup(text).plain == text, f"{' '.join(path)}: {text!r}"


def test_fixed_value_options_are_choices_listed_in_help(help_of) -> None:
    deploy = help_of(("edgecompress", "deploy"))
    for listed in (
        "[0-1|0-255|-1-1]",
        "[twonn|pca]",
        "[median|p90]",
        "[size|latency|accuracy]",
        "[cmsis_nn|reference]",
    ):
        assert listed in "".join(deploy.split()), listed
    assert "ptq-int8, ptq-fp16" in " ".join(deploy.replace("│", " ").split())  # recipes named in --recipe's help


def test_deploy_help_groups_options_in_panels_and_marks_required_ones(help_of) -> None:
    shown = help_of(("edgecompress", "deploy"))
    panels = ["Model and data", "Target, timing and SSH", "Compression and fine-tuning", "Acceptance rules"]
    panels += ["Microcontroller", "Output"]
    positions = [shown.index(f"─ {panel} ") for panel in panels]
    assert positions == sorted(positions)
    for option in ("--profile", "--data"):
        line = next(line for line in shown.splitlines() if line.startswith("│") and option + " " in line)
        assert line.lstrip("│ ").startswith("*"), line
    assert "(default" not in shown  # one style of default: typer's [default: ...]


@pytest.fixture()
def help_of(capsys, monkeypatch):  # noqa: ANN001, ANN201
    """`edgecompress ... --help` as printed in a 120-column terminal."""
    monkeypatch.setenv("COLUMNS", "120")

    def shown(path: tuple[str, ...]) -> str:
        capsys.readouterr()
        assert main([*path[1:], "--help"]) == 0
        return capsys.readouterr().out

    return shown


def test_the_readme_exit_code_table_is_errors_py() -> None:
    section = README.read_text().split("### Exit codes", 1)[1]
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", section.split("\n\n", 2)[1], re.M)
    assert {int(code): meaning for code, meaning in rows} == EXIT_CODES
    command_tree()  # imports every command module, and with them every error class

    def classes(cls):  # noqa: ANN001, ANN202
        for sub in cls.__subclasses__():
            yield sub
            yield from classes(sub)

    import edgecompress.tune.engine  # noqa: F401 - the Ray errors live there
    import edgecompress.tune.search  # noqa: F401

    assert {cls.exit_code for cls in classes(EdgeCompressError)} | {EdgeCompressError.exit_code} <= set(EXIT_CODES)


@pytest.mark.parametrize(
    "options, named",
    [(["--rounds", "0"], "--rounds 0 (at least 1)"), (["--cooldown", "-1"], "--cooldown -1.0 (seconds, 0 or more)")],
)
def test_timing_that_cannot_be_measured_is_refused_before_a_run_folder_exists(
    tiny_h5: Path, tmp_path: Path, capsys, options: list[str], named: str
) -> None:
    runs = tmp_path / "runs"
    code = main(["deploy", "--profile", "rpi4", str(tiny_h5), "--data", "sklearn:digits", "-o", str(runs), *options])
    err = capsys.readouterr().err
    assert code == 2 and named in err and "Traceback" not in err
    assert not runs.exists() or not any(runs.iterdir())


# ------------------------------------------------------------------------------ dry run


def test_dry_run_checks_the_identity_file_without_connecting(tiny_h5: Path, tmp_path: Path, capsys) -> None:
    missing = tmp_path / "id_missing"
    code = main(
        ["deploy", "--profile", "rpi4", str(tiny_h5), "--data", "sklearn:digits", "--dry-run"]
        + ["--target", "ssh://pi@192.0.2.1", "--identity", str(missing)]
    )
    assert code == 3
    assert f"The SSH identity file {missing} does not exist" in capsys.readouterr().err


def test_dry_run_lists_each_target_and_what_it_knows(tiny_h5: Path, tmp_path: Path, capsys) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    code = main(
        ["deploy", "--profile", "rpi4", str(tiny_h5), "--data", "sklearn:digits", "--dry-run"]
        + ["--target", "local", "--target", "ssh://pi@192.0.2.1:2222", "--known-hosts", str(known_hosts)]
    )
    err = " ".join(capsys.readouterr().err.split())
    assert code == 0
    assert "Target local (not contacted): this machine" in err and "a stand-in for rpi4" in err
    assert "Target ssh://pi@192.0.2.1:2222 (not contacted): ssh pi@192.0.2.1:2222" in err
    assert f"host key not in {known_hosts}: deploy will refuse the board unless --accept-new-host-key" in err


# ------------------------------------------------------------------------------ profiles people can write


def test_profiles_init_writes_a_commented_profile_that_loads(tmp_path: Path, monkeypatch, capsys) -> None:
    from edgecompress.profiles import load_profile

    monkeypatch.chdir(tmp_path)
    assert main(["profiles", "init", "my-board", "--from", "rpi5"]) == 0
    written = (tmp_path / "my-board.yaml").read_text()
    assert written.count("\n# ") > 10 and "flash the whole TFLite Micro firmware" not in written  # rpi5 has none
    mine, source = load_profile("./my-board.yaml"), load_profile("rpi5")
    assert mine.name == "my-board"
    assert mine.to_dict() | {"name": "rpi5", "description": source.description} == source.to_dict()
    assert main(["profiles", "init", "my-board"]) == 2  # never over an existing file
    assert "already exists" in capsys.readouterr().err


def test_decimal_units_on_a_microcontroller_and_missing_wheels_are_warned(tmp_path: Path, capsys) -> None:
    board = (Path(edgecompress.__file__).parents[1] / "profiles" / "arduino-nano-33-ble.yaml").read_text()
    path = tmp_path / "mcu.yaml"
    path.write_text(board.replace("ram_bytes: 256KiB", "ram_bytes: 320 KB"))
    assert main(["profiles", "show", str(path)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "ram_bytes: 320 KB is decimal, 320,000 bytes" in err and "Write 320KiB" in err

    from edgecompress.profiles import load_profile, with_overrides

    old_pi = with_overrides(load_profile("rpi4"), {"cpu": {"arch": "armv6l", "core": None}})
    (warning,) = old_pi.warnings
    assert "armv6l, for which litert and onnxruntime have no wheel on PyPI" in warning
    assert "tflite-runtime" in warning
    assert load_profile("rpi4").warnings == []


# ------------------------------------------------------------------------------ where the numbers come from


def test_a_target_is_a_stand_in_when_it_is_not_the_profiles_device() -> None:
    from edgecompress.hardware import stand_in

    rpi4 = {"name": "rpi4", "cpu": {"arch": "aarch64"}}
    local = {"name": "local", "probe": {"platform": {"machine": "x86_64"}}}
    assert stand_in(rpi4, local).words == (
        "timed on this x86-64 host, a stand-in for rpi4: latency does not transfer; sizes and accuracy do"
    )
    assert stand_in(rpi4, {"name": "pi", "probe": {"platform": {"machine": "arm64"}}}) is None
    qemu = {"name": "qemu", "probe": {"platform": {"machine": "Cortex-M (emulated)"}}}
    words = stand_in({"name": "stm32h7", "cpu": {"arch": "armv7e-m"}}, qemu).words
    assert words.startswith("run on an emulated Cortex-M board (QEMU), a stand-in for stm32h7")


@pytest.mark.slow  # the report of a real deploy
@pytest.mark.parametrize("wide", [False, True])
def test_the_results_table_fits_80_columns_and_wide_shows_everything(report: dict, wide: bool) -> None:
    from io import StringIO

    from rich.console import Console

    from edgecompress.reporting.terminal import render_summary

    console = Console(file=StringIO(), width=80 if not wide else 250)
    console.print(render_summary(report, wide=wide))
    text = console.file.getvalue()
    assert "…" not in text and all(len(line) <= console.width for line in text.splitlines())
    assert "★" in text and "a stand-in" in text
    assert ("bit-packed" in text and "p90 ms" in text) == wide
    assert "instructions" not in text  # empty in every row of a Linux run: left out


@pytest.mark.parametrize("columns", [80, 200])
def test_a_plan_table_keeps_whole_words_and_leaves_out_the_type_when_narrow(columns: int) -> None:
    """A public model's layer names and types do not all fit 80 columns: the type column goes, no word is cut."""
    from io import StringIO

    from rich.console import Console

    from edgecompress.reporting.terminal import compact_table

    table = compact_table("plan", optional=("type",))
    for header in ("layer", "type", "role", "params", "recipe", "setting", "est.\nbytes", "note"):
        table.add_column(header, no_wrap=header == "layer")
    table.add_row(
        "batch_normalization_2", "BatchNormalization", "insignificant", "18,432", "clustering", "16 clusters",
        "10,496", "no kernel: only the export mode applies",
    )  # fmt: skip
    console = Console(file=StringIO(), width=columns)
    console.print(table)
    text = console.file.getvalue()
    assert "…" not in text and "batch_normalization_2" in text and "insignificant" in text and "10,496" in text
    assert ("BatchNormalization" in text) == (columns == 200)
    assert max(len(line.rstrip()) for line in text.splitlines()) <= columns


def test_ctrl_c_that_breaks_a_clean_up_still_ends_with_130(monkeypatch, capsys, ctrl_c) -> None:
    """Ctrl-C inside a library's clean-up (Optuna releasing its journal lock) makes it fail in turn:
    the command still ends as interrupted, 130, without a traceback."""
    import os
    import signal

    from edgecompress.cli import deploy as deploy_command

    def interrupted_mid_clean_up(options) -> None:  # noqa: ANN001
        try:
            os.kill(os.getpid(), signal.SIGINT)
            signal.pause() if hasattr(signal, "pause") else None
        except KeyboardInterrupt:
            raise FileNotFoundError("study.journal.lock") from None

    monkeypatch.setattr(deploy_command, "_run", interrupted_mid_clean_up)
    assert main(["deploy", "--resume", "somewhere"]) == 130
    err = capsys.readouterr().err
    assert "Interrupted. (FileNotFoundError: study.journal.lock)" in err and "Traceback" not in err


def test_debug_does_not_outlive_its_command(tmp_path: Path, monkeypatch) -> None:
    import os

    monkeypatch.delenv("EDGECOMPRESS_DEBUG", raising=False)
    main(["deploy", "--profile", "rpi-4", str(tmp_path / "m.h5"), "--data", "sklearn:digits", "--debug"])
    assert "EDGECOMPRESS_DEBUG" not in os.environ  # later commands in this process are quiet again
