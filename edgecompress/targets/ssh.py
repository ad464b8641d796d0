"""A board reached over SSH: probe it, send the artifacts, run the runner there, bring the JSON back.

Every remote action belongs to one named step -- connect, upload, probe, run, fetch -- so
a failure says where it happened. Network drops are retried with exponential back-off a
bounded number of times (uploads are content-addressed, so a retry only sends what is
missing); everything the user must fix (host key, login, disk, runtime) fails at once.
"""

from __future__ import annotations

import logging
import posixpath
import shlex
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import paramiko

from edgecompress.errors import TargetError
from edgecompress.resources import runner_script
from edgecompress.targets import ssh_board_tools as tools
from edgecompress.targets.base import MeasureJob, Measurement, Target, attach_samples, printable
from edgecompress.targets.measurement_check import check_probe
from edgecompress.targets.rounds import RoundsJob
from edgecompress.targets.rounds import runner_args as rounds_runner_args
from edgecompress.targets.ssh_config import TargetDefinition, load_definition
from edgecompress.targets.ssh_connection import (
    Cancelled,
    CommandResult,
    CommandTimeout,
    ConnectionLost,
    ConnectOptions,
    PasswordSource,
    open_connection,
)
from edgecompress.targets.ssh_files import remote_files
from edgecompress.targets.ssh_transfer import LocalFile, Transfer, Uploader, new_run_id, resolve_layout

log = logging.getLogger("edgecompress.targets.ssh")

T = TypeVar("T")
Progress = Callable[[str], None]

RUNNER_NAME = "edgecompress_runner.py"
EVAL_NAME = "eval.npz"
SAMPLES_FILE = "latency_samples.json"
PID_FILE = "runner.pid"
PROBE_TIMEOUT_S = 180.0
STOP_GRACE_S = 3.0

#: artifact suffix -> (runner runtimes able to run it, the pip package to suggest), best first
RUNTIMES_FOR = {
    ".tflite": (("ai_edge_litert", "tflite_runtime", "tensorflow"), "ai-edge-litert"),
    ".onnx": (("onnxruntime",), "onnxruntime"),
}


class SshTarget(Target):
    """One board over SSH. Not thread-safe: a fleet gives each board its own SshTarget."""

    def __init__(
        self,
        definition: TargetDefinition,
        options: ConnectOptions | None = None,
        *,
        keep_remote: bool = False,
        retries: int = 2,
        retry_delay: float = 1.0,
        progress: Progress | None = None,
    ) -> None:
        self.definition = definition
        self.name = definition.name
        self.options = options or ConnectOptions()
        self.keep_remote = keep_remote
        self.retries = max(0, int(retries))
        self.retry_delay = float(retry_delay)
        self._progress = progress
        self._passwords = PasswordSource(self.options.password_env)
        self._uploader: Uploader | None = None
        self._probe: dict[str, Any] | None = None
        self._cancel = threading.Event()
        self._launched: set[str] = set()
        #: every file of every upload, sent or found cached, in order (kept for reports and tests)
        self.transfers: list[Transfer] = []

    # ------------------------------------------------------------------ Target API

    def probe(self) -> dict[str, Any]:
        """Send the runner (if the board lacks this version) and ask it to describe the board."""
        if self._probe is None:
            runner = LocalFile.of(runner_script())
            self.transfers += self._step("upload", lambda up: up.ensure([runner]))
            probe = self._step("probe", lambda up: self._run_probe(up, runner))
            self._require_runtime(probe, suffix=None)
            self._probe = probe
        return self._probe

    def measure(self, job: MeasureJob) -> Measurement:
        """Upload runner, model and eval data, run the runner on the board, return its JSON."""
        model, data = Path(job.model), Path(job.eval_data)
        self._check_local_inputs(model, data)
        probe = self.probe()
        self._require_runtime(probe, suffix=model.suffix.lower())
        files = {
            name: LocalFile.of(path)
            for name, path in ((RUNNER_NAME, runner_script()), (model.name, model), (EVAL_NAME, data))
        }
        run_dir: str | None = None
        log_lines: list[str] = []
        try:
            run_dir, transfers = self._step("upload", lambda up: self._stage(up, files))
            self.transfers += transfers
            args = _measure_args(job, model.name)
            document = self._step("run", lambda up: self._run_runner(up, run_dir, args, job.timeout_s, log_lines))
            samples = self._step("fetch", lambda up: up.read_json(posixpath.join(run_dir, SAMPLES_FILE)))
        finally:
            if run_dir is not None and not self.keep_remote:
                self._remove_quietly(run_dir)
        attach_samples(document, samples)
        device = {
            **probe,
            "ssh": {
                **probe.get("ssh", {}),
                "run_dir": run_dir if self.keep_remote else None,
                "uploads": [t.to_dict() for t in transfers],
            },
        }
        return Measurement(target=self.name, result=document, device=device, log="\n".join(log_lines))

    def cancel(self) -> None:
        """Stop what this target is doing, for good (from another thread); the remote runner is killed."""
        self._cancel.set()

    def close(self) -> None:
        self._drop_connection()

    # ------------------------------------------------------------------ steps

    def _run_probe(self, up: Uploader, runner: LocalFile) -> dict[str, Any]:
        argv = [*up.python, up.layout.cached(runner), "--probe"]
        result = up.conn.run(argv, timeout=PROBE_TIMEOUT_S, cancel=self._cancel)
        document = _json_or_none(result)
        if result.status != 0 or not isinstance(document, dict) or "error" in document:
            raise self._runner_failure(up, result, document, what="probe")
        check_probe(document)
        return {
            **document,
            "ssh": {
                "address": str(self.definition.address),
                "work_dir": up.layout.work_dir,
                "python": " ".join(up.python),
                "file_transfer": up.files.transport,
            },
        }

    def _stage(self, up: Uploader, files: dict[str, LocalFile]) -> tuple[str, list[Transfer]]:
        transfers = up.ensure(list(files.values()))
        run_dir = up.layout.run_dir(new_run_id())
        up.link_into_run(run_dir, [(up.layout.cached(file), name) for name, file in files.items()])
        return run_dir, transfers

    def measure_rounds(self, job: RoundsJob) -> Measurement:
        """Upload the runner, every model and the eval data, and time the models against each other in rounds."""
        for path in job.models:
            self._check_local_inputs(Path(path), Path(job.eval_data))
        probe = self.probe()
        for suffix in sorted({Path(m).suffix.lower() for m in job.models}):
            self._require_runtime(probe, suffix=suffix)
        files = {RUNNER_NAME: LocalFile.of(runner_script()), EVAL_NAME: LocalFile.of(Path(job.eval_data))}
        files.update({Path(m).name: LocalFile.of(Path(m)) for m in job.models})
        args = rounds_runner_args(job, [Path(m).name for m in job.models], EVAL_NAME)
        run_dir: str | None = None
        log_lines: list[str] = []
        try:
            run_dir, transfers = self._step("upload", lambda up: self._stage(up, files))
            self.transfers += transfers
            document = self._step("run", lambda up: self._run_runner(up, run_dir, args, job.timeout_s, log_lines))
        finally:
            if run_dir is not None and not self.keep_remote:
                self._remove_quietly(run_dir)
        return Measurement(target=self.name, result=document, device=probe, log="\n".join(log_lines))

    def _run_runner(
        self, up: Uploader, run_dir: str, args: list[str], timeout_s: float, log_lines: list[str]
    ) -> dict[str, Any]:
        pid_file = posixpath.join(run_dir, PID_FILE)
        if run_dir in self._launched:  # a retry: the runner a dropped connection left behind must not skew this one
            self._stop_runner(up, pid_file, wait_for_pid_s=0)
        self._launched.add(run_dir)
        argv = tools.tool_argv(up.python, tools.LAUNCH, run_dir, pid_file, *up.python, RUNNER_NAME, *args)
        del log_lines[:]

        def on_line(line: str) -> None:
            line = printable(line)  # the board's stderr reaches the user's terminal and deploy.log
            log_lines.append(line)
            self._say(line)

        try:
            result = up.conn.run(argv, timeout=timeout_s, on_stderr_line=on_line, cancel=self._cancel)
        except CommandTimeout:
            self._stop_runner(up, pid_file, wait_for_pid_s=STOP_GRACE_S)
            raise TargetError(
                f"The runner did not finish within {timeout_s:.0f} s and was stopped.",
                "Measure with fewer --runs or a smaller --max-eval, or check that the board is not busy or throttling (uptime; vcgencmd get_throttled on a Pi).",
            ) from None
        except (Cancelled, KeyboardInterrupt):
            self._stop_runner(up, pid_file, wait_for_pid_s=STOP_GRACE_S)
            raise KeyboardInterrupt from None
        document = _json_or_none(result)
        if result.status != 0 or not isinstance(document, dict) or "error" in document:
            raise self._runner_failure(up, result, document, what="run", run_dir=run_dir)
        return document

    def _stop_runner(self, up: Uploader, pid_file: str, *, wait_for_pid_s: float) -> None:
        """Kill the runner's whole process group via its pid file; silent if there is none."""
        if not up.conn.alive:
            return
        try:
            up.run_tool(
                tools.STOP, pid_file, str(STOP_GRACE_S), str(wait_for_pid_s),
                timeout=STOP_GRACE_S + wait_for_pid_s + 15, cancellable=False,
            )  # fmt: skip
        except (TargetError, ConnectionLost, CommandTimeout) as error:
            log.warning(
                "%s: could not stop the remote runner (%s); it may still be running on the board", self.name, error
            )

    def _remove_quietly(self, run_dir: str) -> None:
        up = self._uploader
        if up is None or not up.conn.alive:
            log.warning("%s: the remote run folder %s was left on the board (connection gone)", self.name, run_dir)
            return
        try:
            up.remove_run_dir(run_dir)
        except (TargetError, ConnectionLost, CommandTimeout) as error:
            log.warning("%s: could not remove %s on the board: %s", self.name, run_dir, error)

    # ------------------------------------------------------------------ retries and connection

    def _step(self, step: str, action: Callable[[Uploader], T]) -> T:
        """Do `action` inside `step`, reconnecting with exponential back-off when the link drops."""
        failure: tuple[str, ConnectionLost] | None = None
        reached_step = False  # once connected, a later reconnect failure still belongs to `step`
        for attempt in range(self.retries + 1):
            phase = "connect"
            try:
                up = self.connected()
                phase = step
                reached_step = True
                return action(up)
            except Cancelled:
                raise KeyboardInterrupt from None
            except TargetError as error:
                raise _tagged(error, phase, self.name) from None
            except (ConnectionLost, EOFError, OSError, paramiko.SSHException) as raised:
                lost = raised if isinstance(raised, ConnectionLost) else None
                if lost is None:
                    if self._uploader is not None and self._uploader.conn.alive:
                        raise  # the link is fine, so this is a bug, not a drop: show it
                    lost = ConnectionLost(f"{type(raised).__name__}: {raised}")
                self._drop_connection()
                failure = (step if reached_step else phase, lost)
                if attempt < self.retries:
                    self._back_off(phase, lost, attempt)
        assert failure is not None, "every attempt ended in a connection failure"
        phase, lost = failure
        address = self.definition.address
        raise _tagged(
            TargetError(
                f"Lost the connection to {address} and could not get it back after {self.retries + 1} attempt(s): {lost}.",
                f"Check that the board is on and reachable (ssh -p {address.port} {shlex.quote(f'{address.user}@{address.host}')}), "
                "then run again: artifacts already on the board are not sent twice.",
            ),
            phase,
            self.name,
        )

    def _back_off(self, phase: str, error: Exception, attempt: int) -> None:
        delay = self.retry_delay * 2**attempt
        self._say(f"{phase}: {error}; retrying in {delay:.1f} s ({attempt + 1}/{self.retries})")
        if self._cancel.wait(delay):
            raise KeyboardInterrupt from None

    def connected(self) -> Uploader:
        """The verified connection to the board (host key checked, work folders made) and its
        checked uploader; reused while alive. Tools that install files (edgecompress ship) use it too."""
        if self._uploader is not None and self._uploader.conn.alive:
            return self._uploader
        self._drop_connection()
        self._say(
            f"connecting to {self.definition.address}"
            + (f" via {self.definition.jump}" if self.definition.jump else "")
        )
        conn = open_connection(self.definition, self.options, self._passwords)
        try:
            files = remote_files(conn, self.definition.python, self._say)
            layout = resolve_layout(files, conn, self.definition.remote_dir)
        except BaseException:
            conn.close()
            raise
        python = tools.python_argv(self.definition.python, layout.home)
        self._uploader = Uploader(conn, files, python, layout, self._say, self._cancel)
        return self._uploader

    def _drop_connection(self) -> None:
        if self._uploader is not None:
            self._uploader.conn.close()
            self._uploader = None

    # ------------------------------------------------------------------ checks and messages

    def _check_local_inputs(self, model: Path, data: Path) -> None:
        if model.suffix.lower() not in RUNTIMES_FOR:
            raise TargetError(
                f"{model} is not a .tflite or .onnx model; the runner cannot measure it.",
                "Pass an exported .tflite or .onnx file.",
            )
        for path in (model, data):
            if not path.is_file():
                raise TargetError(
                    f"{path} does not exist, so there is nothing to send to {self.name}.",
                    "Export the artifact and the eval data first (edgecompress deploy does both).",
                )

    def _require_runtime(self, probe: dict[str, Any], suffix: str | None) -> None:
        """Stop before any upload of artifacts when the board cannot run them; say exactly what to install."""
        runtimes = probe.get("runtimes") or {}
        suffixes = [suffix] if suffix else list(RUNTIMES_FOR)
        usable = [s for s in suffixes if any(runtimes.get(name) for name in RUNTIMES_FOR[s][0])]
        if probe.get("numpy") and usable:
            return
        wanted = suffix or ".tflite"
        names, package = RUNTIMES_FOR[wanted]
        missing = ([] if probe.get("numpy") else ["numpy"]) + (
            [] if usable else [f"a {wanted} runtime ({', '.join(names)})"]
        )
        broken = probe.get("runtime_import_errors") or {}
        python = self.definition.python
        shell_python = tools.python_shell(python)
        platform = probe.get("platform", {})
        raise _tagged(
            TargetError(
                f"{self.name} ({platform.get('machine', '?')}, Python {probe.get('python', '?')} at '{python}') cannot run "
                f"{wanted} models: missing {' and '.join(missing)}."
                + (f" Import errors: {'; '.join(f'{k}: {v}' for k, v in broken.items())}." if broken else ""),
                f"On the board run: {shell_python} -m pip install numpy {package}   "
                f"(if pip says 'externally-managed-environment', use a venv: python3 -m venv ~/edgecompress-env && "
                f"~/edgecompress-env/bin/pip install numpy {package} -- then set python: ~/edgecompress-env/bin/python "
                "in the target file, or add ?python=~/edgecompress-env/bin/python to the ssh:// URL).",
            ),
            "probe",
            self.name,
        )

    def _runner_failure(
        self, up: Uploader, result: CommandResult, document: Any, *, what: str, run_dir: str | None = None
    ) -> TargetError:
        stderr = result.stderr_tail()
        if isinstance(document, dict) and isinstance(document.get("error"), dict):
            error = document["error"]
            details = f" Runner stderr:\n{stderr}" if error.get("kind") == "runtime_error" and stderr else ""
            return TargetError(
                f"The runner's {what} on {self.name} failed ({error.get('kind')}): {error.get('message')}{details}",
                error.get("fix", ""),
            )
        died = _signal_name(result.status)
        if not died and result.stdout.strip() and not isinstance(document, dict):
            return tools.not_json_error(up.python, f"edgecompress's runner ({what})", result)
        kept = (
            f" (run folder kept: pass --keep-remote and look in {run_dir})" if run_dir and not self.keep_remote else ""
        )
        if died:
            return TargetError(
                f"The runner on {self.name} was killed by {died} before it finished its {what}"
                + (f"; its last words: {stderr}" if stderr else "")
                + ".",
                "If nobody killed it, the board probably ran out of memory: check `dmesg | tail` there for the OOM killer, "
                "then use a smaller model or --max-eval, or free memory, and run again.",
            )
        return TargetError(
            f"The runner on {self.name} exited with status {result.status} and no result during its {what}: {stderr or 'no output'}.",
            f"The runner needs Python 3.8+ at '{self.definition.python}'. Run it by hand on the board to see why{kept}: "
            f"{tools.python_shell(self.definition.python)} edgecompress_runner.py --probe",
        )

    def _say(self, message: str) -> None:
        line = f"[{self.name}] {message}"
        if self._progress is not None:
            self._progress(line)
        else:
            log.info(line)


def _measure_args(job: MeasureJob, model_name: str) -> list[str]:
    return [
        "--model", model_name, "--data", EVAL_NAME,
        "--warmup", str(job.warmup), "--runs", str(job.runs),
        *(["--threads", str(job.threads)] if job.threads else []),
        "--samples-out", SAMPLES_FILE, "--progress", *job.extra_args,
    ]  # fmt: skip


def _json_or_none(result: CommandResult) -> Any:
    try:
        return tools.parse_json_document(result.stdout)
    except ValueError:
        return None


def _signal_name(status: int) -> str | None:
    """-1 (SSH exit-signal) or 128+N (a shell reporting a signal death) -> a name; None for a normal exit."""
    if status == -1:
        return "a signal"
    if 128 < status < 128 + 65:
        try:
            return signal.Signals(status - 128).name
        except ValueError:
            return f"signal {status - 128}"
    return None


def _tagged(error: TargetError, step: str, target: str) -> TargetError:
    """Prefix the problem with target and step once, and keep the step for callers (error.step)."""
    if getattr(error, "step", None) is None:
        error.step = step  # type: ignore[attr-defined]
        error.target = target  # type: ignore[attr-defined]
        error.problem = f"[{target}] {step} failed: {error.problem}"
        error.args = (error.problem,)
    return error


def _as_path(value: Any) -> Path | None:
    return None if value in (None, "") else Path(str(value)).expanduser()


def ssh_target_from_spec(spec: str, **options: Any) -> SshTarget:
    """The registry's entry point: `spec` is ssh://..., a target name or a .yaml path; options come from the CLI.

    Understood options: identity, known_hosts, ssh_config, accept_new_host_key, keep_remote, password_env,
    retries, retry_delay, connect_timeout, remote_python, remote_dir, progress. Others are ignored
    (the CLI passes one option set to every kind of target). The board's host name is looked up in
    the OpenSSH config (`ssh_config`, else ~/.ssh/config) for what the URL or target file leaves out.
    """
    from edgecompress.targets import openssh_config

    definition = openssh_config.resolve(load_definition(spec), openssh_config.config_path(options.get("ssh_config")))
    overrides = {
        field: options[key]
        for key, field in (("remote_python", "python"), ("remote_dir", "remote_dir"))
        if options.get(key)
    }
    if overrides:
        definition = definition.model_copy(update=overrides)
    connect = ConnectOptions(
        identity=_as_path(options.get("identity")),
        known_hosts=_as_path(options.get("known_hosts")),
        accept_new_host_key=bool(options.get("accept_new_host_key", False)),
        password_env=options.get("password_env") or None,
        connect_timeout=float(options.get("connect_timeout") or 10.0),
    )
    retries = options.get("retries")
    return SshTarget(
        definition,
        connect,
        keep_remote=bool(options.get("keep_remote", False)),
        retries=2 if retries is None else int(retries),
        retry_delay=float(options.get("retry_delay") or 1.0),
        progress=options.get("progress"),
    )


__all__ = ["SshTarget", "ssh_target_from_spec", "RUNTIMES_FOR"]
