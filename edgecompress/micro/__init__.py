"""TFLite Micro builds for microcontroller profiles: measured arena, LUT-compressed weights,
a firmware project, and a check against the profile's RAM and flash budgets."""

from edgecompress.micro.build import FirmwareOptions, MicroBuild, build_micro

__all__ = ["FirmwareOptions", "MicroBuild", "build_micro"]
