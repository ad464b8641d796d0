"""What a model needs on a device, and whether that fits the profile's budget: one check for all.

Sony MCT checks every budget through one `ResourceUtilization` object; edgecompress does the
same, so the plan (before training), the report (after measuring) and the microcontroller
build cannot disagree on "fits". Which figure counts against the storage budget depends on
the device: a Linux board or phone maps the whole model file into RAM (`file_bytes`); a
microcontroller keeps the model in flash, where look-up-table compressed tensors take about
their bit-packed size, and the flash budget is the whole firmware's (`flash_bytes`: a plan adds
FIRMWARE_BESIDE_MODEL_BYTES to its model estimate, a build reads its linked ELF); a profile that
reserves a flash region for the model alone (`model_flash_budget_bytes`) is checked on the model's
own flash (`model_flash_bytes`: measured on the exported file, then read off the ELF's map).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

#: what each resource figure means, for reports and error messages
MEANINGS = {
    "file_bytes": "the model file as copied to the device",
    "bitpacked_bytes": "weights at ceil(log2(unique values)) bits plus codebooks",
    "flash_bytes": "the firmware's flash (the model, the TFLite Micro interpreter and kernels, the application)",
    "model_flash_bytes": "the model's own flash inside the firmware (LUT-compressed and slimmed as TFLM stores it)",
    "ram_bytes": "RAM the model takes while running",
}


#: A plan's estimate of the firmware's flash beside the model: the smallest linked in
#: benchmarks/results/micro.json (TFLM interpreter 23.4 KB + kernels 43.3 KB + start-up, application and
#: libc 18.1 KB = 84,853 B), rounded down, so a plan never refuses what the linker would accept.
FIRMWARE_BESIDE_MODEL_BYTES = 80 * 1024


@dataclass(frozen=True)
class Resources:
    """What one artifact (or a plan, estimated) needs; None where the figure is not known."""

    file_bytes: int | None = None
    bitpacked_bytes: int | None = None
    flash_bytes: int | None = None
    model_flash_bytes: int | None = None
    ram_bytes: int | None = None
    estimated: bool = False  # True for a plan's promise, False for figures read off a built file

    def get(self, measure: str) -> int | None:
        value: int | None = getattr(self, measure)
        return value


@dataclass(frozen=True)
class Limit:
    """One budget: `measure` (a Resources field) may be at most `bytes`; `field` is the profile field.

    A limit that is not `required` leaves `fits` undecided by a missing figure: a
    microcontroller's RAM is known only for the artifact its firmware was built from.
    """

    measure: str
    bytes: int
    field: str
    required: bool = True


@dataclass(frozen=True)
class LimitCheck:
    """One limit against one artifact's figure: fits True / False, or None when the figure is unknown."""

    limit: Limit
    value: int | None
    fits: bool | None

    def sentence(self, *, estimated: bool = False) -> str:
        what = MEANINGS[self.limit.measure]
        if self.value is None:
            return f"{what}: not known"
        about = "about " if estimated else ""
        if self.fits:
            return f"{what}: {about}{self.value:,} of {self.limit.bytes:,} bytes ({self.limit.field})"
        over = self.value - self.limit.bytes
        return (
            f"{what} needs {about}{self.value:,} bytes, over the {self.limit.bytes:,}-byte {self.limit.field} by "
            f"{over:,} bytes ({over / self.limit.bytes:.0%})"
        )


@dataclass(frozen=True)
class Budget:
    """The limits a profile sets on a model."""

    limits: tuple[Limit, ...]

    @classmethod
    def of(cls, profile: Any) -> Budget:
        if profile.device_class == "microcontroller":
            model_flash = getattr(profile, "model_flash_budget_bytes", None)
            # a region reserved for the model is the figure plans are sized against: the model's flash is
            # measured exactly on the exported file, the rest of the firmware only once it is linked
            own = (Limit("model_flash_bytes", int(model_flash), "model_flash_budget_bytes"),) if model_flash else ()
            return cls(
                (
                    *own,
                    Limit("flash_bytes", int(profile.flash_budget_bytes), "flash_budget_bytes"),
                    Limit(
                        "ram_bytes", int(profile.model_memory_budget_bytes), "model_memory_budget_bytes", required=False
                    ),
                )
            )
        return cls((Limit("file_bytes", int(profile.model_memory_budget_bytes), "model_memory_budget_bytes"),))

    @property
    def storage(self) -> Limit:
        """The limit on the model's stored size (the one every plan is sized against)."""
        return self.limits[0]

    def checks(self, use: Resources) -> list[LimitCheck]:
        """Every limit against `use`, in the profile's order (storage first)."""
        return [LimitCheck(limit, use.get(limit.measure), self._fits(limit, use)) for limit in self.limits]

    def fits(self, use: Resources) -> bool | None:
        """True / False when every required figure is known; None when one is missing."""
        verdicts = [
            self._fits(limit, use) for limit in self.limits if limit.required or use.get(limit.measure) is not None
        ]
        if False in verdicts:
            return False
        return None if None in verdicts else True

    def shortfalls(self, use: Resources) -> list[str]:
        """One sentence per exceeded limit, with both figures."""
        return [check.sentence(estimated=use.estimated) for check in self.checks(use) if check.fits is False]

    @staticmethod
    def _fits(limit: Limit, use: Resources) -> bool | None:
        value = use.get(limit.measure)
        return None if value is None else value <= limit.bytes


def exported_resources(file_bytes: int, model_flash_bytes: int | None = None) -> Resources:
    """A model just exported, before any firmware is built: its file, and where the device keeps the model
    in flash, the firmware's flash: the model's share measured on the file (micro.budget.model_flash_bytes)
    plus the same FIRMWARE_BESIDE_MODEL_BYTES the plan added, so estimate and measurement compare alike
    (the linked ELF's own figure replaces both once the firmware is built)."""
    if model_flash_bytes is None:
        return Resources(file_bytes=file_bytes, flash_bytes=file_bytes)
    return Resources(
        file_bytes=file_bytes,
        flash_bytes=model_flash_bytes + FIRMWARE_BESIDE_MODEL_BYTES,
        model_flash_bytes=model_flash_bytes,
    )


def artifact_resources(
    sizes: dict[str, Any], *, flash_bytes: int | None = None, model_flash_bytes: int | None = None
) -> Resources:
    """An exported artifact's figures; in flash a file takes its own size unless a build says otherwise
    (`flash_bytes`: its firmware's; `model_flash_bytes`: the model's share of it)."""
    known = {f.name for f in fields(Resources)}
    figures: dict[str, int | None] = {k: v for k, v in sizes.items() if k in known and isinstance(v, int)}
    figures.setdefault("flash_bytes", flash_bytes if flash_bytes is not None else figures.get("file_bytes"))
    figures.setdefault(
        "model_flash_bytes", model_flash_bytes if model_flash_bytes is not None else figures.get("file_bytes")
    )
    return Resources(**figures)  # type: ignore[arg-type]
