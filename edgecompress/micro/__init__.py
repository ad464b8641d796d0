"""TFLite Micro builds for microcontroller profiles: the model checked in the TFLM interpreter,
LUT-compressed weights, and the whole firmware compiled, linked and measured for the profile's
Cortex-M core (flash and RAM from the ELF, the arena on 32 bits), ready to run on an emulated
board (`edgecompress.targets.qemu`)."""

from edgecompress.micro.build import FirmwareOptions, MicroBuild, build_micro

__all__ = ["FirmwareOptions", "MicroBuild", "build_micro"]
