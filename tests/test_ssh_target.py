"""`--target ssh://...`: measuring on a board over SSH, against a real OpenSSH server.

The "board" is this machine behind a throw-away sshd on 127.0.0.1 (see tests/sshd.py), so
each test can also look at the board's disk and processes directly: what was written under
which name, and whether a runner is still alive after Ctrl-C.
"""

from __future__ import annotations

import _thread
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import paramiko
import pytest
from sshd import SshServer, keygen, processes_running_in, start_sshd

from edgecompress.errors import TargetError
from edgecompress.resources import runner_script
from edgecompress.targets import MeasureJob, resolve_target
from edgecompress.targets.ssh import SshTarget, ssh_target_from_spec
from edgecompress.targets.ssh_config import load_definition
from edgecompress.targets.ssh_transfer import HEADROOM_BYTES

pytestmark = [pytest.mark.slow, pytest.mark.ssh]

LONG_RUN = 10**7  # timed inferences no test waits for: the run is always stopped first


@pytest.fixture
def known_hosts(sshd: SshServer, tmp_path: Path) -> Path:
    return sshd.write_known_hosts(tmp_path / "known_hosts")


@pytest.fixture
def board_dir(tmp_path: Path) -> Path:
    """The remote work dir: on the board, which here is this machine."""
    return tmp_path / "board"


def connect(
    server: SshServer, known_hosts: Path, board_dir: Path, *, python: str = sys.executable, **options
) -> SshTarget:
    options.setdefault("identity", server.user_key)
    options.setdefault("retries", 0)
    options.setdefault("retry_delay", 0.1)
    return ssh_target_from_spec(
        server.url(python=python, remote_dir=str(board_dir)), known_hosts=known_hosts, **options
    )


def cached_files(board_dir: Path) -> dict[str, Path]:
    return {p.name: p for p in (board_dir / "cache").iterdir()} if (board_dir / "cache").is_dir() else {}


def sha256_name(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest() + path.suffix


def big_eval_npz(path: Path, samples: int) -> Path:
    """A valid eval set for the tiny digits model, big enough that an upload takes many SFTP writes."""
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x=rng.random((samples, 8, 8, 1), dtype=np.float32),
        y=rng.integers(0, 10, samples),
        class_names=np.array([str(d) for d in range(10)]),
        output_kind=np.array("softmax"),
    )
    return path


def wait_until_gone(board_dir: Path, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (alive := processes_running_in(board_dir)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


# --------------------------------------------------------------------------- measuring


def test_measures_a_real_tflite_on_the_board(
    sshd: SshServer, known_hosts: Path, board_dir: Path, tiny_tflite_fp32: Path, eval_npz: Path
) -> None:
    lines: list[str] = []
    with connect(sshd, known_hosts, board_dir, progress=lines.append) as board:
        measurement = board.measure(MeasureJob(tiny_tflite_fp32, eval_npz, warmup=3, runs=25, threads=1))

    result = measurement.result
    assert measurement.target == f"{sshd.user}@127.0.0.1:{sshd.port}"
    assert result["runtime"]["name"] == "ai_edge_litert" and result["threads"] == 1
    assert result["latency_ms"]["runs"] == 25 and len(result["latency_ms"]["samples"]) == 25
    assert 0 < result["latency_ms"]["median"] <= result["latency_ms"]["p90"]
    assert result["memory"]["peak_rss_bytes"] > 10_000_000
    assert result["accuracy"]["n"] == 360 and result["accuracy"]["overall"] > 0.85
    assert set(result["accuracy"]["per_class"]) == {str(d) for d in range(10)}
    # the model measured is byte for byte the one we have
    assert result["model"]["sha256"] + ".tflite" == sha256_name(tiny_tflite_fp32)
    # the probe (arch, Python, memory, disk, runtimes) travels with the measurement
    device = measurement.device
    assert device["platform"]["machine"] and device["memory"]["total_bytes"] > 0 and device["disk_free_bytes"] > 0
    assert device["runtimes"]["ai_edge_litert"] and device["ssh"]["work_dir"] == str(board_dir)
    # progress was streamed while it ran, and the runner's stderr is kept as the log
    assert any("timed runs 25" in line for line in lines) and "timed runs 25" in measurement.log
    # the run folder is gone; the content-addressed cache stays for next time
    assert list((board_dir / "runs").iterdir()) == []
    assert set(cached_files(board_dir)) >= {sha256_name(tiny_tflite_fp32), sha256_name(eval_npz)}


def test_files_already_on_the_board_are_not_sent_again(
    sshd: SshServer, known_hosts: Path, board_dir: Path, tiny_tflite_fp32: Path, eval_npz: Path
) -> None:
    job = MeasureJob(tiny_tflite_fp32, eval_npz, warmup=1, runs=5)
    with connect(sshd, known_hosts, board_dir) as board:
        first = board.measure(job)
    on_board = cached_files(board_dir)[sha256_name(eval_npz)]
    before = on_board.stat()

    with connect(sshd, known_hosts, board_dir) as board:  # a new session, as a second deploy would open
        second = board.measure(job)

    assert [u["sent"] for u in first.device["ssh"]["uploads"]] == [False, True, True]  # runner sent by the probe
    assert [u["sent"] for u in second.device["ssh"]["uploads"]] == [False, False, False]
    after = on_board.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not rewritten either


def test_keep_remote_leaves_a_self_contained_run_folder(
    sshd: SshServer, known_hosts: Path, board_dir: Path, tiny_tflite_fp32: Path, eval_npz: Path
) -> None:
    with connect(sshd, known_hosts, board_dir, keep_remote=True) as board:
        measurement = board.measure(MeasureJob(tiny_tflite_fp32, eval_npz, warmup=1, runs=5))

    run_dir = Path(measurement.device["ssh"]["run_dir"])
    assert run_dir.parent == board_dir / "runs"
    names = {p.name for p in run_dir.iterdir()}
    assert {"edgecompress_runner.py", tiny_tflite_fp32.name, "eval.npz", "latency_samples.json", "runner.pid"} <= names
    assert (run_dir / tiny_tflite_fp32.name).read_bytes() == tiny_tflite_fp32.read_bytes()


def test_remote_paths_are_never_interpreted_by_a_shell(
    sshd: SshServer, known_hosts: Path, tmp_path: Path, tiny_tflite_fp32: Path, eval_npz: Path
) -> None:
    marker = f"INJECTED-{uuid.uuid4().hex[:8]}"
    board_dir = tmp_path / f"my board; touch {marker} $(touch {marker}) 'q\" `touch {marker}`"
    with connect(sshd, known_hosts, board_dir) as board:
        measurement = board.measure(MeasureJob(tiny_tflite_fp32, eval_npz, warmup=1, runs=3))

    assert measurement.result["accuracy"]["n"] == 360
    assert board_dir.is_dir()
    for place in (Path.home(), tmp_path, board_dir, board_dir / "runs"):
        assert not (place / marker).exists()


# --------------------------------------------------------------------------- boards that answer in text


def fake_python(path: Path, script: str) -> str:
    """A board's `python` that is really a shell script: what a wrapper, a login banner or a wrong path gives."""
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


BANNER = "printf 'Welcome to BoardOS 1.2 (build 7)\\n\\033[31m[bold red]Python is managed by the vendor[/bold red]\\033[0m\\n'\n"


def test_a_board_whose_python_prints_text_is_named_with_its_first_lines(
    sshd: SshServer, known_hosts: Path, board_dir: Path, tmp_path: Path
) -> None:
    python = fake_python(tmp_path / "python3", BANNER + "exit 0\n")

    with pytest.raises(TargetError) as caught, connect(sshd, known_hosts, board_dir, python=python) as board:
        board.probe()

    problem = caught.value.problem
    assert problem.startswith(f"[{board.name}] ") and python in problem
    assert "answer in JSON" in problem
    # what it printed, line by line, with the terminal escape shown rather than sent to the terminal
    assert "    | Welcome to BoardOS 1.2 (build 7)\n" in problem
    assert "    | \\x1b[31m[bold red]Python is managed by the vendor[/bold red]\\x1b[0m" in problem
    assert "\x1b" not in problem
    assert "python:" in caught.value.fix and f"{python} --version" in caught.value.fix


def test_a_runner_answering_in_text_is_named_with_its_first_lines(
    sshd: SshServer, known_hosts: Path, board_dir: Path, tmp_path: Path, tiny_tflite_fp32: Path, eval_npz: Path
) -> None:
    """Helpers run (the interpreter works for `-c`), but running a script prints text and no JSON."""
    script = f'if [ "$1" = "-c" ]; then exec {sys.executable} "$@"; fi\n' + BANNER + "exit 0\n"
    python = fake_python(tmp_path / "python3", script)

    with pytest.raises(TargetError) as caught, connect(sshd, known_hosts, board_dir, python=python) as board:
        board.measure(MeasureJob(tiny_tflite_fp32, eval_npz, warmup=1, runs=3))

    assert caught.value.step == "probe"
    assert f"[{board.name}] probe failed" in caught.value.problem and "runner (probe)" in caught.value.problem
    assert "    | Welcome to BoardOS 1.2 (build 7)" in caught.value.problem and "\x1b" not in caught.value.problem


def test_terminal_escapes_from_the_board_are_shown_not_obeyed(
    sshd: SshServer, known_hosts: Path, board_dir: Path, tmp_path: Path, tiny_tflite_fp32: Path, eval_npz: Path
) -> None:
    """A board's stderr reaches the user's terminal: an escape sequence in it (retitle, clear screen) is shown as text."""
    script = f'if [ "$1" != "-c" ]; then printf \'\\033]0;owned\\007\\033[2Jhello from the board\\n\' >&2; fi\nexec {sys.executable} "$@"\n'
    python = fake_python(tmp_path / "python3", script)
    lines: list[str] = []

    with connect(sshd, known_hosts, board_dir, python=python, progress=lines.append) as board:
        measurement = board.measure(MeasureJob(tiny_tflite_fp32, eval_npz, warmup=1, runs=3))

    shown = [line for line in lines if "hello from the board" in line]
    assert shown and all("\\x1b]0;owned\\x07\\x1b[2J" in line for line in shown)
    assert not any("\x1b" in line or "\x07" in line for line in lines)
    assert "\x1b" not in measurement.log and "hello from the board" in measurement.log


def test_deploy_to_a_board_that_prints_text_ends_without_a_traceback(
    sshd: SshServer,
    known_hosts: Path,
    board_dir: Path,
    tmp_path: Path,
    tiny_h5: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from edgecompress.cli import main

    python = fake_python(tmp_path / "python3", "echo 'Welcome to BoardOS 1.2'\necho 'Last login: yesterday'\n")
    code = main(
        [
            "deploy",
            "--data",
            "sklearn:digits",
            "--profile",
            "rpi4",
            str(tiny_h5),
            "--target",
            sshd.url(python=python, remote_dir=str(board_dir)),
            "--identity",
            str(sshd.user_key),
            "--known-hosts",
            str(known_hosts),
            "--output",
            str(tmp_path / "runs"),
        ]
    )

    err = capsys.readouterr().err
    assert code == TargetError.exit_code and "Traceback" not in err
    assert "Welcome to BoardOS 1.2" in err and "Last login: yesterday" in err and "python:" in err


@pytest.mark.parametrize(
    ("edit", "when", "step", "said"),
    [
        ('doc["latency_ms"] = "fast"', "--model", "check", "latency_ms.runs is missing"),
        ('raw = b"[" * 100000 + b"]" * 100000', "--model", "run", "answer in JSON"),
        ('doc["platform"] = "a toaster"', "--probe", "probe", "platform is 'a toaster', not an object"),
    ],
    ids=["latency-as-text", "nested-too-deep", "probe-platform-as-text"],
)
def test_a_board_answering_in_the_wrong_shape_is_a_named_failure(
    edit: str,
    when: str,
    step: str,
    said: str,
    sshd: SshServer,
    known_hosts: Path,
    board_dir: Path,
    tmp_path: Path,
    tiny_tflite_fp32: Path,
    eval_npz: Path,
) -> None:
    from board_pythons import tampering_python

    from edgecompress.targets.fleet import measure_fleet

    python = tampering_python(tmp_path / "python3", edit, when=when)
    with connect(sshd, known_hosts, board_dir, python=str(python)) as board:
        result = measure_fleet([board], MeasureJob(tiny_tflite_fp32, eval_npz, warmup=1, runs=3))

    error = result.errors[board.name]
    assert error.step == step and error.problem.startswith(f"[{board.name}] {step} failed") and said in error.problem
    assert result.measurements == {}


def test_a_board_flooding_stdout_is_stopped_not_buffered_forever(
    sshd: SshServer,
    known_hosts: Path,
    board_dir: Path,
    tmp_path: Path,
    tiny_tflite_fp32: Path,
    eval_npz: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from board_pythons import tampering_python

    from edgecompress.targets import ssh_connection
    from edgecompress.targets.fleet import measure_fleet

    monkeypatch.setattr(ssh_connection, "MAX_STDOUT_BYTES", 1 << 20)
    python = tampering_python(tmp_path / "python3", 'raw = b"x" * (3 << 20)')
    with connect(sshd, known_hosts, board_dir, python=str(python)) as board:
        result = measure_fleet([board], MeasureJob(tiny_tflite_fp32, eval_npz, warmup=1, runs=3))

    assert "more than 1 MiB on standard output" in result.errors[board.name].problem
    assert result.measurements == {}


# --------------------------------------------------------------------------- boards without SFTP


@pytest.mark.parametrize(
    "sftp", [None, "/usr/lib/openssh/no-such-sftp-server"], ids=["no-subsystem", "sftp-server-missing"]
)
def test_a_board_without_sftp_gets_its_files_over_the_exec_channel(
    sftp: str | None, tmp_path: Path, board_dir: Path, tiny_tflite_fp32: Path, eval_npz: Path
) -> None:
    """Dropbear without sftp-server, stripped images, `Subsystem` removed from sshd_config: still measured."""
    server = start_sshd(tmp_path / "sshd", sftp=sftp)
    known_hosts = server.write_known_hosts(tmp_path / "known_hosts")
    said: list[str] = []
    job = MeasureJob(tiny_tflite_fp32, eval_npz, warmup=1, runs=5)
    try:
        with connect(server, known_hosts, board_dir, progress=said.append) as board:
            first = board.measure(job)
        with connect(server, known_hosts, board_dir) as board:  # a second deploy: the cache still works
            second = board.measure(job)
    finally:
        server.kill()

    assert any("offers no SFTP" in line and "command channel" in line for line in said)
    assert first.device["ssh"]["file_transfer"] == "exec"
    assert first.result["accuracy"]["n"] == 360 and len(first.result["latency_ms"]["samples"]) == 5
    assert first.result["model"]["sha256"] + ".tflite" == sha256_name(tiny_tflite_fp32)
    assert [u["sent"] for u in first.device["ssh"]["uploads"]] == [False, True, True]  # runner sent by the probe
    assert [u["sent"] for u in second.device["ssh"]["uploads"]] == [False, False, False]
    cached = cached_files(board_dir)
    for local in (tiny_tflite_fp32, eval_npz, runner_script()):
        assert cached[sha256_name(local)].read_bytes() == local.read_bytes()
    assert not [name for name in cached if name.endswith(".part")]
    assert list((board_dir / "runs").iterdir()) == []


def test_without_sftp_a_server_killed_mid_upload_leaves_no_half_file(tmp_path: Path, tiny_tflite_fp32: Path) -> None:
    server = start_sshd(tmp_path / "sshd", sftp=None)
    known_hosts = server.write_known_hosts(tmp_path / "known_hosts")
    board_dir = tmp_path / "board"
    eval_data = big_eval_npz(tmp_path / "eval.npz", samples=4000)  # 1 MB over the command channel

    def kill_at_ten_percent(line: str) -> None:
        if "upload eval.npz: 10%" in line:
            server.kill()

    job = MeasureJob(tiny_tflite_fp32, eval_data, warmup=1, runs=3)
    try:
        with (
            pytest.raises(TargetError) as caught,
            connect(server, known_hosts, board_dir, progress=kill_at_ten_percent) as board,
        ):
            board.measure(job)
        assert caught.value.step == "upload" and "Lost the connection" in caught.value.problem
        assert sha256_name(eval_data) not in cached_files(board_dir)  # only ever a .part name

        server.start()
        with connect(server, known_hosts, board_dir) as board:
            measurement = board.measure(job)
    finally:
        server.kill()
    assert measurement.result["accuracy"]["n"] == 4000
    assert cached_files(board_dir)[sha256_name(eval_data)].read_bytes() == eval_data.read_bytes()


# --------------------------------------------------------------------------- trust and login


def test_unknown_host_key_is_refused_with_its_fingerprint(sshd: SshServer, tmp_path: Path, board_dir: Path) -> None:
    known_hosts = tmp_path / "empty_known_hosts"
    expected = subprocess.run(
        ["ssh-keygen", "-lf", str(sshd.host_key) + ".pub"], capture_output=True, text=True, check=True
    ).stdout.split()[1]

    with pytest.raises(TargetError) as caught, connect(sshd, known_hosts, board_dir) as board:
        board.probe()

    error = caught.value
    assert error.step == "connect"
    assert expected in error.problem and expected.startswith("SHA256:")
    assert "--accept-new-host-key" in error.fix
    assert not known_hosts.exists()  # nothing recorded without consent
    assert not board_dir.exists()  # and nothing sent


def test_accept_new_host_key_records_it_for_next_time(sshd: SshServer, tmp_path: Path, board_dir: Path) -> None:
    known_hosts = tmp_path / "ssh" / "known_hosts"
    known_hosts.parent.mkdir()
    known_hosts.write_text("# my own notes stay\n")

    with connect(sshd, known_hosts, board_dir, accept_new_host_key=True) as board:
        board.probe()

    assert known_hosts.read_text().startswith("# my own notes stay\n")
    recorded = paramiko.HostKeys(str(known_hosts)).lookup(f"[127.0.0.1]:{sshd.port}")
    assert recorded is not None and recorded["ssh-ed25519"].get_base64() == sshd.known_hosts_line().split()[2]
    with connect(sshd, known_hosts, board_dir) as board:  # now trusted without the flag
        assert board.probe()["runtimes"]["ai_edge_litert"]


def test_changed_host_key_is_refused_even_with_accept_new(sshd: SshServer, tmp_path: Path, board_dir: Path) -> None:
    impostor_key = keygen(tmp_path / "old_host_key")
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts", key=impostor_key)
    before = known_hosts.read_text()

    with pytest.raises(TargetError) as caught, connect(sshd, known_hosts, board_dir, accept_new_host_key=True) as board:
        board.probe()

    assert "HAS CHANGED" in caught.value.problem and "man-in-the-middle" in caught.value.problem
    assert paramiko.PKey.from_path(impostor_key).fingerprint in caught.value.problem
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}'" in caught.value.fix
    assert known_hosts.read_text() == before
    assert not board_dir.exists()


def test_a_key_the_board_does_not_know_is_refused(
    sshd: SshServer, known_hosts: Path, tmp_path: Path, board_dir: Path
) -> None:
    stranger = keygen(tmp_path / "stranger_key")
    started = time.monotonic()

    with (
        pytest.raises(TargetError) as caught,
        connect(sshd, known_hosts, board_dir, identity=stranger, retries=3) as board,
    ):
        board.probe()

    assert caught.value.step == "connect"
    assert "refused to log in" in caught.value.problem and "ssh-copy-id" in caught.value.fix
    assert time.monotonic() - started < 10  # a refused login is not retried
    assert f"Failed publickey for {sshd.user}" in sshd.log_text() or "Connection closed" in sshd.log_text()


def test_the_commands_in_a_login_refusal_are_quoted_for_the_shell(
    sshd: SshServer, known_hosts: Path, tmp_path: Path, board_dir: Path
) -> None:
    """A user name with a quote and a key in a folder with a space: the ssh-copy-id line still pastes and runs."""
    keys = tmp_path / "my keys"
    keys.mkdir()
    key = keygen(keys / "id_ed25519")
    target_file = tmp_path / "odd-user.yaml"
    target_file.write_text(f'host: 127.0.0.1\nport: {sshd.port}\nuser: "o\'neil"\nremote_dir: {board_dir}\n')

    with (
        pytest.raises(TargetError) as caught,
        resolve_target(str(target_file), identity=key, known_hosts=known_hosts, retries=0) as board,
    ):
        board.probe()

    quoted_key, quoted_login = shlex.quote(f"{key}.pub"), shlex.quote("o'neil@127.0.0.1")
    assert quoted_key.startswith("'") and quoted_login.startswith("'")
    assert f"ssh-copy-id -i {quoted_key} -p {sshd.port} {quoted_login}" in caught.value.fix
    assert shlex.split(f"ssh-copy-id -i {quoted_key} -p {sshd.port} {quoted_login}")[-1] == "o'neil@127.0.0.1"


def test_the_boards_python_is_quoted_word_by_word_in_commands() -> None:
    """`python:` is a command line (it may carry flags); a path with spaces or quotes is quoted in it, as in a shell."""
    from edgecompress.targets.ssh_board_tools import python_shell

    assert python_shell("'~/my env/bin/python' -I") == "~/'my env/bin/python' -I"  # '~/' still expands
    assert python_shell(shlex.quote("/opt/Jane's py/bin/python3")) == shlex.quote("/opt/Jane's py/bin/python3")
    assert python_shell("python3") == "python3"


def test_an_unbalanced_quote_in_python_is_blamed_on_the_target_file() -> None:
    with pytest.raises(TargetError) as caught:
        load_definition("ssh://pi@10.0.0.7?python=/opt/Jane's py/bin/python3")

    assert "python = " in caught.value.problem and "No closing quotation" in caught.value.problem


def test_a_passphrase_protected_key_without_a_terminal_points_to_ssh_agent(
    sshd: SshServer, known_hosts: Path, tmp_path: Path, board_dir: Path
) -> None:
    locked = tmp_path / "locked_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "correct horse", "-f", str(locked)], check=True)

    with pytest.raises(TargetError) as caught, connect(sshd, known_hosts, board_dir, identity=locked) as board:
        board.probe()

    assert "passphrase" in caught.value.problem and f"ssh-add {shlex.quote(str(locked))}" in caught.value.fix


def test_a_password_comes_only_from_the_variable_named(
    sshd: SshServer, known_hosts: Path, tmp_path: Path, board_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EDGECOMPRESS_TEST_PASSWORD", raising=False)
    stranger = keygen(tmp_path / "stranger_key")

    with (
        pytest.raises(TargetError) as caught,
        connect(sshd, known_hosts, board_dir, identity=stranger, password_env="EDGECOMPRESS_TEST_PASSWORD") as board,
    ):
        board.probe()

    assert "EDGECOMPRESS_TEST_PASSWORD" in caught.value.problem and "not set" in caught.value.problem


def test_a_jump_host_is_used_like_proxyjump(
    sshd: SshServer, known_hosts: Path, tmp_path: Path, board_dir: Path
) -> None:
    target_file = tmp_path / "behind-bastion.yaml"
    target_file.write_text(
        f"host: 127.0.0.1\nport: {sshd.port}\nuser: {sshd.user}\nidentity: {sshd.user_key}\n"
        f"jump: {sshd.user}@127.0.0.1:{sshd.port}\nremote_dir: {board_dir}\npython: {sys.executable}\n"
    )
    logins_before = sshd.log_text().count("Accepted publickey")

    with resolve_target(str(target_file), known_hosts=known_hosts) as board:
        probe = board.probe()

    assert board.name == "behind-bastion" and probe["runtimes"]["ai_edge_litert"]
    assert sshd.log_text().count("Accepted publickey") - logins_before == 2  # the bastion, then the board through it


# --------------------------------------------------------------------------- faults


def test_server_killed_mid_upload_leaves_no_half_file_and_a_rerun_finishes(
    tmp_path: Path, tiny_tflite_fp32: Path
) -> None:
    server = start_sshd(tmp_path / "sshd")
    known_hosts = server.write_known_hosts(tmp_path / "known_hosts")
    board_dir = tmp_path / "board"
    eval_data = big_eval_npz(tmp_path / "eval.npz", samples=2000)  # 0.5 MB: many SFTP writes

    def kill_at_ten_percent(line: str) -> None:
        if "upload eval.npz: 10%" in line:
            server.kill()

    job = MeasureJob(tiny_tflite_fp32, eval_data, warmup=1, runs=3)
    try:
        board = connect(server, known_hosts, board_dir, retries=1, retry_delay=0.1, progress=kill_at_ten_percent)
        with pytest.raises(TargetError) as caught:
            board.measure(job)
        board.close()

        assert caught.value.step == "upload"
        assert "Lost the connection" in caught.value.problem and "run again" in caught.value.fix
        assert sha256_name(eval_data) not in cached_files(board_dir)  # nothing half-sent under its real name

        server.start()  # the board is back: the same call finishes, sending only what is missing
        with connect(server, known_hosts, board_dir) as board:
            measurement = board.measure(job)
        assert measurement.result["accuracy"]["n"] == 2000
        assert {u["name"]: u["sent"] for u in measurement.device["ssh"]["uploads"]} == {
            "edgecompress_runner.py": False, tiny_tflite_fp32.name: False, "eval.npz": True,
        }  # fmt: skip
        assert cached_files(board_dir)[sha256_name(eval_data)].read_bytes() == eval_data.read_bytes()
    finally:
        server.kill()


def test_a_connection_drop_is_retried_and_the_upload_completes(tmp_path: Path, tiny_tflite_fp32: Path) -> None:
    server = start_sshd(tmp_path / "sshd")
    known_hosts = server.write_known_hosts(tmp_path / "known_hosts")
    board_dir = tmp_path / "board"
    eval_data = big_eval_npz(tmp_path / "eval.npz", samples=2000)
    said: list[str] = []

    def server_crashes_and_comes_back(line: str) -> None:
        said.append(line)
        if "upload eval.npz: 10%" in line and not any("retrying" in s for s in said):
            server.restart()

    try:
        with connect(
            server, known_hosts, board_dir, retries=2, retry_delay=0.2, progress=server_crashes_and_comes_back
        ) as board:
            measurement = board.measure(MeasureJob(tiny_tflite_fp32, eval_data, warmup=1, runs=3))
    finally:
        server.kill()

    assert any("upload: " in line and "retrying in 0.2 s (1/2)" in line for line in said)
    assert measurement.result["accuracy"]["n"] == 2000
    assert cached_files(board_dir)[sha256_name(eval_data)].read_bytes() == eval_data.read_bytes()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator:
    """Mount a tmpfs of a given size as the board's disk (needs root; CI runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs as a full board disk needs root")
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"disk-{len(mounted)}"
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)], capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_board_without_room_is_refused_before_sending(
    sshd: SshServer, known_hosts: Path, tiny_disk, tmp_path: Path, tiny_tflite_fp32: Path
) -> None:
    runner = runner_script()
    room_for_the_runner_only = (runner.stat().st_size + HEADROOM_BYTES) // 1024 + 48  # KiB
    board_dir = tiny_disk(f"{room_for_the_runner_only}k") / "edge compress"
    eval_data = big_eval_npz(tmp_path / "eval.npz", samples=400)  # ~100 KB: more than is left after the runner

    with pytest.raises(TargetError) as caught, connect(sshd, known_hosts, board_dir) as board:
        board.measure(MeasureJob(tiny_tflite_fp32, eval_data, warmup=1, runs=3))

    assert caught.value.step == "upload"
    assert "free in" in caught.value.problem and f"df -h {shlex.quote(str(board_dir))};" in caught.value.fix
    assert set(cached_files(board_dir)) == {sha256_name(runner)}


def test_a_disk_filling_up_during_upload_is_reported_and_cleaned(
    sshd: SshServer, known_hosts: Path, tiny_disk, tmp_path: Path, tiny_tflite_fp32: Path
) -> None:
    disk = tiny_disk("2m")
    board_dir = disk / "edgecompress"
    eval_data = big_eval_npz(tmp_path / "eval.npz", samples=4000)  # 1 MB: fits when the upload starts

    def something_else_fills_the_disk(line: str) -> None:
        if "upload eval.npz: 10%" in line:
            with (disk / "filler").open("wb") as filler:
                try:
                    while True:
                        filler.write(b"\0" * 65536)
                        filler.flush()
                except OSError:
                    pass

    with (
        pytest.raises(TargetError) as caught,
        connect(sshd, known_hosts, board_dir, progress=something_else_fills_the_disk) as board,
    ):
        board.measure(MeasureJob(tiny_tflite_fp32, eval_data, warmup=1, runs=3))

    assert caught.value.step == "upload" and "free in" in caught.value.problem
    names = set(cached_files(board_dir))
    assert sha256_name(eval_data) not in names
    assert not [n for n in names if n.endswith(".part")]  # the temp file was removed too


def _kill_when_timing_starts(board_dir: Path):
    def on_line(line: str) -> None:
        if "timed runs" in line:
            for pid in processes_running_in(board_dir / "runs"):
                os.kill(pid, signal.SIGKILL)

    return on_line


def test_runner_killed_on_the_board_is_a_clear_error(
    sshd: SshServer, known_hosts: Path, board_dir: Path, tiny_tflite_fp32: Path, eval_npz: Path
) -> None:
    with (
        pytest.raises(TargetError) as caught,
        connect(sshd, known_hosts, board_dir, progress=_kill_when_timing_starts(board_dir)) as board,
    ):
        board.measure(MeasureJob(tiny_tflite_fp32, eval_npz, warmup=1, runs=LONG_RUN))

    assert caught.value.step == "run"
    assert "was killed by" in caught.value.problem and "out of memory" in caught.value.fix
    assert list((board_dir / "runs").iterdir()) == []


def test_a_run_past_its_timeout_is_stopped_on_the_board(
    sshd: SshServer, known_hosts: Path, board_dir: Path, tiny_tflite_fp32: Path, eval_npz: Path
) -> None:
    with pytest.raises(TargetError) as caught, connect(sshd, known_hosts, board_dir) as board:
        board.measure(MeasureJob(tiny_tflite_fp32, eval_npz, warmup=1, runs=LONG_RUN, timeout_s=2))

    assert caught.value.step == "run" and "did not finish within 2 s" in caught.value.problem
    assert wait_until_gone(board_dir) == []


def test_ctrl_c_stops_the_runner_on_the_board(
    sshd: SshServer, known_hosts: Path, board_dir: Path, tiny_tflite_fp32: Path, eval_npz: Path, ctrl_c: None
) -> None:
    def press_ctrl_c(line: str) -> None:
        if "timed runs" in line:
            _thread.interrupt_main()

    with pytest.raises(KeyboardInterrupt), connect(sshd, known_hosts, board_dir, progress=press_ctrl_c) as board:
        board.measure(MeasureJob(tiny_tflite_fp32, eval_npz, warmup=1, runs=LONG_RUN))

    assert wait_until_gone(board_dir) == []
    assert list((board_dir / "runs").iterdir()) == []


def test_a_board_without_a_runtime_gets_the_install_command(
    sshd: SshServer, known_hosts: Path, board_dir: Path, tiny_tflite_fp32: Path, eval_npz: Path
) -> None:
    bare_python = "/usr/bin/python3 -I"
    if subprocess.run([*bare_python.split(), "-c", "import numpy"], capture_output=True).returncode == 0:
        pytest.skip("/usr/bin/python3 has NumPy here, so it is not a runtime-less board")

    with pytest.raises(TargetError) as caught, connect(sshd, known_hosts, board_dir, python=bare_python) as board:
        board.measure(MeasureJob(tiny_tflite_fp32, eval_npz))

    assert caught.value.step == "probe"
    assert "missing numpy" in caught.value.problem
    assert f"On the board run: {bare_python} -m pip install numpy ai-edge-litert" in caught.value.fix
    assert sha256_name(tiny_tflite_fp32) not in cached_files(board_dir)  # stopped before sending the model


def test_a_board_without_that_python_says_which_one(sshd: SshServer, known_hosts: Path, board_dir: Path) -> None:
    with (
        pytest.raises(TargetError) as caught,
        connect(sshd, known_hosts, board_dir, python="/opt/nowhere/python3") as board,
    ):
        board.probe()

    assert "/opt/nowhere/python3" in caught.value.problem and "python:" in caught.value.fix


# --------------------------------------------------------------------------- target definitions (no server needed)


def test_ssh_urls_carry_user_host_port_and_fields() -> None:
    definition = load_definition("ssh://pi@10.0.0.7:2222?python=~/env/bin/python&remote_dir=/data/ec")

    assert (definition.user, definition.host, definition.port) == ("pi", "10.0.0.7", 2222)
    assert definition.python == "~/env/bin/python" and definition.remote_dir == "/data/ec"
    assert definition.name == "pi@10.0.0.7:2222"
    assert load_definition("ssh://pi@[fe80::1]").address.host == "fe80::1"


def test_a_password_in_a_url_is_refused_and_not_repeated() -> None:
    with pytest.raises(TargetError) as caught:
        load_definition("ssh://pi:hunter2@10.0.0.7")

    assert "hunter2" not in str(caught.value) and "--password-env" in caught.value.fix


def test_target_files_are_found_by_name_and_checked_strictly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "targets").mkdir()
    (tmp_path / "targets" / "bench-pi.yaml").write_text("host: 10.0.0.8\nuser: pi\nremote_dri: /tmp\n")
    monkeypatch.chdir(tmp_path)

    with pytest.raises(TargetError) as caught:
        load_definition("bench-pi")
    assert "remote_dri" in caught.value.problem and "did you mean 'remote_dir'" in caught.value.problem

    (tmp_path / "targets" / "bench-pi.yaml").write_text("host: 10.0.0.8\nuser: pi\n")
    assert load_definition("bench-pi").name == "bench-pi"
    with pytest.raises(TargetError) as caught:
        load_definition("bench-py")
    assert "bench-pi" in caught.value.fix


def test_the_shipped_example_is_a_valid_target() -> None:
    target = resolve_target(
        "example-rpi4", identity=None, known_hosts=None, accept_new_host_key=False, some_future_option=1
    )

    assert isinstance(target, SshTarget) and target.name == "example-rpi4"
    assert target.definition.host == "raspberrypi.local" and target.definition.user == "pi"
    target.close()  # nothing was connected: targets connect on first use


# --------------------------------------------------------------------------- the Raspberry Pi 4's architecture (pytest -m arm64)


@pytest.mark.arm64
def test_runner_and_artifacts_work_on_an_emulated_arm64_board(
    tmp_path: Path, tiny_tflite_fp32: Path, tiny_tflite_int8: Path, eval_npz: Path
) -> None:
    """A Debian arm64 root under qemu user-mode emulation, with its own aarch64 sshd: a Pi 4 as far as software goes."""
    from sshd import ARM64_PYTHON, arm64_sshd

    from edgecompress.targets.local import LocalTarget

    with arm64_sshd() as board_server:
        known_hosts = board_server.write_known_hosts(tmp_path / "known_hosts")
        target = ssh_target_from_spec(
            board_server.url(python=ARM64_PYTHON, remote_dir="/root/edgecompress-board"),
            identity=board_server.user_key, known_hosts=known_hosts, retries=0,
        )  # fmt: skip
        with target as board:
            probe = board.probe()
            measured = {
                model.name: board.measure(MeasureJob(model, eval_npz, warmup=2, runs=10, timeout_s=1800))
                for model in (tiny_tflite_fp32, tiny_tflite_int8)
            }

    assert probe["platform"]["machine"] == "aarch64" and probe["runtimes"]["ai_edge_litert"] == "2.3.0"
    with LocalTarget() as here:
        for model in (tiny_tflite_fp32, tiny_tflite_int8):
            on_arm = measured[model.name].result
            on_x86 = here.measure(MeasureJob(model, eval_npz, warmup=1, runs=3)).result
            assert on_arm["platform"]["machine"] == "aarch64"
            assert on_arm["model"]["sha256"] == on_x86["model"]["sha256"]
            # same artifact, other CPU: predictions may differ only where float rounding flips a near-tie
            assert on_arm["accuracy"]["overall"] == pytest.approx(on_x86["accuracy"]["overall"], abs=2 / 360)
