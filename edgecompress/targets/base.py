"""What every target (this machine, a board over SSH, a fleet) must do.

A target takes a measurement job -- an exported model plus an evaluation set -- runs the
board-side runner (`firmware/runner/edgecompress_runner.py`) *on the device*, and returns
the runner's JSON document unchanged plus a description of the device. `deploy` does not
know or care how the bytes got there.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgecompress.targets.rounds import RoundsJob


@dataclass(frozen=True)
class MeasureJob:
    """One artifact to measure on the device.

    `eval_data` is an .npz written by `edgecompress.data.write_eval_npz`: float32 `x`
    already scaled the way the model expects, int `y`, `class_names`, and `output_kind`
    ('softmax' | 'sigmoid' | 'logits'), so the runner needs no knowledge of the data source.
    """

    model: Path
    eval_data: Path
    warmup: int = 20
    runs: int = 100
    threads: int | None = None
    timeout_s: float = 900.0
    extra_args: tuple[str, ...] = ()


@dataclass
class Measurement:
    """The runner's JSON, as it came back from the device, plus where it was measured."""

    target: str
    result: dict[str, Any]
    device: dict[str, Any] = field(default_factory=dict)
    log: str = ""


def attach_samples(result: dict[str, Any], samples: Any) -> dict[str, Any]:
    """Put the raw latency samples (sent in their own file) into the result's latency section.

    Whatever shape the board sent is left for measurement_check to judge: a result without
    a latency section stays without one rather than failing here with a bare TypeError.
    """
    if isinstance(samples, dict):
        samples = samples.get("samples")
    latency = result.get("latency_ms")
    if isinstance(latency, dict):
        latency["samples"] = samples
    return result


def printable(text: str) -> str:
    """`text` with every control character written as an escape (\\x1b, \\t).

    What a board prints reaches the user's terminal and deploy.log; a terminal escape
    sequence in it must show as text, never act on the terminal.
    """
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


class Target(abc.ABC):
    """A place artifacts run. Subclasses: LocalTarget, SshTarget."""

    #: short name used in reports and folder names, e.g. 'local' or 'pi@10.0.0.7:22'
    name: str

    @abc.abstractmethod
    def probe(self) -> dict[str, Any]:
        """Describe the device (arch, OS, Python, memory, runtimes) before anything is sent.

        Raise TargetError when the device cannot run the runner at all, naming the fix.
        """

    @abc.abstractmethod
    def measure(self, job: MeasureJob) -> Measurement:
        """Run the runner on the device for `job` and return its JSON.

        Raise TargetError (with the failed step and the fix) when the run cannot complete.
        """

    def measure_rounds(self, job: RoundsJob) -> Measurement | None:
        """Time every model of `job` against the others in interleaved rounds (targets.rounds) and return the
        runner's JSON; None for a board with no wall clock to time (an emulated microcontroller counts
        instructions instead)."""
        return None

    def accepts(self, artifact: Path) -> bool:
        """Whether this target runs `artifact`: boards with the runner take model files; an
        emulated microcontroller (QemuTarget) takes only the firmware built for it."""
        return artifact.suffix in (".tflite", ".onnx")

    def reference(self) -> Target | None:
        """Where the baseline is scored when this target cannot run it (None: it runs the baseline itself).

        An emulated microcontroller runs firmware only; its accuracy reference is the fp32
        model on the host runner (targets/host_reference.py), filed under this target's name.
        """
        return None

    def close(self) -> None:  # noqa: B027 - a target without connections has nothing to release
        """Release connections. Safe to call twice."""

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
