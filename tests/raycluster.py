"""A real two-node Ray cluster on 127.0.0.1 for the tune tests: `ray start --head` plus a second node.

Each node is a `ray start --block` process in a session of its own with 1 CPU; stopping
sends SIGTERM, then SIGKILL, to those two process groups only (never `ray stop`, which would
end every Ray on the machine). Token authentication stays on (Ray's default): the nodes and
the tune driver share a throw-away token through RAY_AUTH_TOKEN, as a real cluster's would.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT_S = 90.0
#: per node: the store holds only trial requests and results
OBJECT_STORE = str(80 * 1024**2)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ray_script() -> str:
    return str(Path(sys.executable).with_name("ray"))


@dataclass
class RayCluster:
    address: str
    env: dict[str, str]
    folder: Path
    nodes: list[subprocess.Popen] = field(default_factory=list)

    def status(self) -> str:
        done = subprocess.run(
            [ray_script(), "status", "--address", self.address],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
        )
        return done.stdout if done.returncode == 0 else ""

    def logs(self) -> str:
        return "\n".join(
            (self.folder / f"node{i}.log").read_text(errors="replace")[-3000:] for i in range(len(self.nodes))
        )

    def stop(self) -> None:
        for node in reversed(self.nodes):
            _signal_group(node, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for node in reversed(self.nodes):
            try:
                node.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(node, signal.SIGKILL)  # the raylet, GCS and workers share the node's process group
            node.wait(10)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def start_cluster(folder: Path, repo: Path, extra_env: dict[str, str] | None = None) -> RayCluster:
    """Head and second node, each 1 CPU, on 127.0.0.1; workers import edgecompress from `repo`."""
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = dict(
        os.environ,
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(16),
        PYTHONPATH=os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
        **(extra_env or {}),
    )
    cluster = RayCluster(f"127.0.0.1:{port}", env, folder)
    common = [
        "--block",
        "--node-ip-address",
        "127.0.0.1",
        "--num-cpus",
        "1",
        "--object-store-memory",
        OBJECT_STORE,
        "--disable-usage-stats",
    ]
    commands = [
        [
            ray_script(),
            "start",
            "--head",
            "--port",
            str(port),
            "--include-dashboard=false",
            "--temp-dir",
            str(folder / "ray"),
            *common,
        ],
        [ray_script(), "start", "--address", cluster.address, *common],
    ]
    try:
        for index, command in enumerate(commands):
            log = (folder / f"node{index}.log").open("w")
            cluster.nodes.append(
                subprocess.Popen(
                    command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=folder
                )
            )
            _wait_for_nodes(cluster, index + 1)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_for_nodes(cluster: RayCluster, count: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(node.poll() is not None for node in cluster.nodes):
            raise RuntimeError(f"a Ray node exited while starting:\n{cluster.logs()}")
        if cluster.status().count(" node_") >= count:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the Ray cluster did not reach {count} node(s) in {START_TIMEOUT_S:.0f} s:\n{cluster.logs()}")
