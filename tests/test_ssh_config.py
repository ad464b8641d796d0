"""`--target ssh://mypi` works wherever `ssh mypi` does: board names from the user's OpenSSH config.

The config is read with paramiko's SSHConfig; what it says fills in only what the URL or the
target file leaves out. The connection tests talk to real OpenSSH servers on 127.0.0.1
(tests/sshd.py): an alias with its own port and key, a board behind a second server as
ProxyJump, and a config that names a key file that cannot be used.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sshd import SshServer, keygen, start_sshd

import edgecompress
from edgecompress.cli import main
from edgecompress.errors import TargetError
from edgecompress.targets import openssh_config
from edgecompress.targets.ssh import ssh_target_from_spec
from edgecompress.targets.ssh_config import load_definition


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ssh_config"
    path.write_text(text)
    return path


def _resolved(spec: str, config: Path):  # noqa: ANN202
    return openssh_config.resolve(load_definition(spec), openssh_config.config_path(config))


# --------------------------------------------------------------------------- what is read, and what wins


def test_an_alias_fills_in_host_user_port_and_key(tmp_path: Path) -> None:
    key = keygen(tmp_path / "pi_key")
    config = _config(
        tmp_path,
        f"Host mypi\n  HostName 10.0.0.7\n  User pi\n  Port 2222\n  IdentityFile {key}\n"
        f"  UserKnownHostsFile {tmp_path}/hosts {tmp_path}/more\n  StrictHostKeyChecking no\n",
    )
    board = _resolved("ssh://mypi?python=/opt/env/bin/python3", config)
    assert (board.host, board.user, board.port, board.identity) == ("10.0.0.7", "pi", 2222, key)
    assert board.known_hosts == tmp_path / "hosts" and board.python == "/opt/env/bin/python3"
    assert board.name == "pi@mypi:2222"  # named as typed, with what it reached


def test_the_url_and_the_target_file_win_over_the_config(tmp_path: Path) -> None:
    config = _config(tmp_path, "Host mypi\n  HostName 10.0.0.7\n  User pi\n  Port 2222\n  ProxyJump gate\n")
    board = _resolved("ssh://admin@mypi:22", config)
    assert (board.host, board.user, board.port) == ("10.0.0.7", "admin", 22)
    target = tmp_path / "lab.yaml"
    target.write_text("host: mypi\nport: 2022\njump: ops@bastion:22\n")
    from_file = _resolved(str(target), config)
    assert (from_file.host, from_file.user, from_file.port, from_file.jump) == (
        "10.0.0.7",
        "pi",
        2022,
        "ops@bastion:22",
    )
    assert from_file.name == "lab"


def test_a_host_the_config_does_not_know_is_left_as_typed(tmp_path: Path) -> None:
    config = _config(tmp_path, "Host other\n  User nobody\n")
    board = _resolved("ssh://pi@10.0.0.9", config)
    assert (board.host, board.user, board.port, board.identity, board.jump) == ("10.0.0.9", "pi", 22, None, None)


def test_proxyjump_is_resolved_through_the_config_with_its_own_key(tmp_path: Path) -> None:
    gate_key = keygen(tmp_path / "gate_key")
    config = _config(
        tmp_path,
        f"Host gate\n  HostName 192.0.2.1\n  User ops\n  Port 2200\n  IdentityFile {gate_key}\n"
        "Host mypi\n  HostName 10.0.0.7\n  ProxyJump gate\nHost viaroot\n  HostName 10.0.0.8\n  ProxyJump root@gate:22\n",
    )
    board = _resolved("ssh://pi@mypi", config)
    assert board.jump == "ops@192.0.2.1:2200" and board.jump_identity == gate_key
    assert _resolved("ssh://pi@viaroot", config).jump == "root@192.0.2.1:22"  # the ProxyJump line's own user and port


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("ProxyJump a,b", "a chain of jump hosts"),
        ("ProxyCommand nc %h %p", "through a ProxyCommand, which edgecompress does not run"),
        ("IdentityFile ~/nowhere/key", "none of them exists"),
        ("Port http", "is not a port number"),
    ],
)
def test_what_cannot_be_followed_is_refused_in_one_paragraph(line: str, problem: str, tmp_path: Path) -> None:
    config = _config(tmp_path, f"Host mypi\n  HostName 10.0.0.7\n  {line}\n")
    with pytest.raises(TargetError) as refused:
        _resolved("ssh://pi@mypi", config)
    assert problem in refused.value.problem and str(config) in refused.value.problem and refused.value.fix


def test_a_missing_ssh_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="--ssh-config names"):
        openssh_config.config_path(tmp_path / "nope")


def test_the_default_is_the_users_own_config_when_there_is_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert openssh_config.config_path(None) is None  # no ~/.ssh/config: nothing is read
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host mypi\n  HostName 10.0.0.7\n")
    assert openssh_config.config_path(None) == tmp_path / ".ssh" / "config"


# --------------------------------------------------------------------------- against real servers


def _alias_config(server: SshServer, tmp_path: Path, alias: str = "mypi", extra: str = "") -> Path:
    return _config(
        tmp_path,
        f"Host {alias}\n  HostName 127.0.0.1\n  Port {server.port}\n  User {server.user}\n"
        f"  IdentityFile {server.user_key}\n  UserKnownHostsFile {tmp_path}/known_hosts\n{extra}",
    )


@pytest.mark.slow
@pytest.mark.ssh
def test_an_alias_from_the_users_ssh_config_reaches_the_board(
    sshd: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """~/.ssh/config as every SSH user has one: the URL names the alias and nothing else."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    _alias_config(sshd, tmp_path).rename(tmp_path / ".ssh" / "config")
    sshd.write_known_hosts(tmp_path / "known_hosts")
    logins = sshd.log_text().count("Accepted publickey")
    with ssh_target_from_spec(f"ssh://mypi?python={sys.executable}&remote_dir={tmp_path / 'board'}") as board:
        probe = board.probe()
    assert board.name == f"{sshd.user}@mypi:{sshd.port}" and probe["runtimes"]["ai_edge_litert"]
    assert probe["ssh"]["address"] == f"{sshd.user}@127.0.0.1:{sshd.port}"
    assert sshd.log_text().count("Accepted publickey") == logins + 1


@pytest.mark.slow
@pytest.mark.ssh
def test_host_keys_are_checked_under_the_host_key_alias(sshd: SshServer, tmp_path: Path) -> None:
    config = _alias_config(sshd, tmp_path, extra="  HostKeyAlias lab-pi\n")
    public = sshd.host_key.with_suffix(".pub").read_text().split()
    (tmp_path / "known_hosts").write_text(f"lab-pi {public[0]} {public[1]}\n")  # only under the alias
    with ssh_target_from_spec(f"ssh://mypi?python={sys.executable}", ssh_config=config) as board:
        assert board.probe()["runtimes"]["ai_edge_litert"]
    (tmp_path / "known_hosts").write_text(sshd.known_hosts_line())  # under host:port, not the alias: unknown
    with pytest.raises(TargetError) as refused, ssh_target_from_spec("ssh://mypi", ssh_config=config) as board:
        board.probe()
    assert "The SSH host key of lab-pi is not in" in refused.value.problem  # not trusted, whatever the config says


@pytest.mark.slow
@pytest.mark.ssh
def test_a_board_behind_a_proxyjump_through_a_second_server(sshd: SshServer, tmp_path: Path) -> None:
    """The bastion is a second sshd with a key of its own; the board is reached only through it."""
    bastion = start_sshd(tmp_path / "bastion")
    try:
        config = _config(
            tmp_path,
            f"Host gate\n  HostName 127.0.0.1\n  Port {bastion.port}\n  User {bastion.user}\n"
            f"  IdentityFile {bastion.user_key}\n"
            f"Host mypi\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
            f"  IdentityFile {sshd.user_key}\n  ProxyJump gate\n",
        )
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(sshd.known_hosts_line() + bastion.known_hosts_line())
        board_logins, gate_logins = sshd.log_text().count("Accepted publickey"), 0
        with ssh_target_from_spec(
            f"ssh://mypi?python={sys.executable}", ssh_config=config, known_hosts=known_hosts
        ) as board:
            assert board.probe()["runtimes"]["ai_edge_litert"]
        assert bastion.log_text().count("Accepted publickey") == gate_logins + 1  # with the bastion's own key
        assert sshd.log_text().count("Accepted publickey") == board_logins + 1
    finally:
        bastion.kill()


@pytest.mark.slow
@pytest.mark.ssh
def test_a_config_naming_a_key_that_cannot_be_read_is_one_paragraph(
    sshd: SshServer, tiny_h5: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    broken = tmp_path / "broken_key"
    broken.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n")
    config = _config(tmp_path, f"Host mypi\n  HostName 127.0.0.1\n  Port {sshd.port}\n  IdentityFile {broken}\n")
    runs = tmp_path / "runs"
    args = ["deploy", "--profile", "rpi4", str(tiny_h5), "--data", "sklearn:digits"]
    args += ["--target", "ssh://mypi", "--ssh-config", str(config)]
    code = main([*args, "--recipe", "ptq-int8", "--output", str(runs), "--max-eval", "50"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == TargetError.exit_code and "Traceback" not in err
    assert f"{broken}, the IdentityFile that {config} gives for Host mypi, is not a private key" in err
    assert "What to do:" in err and not (runs.exists() and any(runs.iterdir()))


@pytest.mark.slow
@pytest.mark.ssh
def test_deploy_to_an_alias_with_ssh_config(sshd: SshServer, tiny_h5: Path, tmp_path: Path) -> None:
    """The whole deploy, as a user types it: the board named by its alias and --ssh-config."""
    config = _alias_config(sshd, tmp_path)
    sshd.write_known_hosts(tmp_path / "known_hosts")
    result = edgecompress.deploy(
        tiny_h5,
        "rpi4",
        target=f"ssh://mypi?python={sys.executable}&remote_dir={tmp_path / 'board'}",
        ssh_config=config,
        output=tmp_path / "runs",
        recipe="ptq-int8",
        warmup=2,
        runs=5,
        max_eval=150,
    )
    (target,) = result.report["targets"]
    assert target["name"] == f"{sshd.user}@mypi:{sshd.port}"
    assert {m["target"] for m in result.report["measurements"]} == {target["name"]}
    assert result.report["request"]["target_options"]["ssh_config"] == str(config)
