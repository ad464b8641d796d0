"""The fp32 baseline's accuracy for a board that runs firmware only, scored by the host runner.

An emulated microcontroller (`--target qemu`) runs TFLite Micro firmware, never the fp32
model the firmware is judged against. So the baseline .tflite is run by the board-side runner
on this machine (LocalTarget: a separate process, LiteRT), on the same evaluation images, and
the result is filed under the board's name: the verdict then compares like with like --
accuracy, per-class recall and McNemar's test on the very same images. The host's timings say
nothing about the board, so they are dropped, and the result says what it is
(`reference_for`), which the report and the verdict quote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecompress.targets.base import MeasureJob, Measurement, Target

#: what the report says about a baseline scored this way
WHAT = "the fp32 model on the host runner (the emulated board runs firmware only); accuracy only, not timed"


class HostReference(Target):
    """The host runner standing in for board `name` to score the baseline; results are filed under `name`."""

    def __init__(self, name: str, local: Target | None = None) -> None:
        from edgecompress.targets.local import LocalTarget

        self.name = name
        self.local = local or LocalTarget()

    def accepts(self, artifact: Path) -> bool:
        return artifact.suffix == ".tflite"

    def probe(self) -> dict[str, Any]:
        return self.local.probe()

    def measure(self, job: MeasureJob) -> Measurement:
        from edgecompress.targets.measurement_check import measure_checked

        measured = measure_checked(self.local, job)  # the host runner's answer, checked like any board's
        result: dict[str, Any] = dict(measured.result)
        runtime = result.get("runtime") or {}
        result.update(
            latency_ms={},
            load_ms=None,
            first_inference_ms=None,
            memory={"peak_rss_bytes": None},
            runtime={**runtime, "name": f"{runtime.get('name', 'runner')} on the host"}
            if isinstance(runtime, dict)
            else runtime,
            reference_for={"target": self.name, "scored_by": "host runner", "what": WHAT},
        )
        return Measurement(self.name, result, device={"host": measured.device}, log=measured.log)
