"""A phone (or any browser) as a target: `--target phone`.

The browser is the device and its runtimes are the ones a web app would ship: LiteRT.js runs
.tflite artifacts and ONNX Runtime Web runs .onnx artifacts, each on WebGPU where the browser
offers it, else on WebAssembly (with threads and SIMD where the page is cross-origin isolated).
`probe` starts the page's server (phone_server.py), prints the URL and a QR code, and waits up to
`wait` seconds for a browser to open it; the browser's own description of itself is the device.
`measure` hands the page one artifact at a time and turns its raw answer into the runner's
result document (phone_results.py), which then passes measurement_check like a board's.

A page that closes or falls asleep mid-run stops the measurement with a TargetError: the run
folder is kept, and `deploy --resume` serves a new link and waits for the browser again.
"""

from __future__ import annotations

import hashlib
import io
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgecompress.errors import TargetError
from edgecompress.targets.base import MeasureJob, Measurement, Target
from edgecompress.targets.phone_model import served_model
from edgecompress.targets.phone_results import PageJob, page_outputs, result_from_page, text
from edgecompress.targets.phone_server import LEASE_S, Link, PhoneServer, Work

SPEC = "phone"
#: seconds to wait for a browser to open the link (and to come back between artifacts)
DEFAULT_WAIT_S = 300.0
#: artifact suffix -> (the page's runtime key, its name in reports, the npm package it comes from)
RUNTIMES: dict[str, tuple[str, str, str]] = {
    ".tflite": ("litert", "LiteRT.js", "@litertjs/core"),
    ".onnx": ("ort", "ONNX Runtime Web", "onnxruntime-web"),
}
#: inputs the timed runs cycle through (as the board runner does)
LATENCY_INPUTS = 64
_WAKE_S = 0.5


class PhoneTarget(Target):
    """A browser that opened this run's link; see the module docstring."""

    name = SPEC

    def __init__(
        self,
        listen: str | None = None,
        wait: float | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.host, self.port = parse_listen(listen)
        self.wait = float(wait) if wait is not None else DEFAULT_WAIT_S
        self.tls = _tls_pair(tls_cert, tls_key)
        self.link = Link(progress=progress)
        self._say = progress or (lambda line: print(line, file=sys.stderr))
        self._server: PhoneServer | None = None
        self._device: dict[str, Any] | None = None
        self._cancelled = False
        self._lost: TargetError | None = None  # the page left mid-run: later artifacts fail at once

    def accepts(self, artifact: Path) -> bool:
        return artifact.suffix in RUNTIMES

    @property
    def url(self) -> str:
        server = self._start()
        return f"{server.scheme}://{_url_host(self.host)}:{server.port}/{self.link.token}/"

    def probe(self) -> dict[str, Any]:
        """Serve the page, show the link, and wait for a browser: its description is the device."""
        self._start()
        self._announce()
        self._wait_for_page(what="open")
        assert self.link.device is not None
        self._device = describe_browser(self.link.device)
        return self._device

    def measure(self, job: MeasureJob) -> Measurement:
        if self._device is None:
            self.probe()
        key, runtime, package = RUNTIMES[job.model.suffix]
        from edgecompress.targets.phone_assets import versions

        page_job, labels, files = _page_job(job, self.name, runtime, versions()[package])
        threads, basis = _threads(job)
        spec = {
            "model": job.model.name, "runtime": key, "warmup": job.warmup, "runs": job.runs, "n": page_job.n,
            "shape": files.pop("shape"), "latency_inputs": min(page_job.n, LATENCY_INPUTS),
            "threads": threads, "threads_basis": basis,
        }  # fmt: skip
        work = Work(id=hashlib.sha256(f"{job.model}{time.time()}".encode()).hexdigest()[:12], spec=spec, files=files)
        answer = self._run(work, job)
        if isinstance(answer, dict) and answer.get("error") is not None:
            raise TargetError(
                f"phone: {runtime} in the browser could not run {job.model.name}: {text(answer['error'])}.",
                "The other artifacts are measured; this one needs ops or types the browser runtime has "
                "(LiteRT.js takes float32, int32 and uint8 tensors), or measure it on a board.",
            )
        result = result_from_page(answer, page_job, labels)
        result["platform"] = self._device.get("platform") if self._device else None
        outputs = page_outputs(answer) if job.outputs else None
        return Measurement(target=self.name, result=result, device=self._device or {}, log="", outputs=outputs)

    def cancel(self) -> None:
        """Ctrl-C: stop waiting for the page."""
        with self.link.cond:
            self._cancelled = True
            self.link.cond.notify_all()

    def close(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.close()

    # ------------------------------------------------------------------ the link

    def _start(self) -> PhoneServer:
        if self._server is None:
            from edgecompress.targets.phone_assets import find_assets

            try:
                self._server = PhoneServer(self.link, find_assets(), self.host, self.port, self.tls)
            except OSError as error:
                raise TargetError(
                    f"phone: cannot serve the page on {self.host}:{self.port}: {error.strerror or error}.",
                    "Pass --listen HOST:PORT with an address of this machine and a free port "
                    "(e.g. --listen 0.0.0.0:8765).",
                ) from None
        return self._server

    def _announce(self) -> None:
        import segno

        url = self.url
        qr = io.StringIO()
        segno.make(url, error="l").terminal(out=qr, compact=True)
        self._say(f"Open this link on the phone (or scan the code), within {self.wait:g} s: {url}")
        for line in qr.getvalue().rstrip("\n").splitlines():
            self._say(line)
        if self.tls is None and self.host not in ("127.0.0.1", "localhost", "::1"):
            self._say(
                "Over plain http on a LAN address the browser gives the page no threads and no WebGPU; "
                "use adb reverse with --listen 127.0.0.1:PORT, or --tls-cert/--tls-key (see the README)."
            )

    def _wait_for_page(self, what: str) -> None:
        deadline = time.monotonic() + self.wait
        with self.link.cond:
            while not self.link.alive():
                self._check_cancelled()
                if time.monotonic() >= deadline:
                    raise TargetError(*_no_browser(self.url, self.wait, what, self.link.refused))
                self.link.cond.wait(_WAKE_S)

    def _run(self, work: Work, job: MeasureJob) -> Any:
        """Hand `work` to the page and wait for its answer; a page gone quiet ends it with a TargetError."""
        if self._lost is not None and not self.link.alive():
            raise self._lost  # no second wait: the run is kept for --resume, which serves a new link
        try:
            self._wait_for_page(what="come back")
        except TargetError as error:
            self._lost = error
            raise
        deadline = time.monotonic() + job.timeout_s
        link = self.link
        with link.cond:
            link.work = work
            link.cond.notify_all()
            try:
                while work.answer is None:
                    self._check_cancelled()
                    if not link.alive():
                        why = link.gone or f"it sent nothing for {LEASE_S:g} s (closed, asleep or out of range)"
                        self._lost = TargetError(
                            f"phone: the page stopped while measuring {job.model.name}: {why}.",
                            "Every finished measurement is kept. Keep the phone awake with the page in front, then "
                            "run the resume command and open the new link.",
                        )
                        raise self._lost
                    if time.monotonic() >= deadline:
                        raise TargetError(
                            f"phone: {job.model.name} did not finish in the browser within {job.timeout_s:g} s.",
                            "Lower --runs or --max-eval, then resume.",
                        )
                    link.cond.wait(_WAKE_S)
                return work.answer
            finally:
                link.work = None

    def _check_cancelled(self) -> None:
        if self._cancelled:
            raise KeyboardInterrupt


def parse_listen(listen: str | None) -> tuple[str, int]:
    """'HOST:PORT' (or ':PORT', or None) -> (host, port); the default host is this machine's LAN address."""
    if not listen:
        return lan_address(), 0
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise TargetError(
            f"--listen {listen!r} is not HOST:PORT.",
            "Example: --listen 0.0.0.0:8765 (any address), --listen 127.0.0.1:8765 (with adb reverse), or :8765.",
        )
    return host.strip("[]") or lan_address(), int(port)


def lan_address() -> str:
    """The address other machines on the LAN reach this one by (no packet is sent); 127.0.0.1 without a network."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def describe_browser(device: dict[str, Any]) -> dict[str, Any]:
    """The device as the browser described it, every value made short and inert, in a probe's shape."""
    ua_data: dict[str, Any] = device["ua_data"] if isinstance(device.get("ua_data"), dict) else {}
    gpu: dict[str, Any] = device["webgpu"] if isinstance(device.get("webgpu"), dict) else {}
    cpus = device.get("hardware_concurrency")
    cpus = cpus if isinstance(cpus, int) and not isinstance(cpus, bool) and 0 < cpus < 4096 else None
    memory_gb = device.get("device_memory_gb")
    memory_gb = memory_gb if isinstance(memory_gb, (int, float)) and 0 < memory_gb < 1e6 else None
    browser: dict[str, Any] = {
        "user_agent": text(device.get("user_agent"), 400),
        "hardware_concurrency": cpus,
        "device_memory_gb": memory_gb,
        "model": text(ua_data.get("model"), 80),
        "platform": text(ua_data.get("platform") or device.get("platform"), 80),
        "platform_version": text(ua_data.get("platformVersion"), 40),
        "architecture": text(ua_data.get("architecture"), 40),
        "browser": text(device.get("browser"), 80),
        "mobile": ua_data.get("mobile") if isinstance(ua_data.get("mobile"), bool) else None,
        "webgpu": {
            key: text(gpu.get(key), 120) for key in ("vendor", "architecture", "device", "description", "error")
        },
        "cross_origin_isolated": device.get("cross_origin_isolated") is True,
        "secure_context": device.get("secure_context") is True,
    }
    from edgecompress.targets.phone_assets import PACKAGES

    name = browser["model"] or "browser"
    return {
        "platform": {
            "machine": browser["architecture"] or browser["platform"] or "unknown",
            "system": " ".join(
                str(p) for p in (browser["browser"], browser["platform"], browser["platform_version"]) if p
            ),
            "cpu_model": f"{name}, {cpus or '?'} logical CPUs (as the browser reports them)",
        },
        "python": None,
        "runtimes": {RUNTIMES[s][1]: p.version for s in RUNTIMES for p in PACKAGES if p.name == RUNTIMES[s][2]},
        "memory": {"total_bytes": int(memory_gb * 2**30) if memory_gb else None},
        "browser": browser,
    }


def _page_job(job: MeasureJob, target: str, runtime: str, version: str) -> tuple[PageJob, np.ndarray, dict[str, Any]]:
    from edgecompress.evaluation import runner_module

    runner = runner_module()
    try:
        data = runner.EvalData(str(job.eval_data))
    except runner.RunnerError as error:
        raise TargetError(error.message, error.fix) from None
    x = np.concatenate(list(data.batches(1024))).astype("<f4", copy=False)
    artifact = job.model.read_bytes()
    served = served_model(artifact, job.model.suffix)
    page_job = PageJob(
        target=target, model_name=job.model.name, model_sha256=served.sha256, model_bytes=len(served.data),
        artifact={"sha256": hashlib.sha256(artifact).hexdigest(), "bytes": len(artifact), "served_change": served.change},
        runtime=runtime, runtime_version=version, warmup=job.warmup, runs=job.runs,
        n=data.n, class_names=tuple(data.class_names), output_kind=data.output_kind,
    )  # fmt: skip
    return page_job, data.y, {"model": served.data, "inputs": x.tobytes(), "shape": [int(d) for d in data.shape[1:]]}


def _threads(job: MeasureJob) -> tuple[int | None, str]:
    """The thread count asked for: --threads, else the profile's cores (the page caps both at what it may use)."""
    if job.threads:
        return job.threads, f"--threads {job.threads}"
    args = list(job.extra_args)
    if "--cores" in args and args.index("--cores") + 1 < len(args):
        cores = int(args[args.index("--cores") + 1])
        return cores, f"the profile's {cores} cores"
    return None, "the CPUs the browser reports"


def _tls_pair(cert: str | None, key: str | None) -> tuple[Path, Path] | None:
    if not cert and not key:
        return None
    if not cert or not key:
        raise TargetError(
            "--tls-cert and --tls-key go together.", "Pass both: your certificate (PEM) and its private key."
        )
    paths = (Path(cert).expanduser(), Path(key).expanduser())
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise TargetError(f"{', '.join(missing)} does not exist.", "Pass your PEM certificate and key files.")
    return paths


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        host = lan_address()
    return f"[{host}]" if ":" in host else host


def _no_browser(url: str, wait: float, what: str, refused: int) -> tuple[str, str]:
    taken = f" ({refused} other browser(s) were turned away while one held the run)" if refused else ""
    after = (
        "Nothing was measured on the phone (a run folder being resumed is left as it was)."
        if what == "open"
        else "Every finished measurement is kept: the resume command serves a new link."
    )
    return (
        f"no browser {'opened' if what == 'open' else 'came back to'} {url} within {wait:g} s{taken}.",
        "Open the link on the phone while the command waits (same network as this machine, or --listen "
        f"127.0.0.1:PORT with `adb reverse tcp:PORT tcp:PORT`), or wait longer with --wait SECONDS. {after}",
    )


__all__ = ["DEFAULT_WAIT_S", "PhoneTarget", "describe_browser", "lan_address", "parse_listen"]
