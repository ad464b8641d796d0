"""Latency ESTIMATE for a microcontroller: multiply-accumulates x cycles per MAC / clock.

Nothing here runs on the device, so every figure this module produces is an estimate and is
labelled as one. The MAC count is exact (read from the model's shapes); the cycles-per-MAC
figures are rough, per core family, for int8 kernels as TFLM ships them for that core:

- Cortex-M7 (armv7e-m): CMSIS-NN's SMLAD does two 16-bit MACs per instruction and the M7
  dual-issues loads, ~1 cycle/MAC in practice.
- Cortex-M4/M33/M55 without Helium (armv7e-m / armv8-m): same SMLAD kernels, single issue and
  more load stalls, ~2 cycles/MAC.
- Cortex-M0/M0+ (armv6-m): no DSP instructions, TFLM's reference C kernels, ~8 cycles/MAC.
- Xtensa LX7 (ESP32-S3): ESP-NN's 128-bit SIMD kernels, ~1 cycle/MAC on conv/dense.
- Xtensa LX6 (ESP32) and RV32 cores without packed-SIMD: ESP-NN/reference C, ~4 cycles/MAC.

Ignored, and the reason measured latency is usually higher: non-MAC ops (pooling, softmax,
requantization), interpreter overhead per op, DECODE of LUT-compressed tensors, and memory
wait states (flash execute-in-place, PSRAM arenas). Treat the figure as a lower bound.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgecompress.micro.graph import operators, read_model

LABEL = "estimate (MACs x cycles-per-MAC / clock; not measured on the device)"


@dataclass(frozen=True)
class CoreCost:
    family: str
    cycles_per_mac: float
    basis: str


UNKNOWN_CORE = CoreCost("unknown core", 4.0, "no figure for this core; reference-kernel guess")


def core_cost(profile: object) -> CoreCost:
    """Cycles per int8 MAC on the profile's core (`cpu.core`, edgecompress/hardware.py)."""
    from edgecompress.hardware import profile_core

    core = profile_core(profile)
    if core is None or core.cycles_per_mac is None:
        return UNKNOWN_CORE
    return CoreCost(core.family, core.cycles_per_mac, core.kernels)


def _elements(shape: Any) -> int:
    return int(np.prod(shape, dtype=np.int64))


#: op -> MACs from (output shape, weight shape); convolutions and matrix products only.
_MAC_RULES = {
    "CONV_2D": lambda out, w: _elements(out) * _elements(w[1:]),  # filter [out_c, kh, kw, in_c]
    "DEPTHWISE_CONV_2D": lambda out, w: _elements(out) * w[1] * w[2],  # filter [1, kh, kw, out_c]
    "FULLY_CONNECTED": lambda out, w: _elements(out) * w[-1],  # weights [units, in]
    "TRANSPOSE_CONV": lambda out, w: _elements(out) * w[1] * w[2] * w[3],  # filter [out_c, kh, kw, in_c]
    "BATCH_MATMUL": lambda out, w: _elements(out) * w[-2],
}
_WEIGHT_INPUT = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "TRANSPOSE_CONV": 1, "BATCH_MATMUL": 1}


def count_macs(tflite_bytes: bytes) -> dict[str, Any]:
    """Multiply-accumulates per inference, in total and per layer (conv, dense, matmul ops)."""
    per_layer = []
    for op in operators(read_model(tflite_bytes)):
        rule = _MAC_RULES.get(op.name)
        if rule is None:
            continue
        weights = op.op.inputs[_WEIGHT_INPUT[op.name]]
        macs = int(rule(op.op.outputs[0].shape, tuple(int(d) for d in weights.shape)))
        per_layer.append({"layer": op.layer, "op": op.name, "macs": macs})
    return {"total": sum(row["macs"] for row in per_layer), "per_layer": per_layer}


@dataclass(frozen=True)
class LatencyEstimate:
    milliseconds: float
    macs: int
    cycles_per_mac: float
    clock_mhz: int
    core: str
    basis: str
    label: str = LABEL

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ignores": "non-MAC ops, interpreter overhead, DECODE, flash/PSRAM wait states"}


def estimate_latency(macs: int, *, profile: object, clock_mhz: int) -> LatencyEstimate:
    cost = core_cost(profile)
    milliseconds = macs * cost.cycles_per_mac / (clock_mhz * 1e6) * 1e3
    return LatencyEstimate(round(milliseconds, 3), macs, cost.cycles_per_mac, clock_mhz, cost.family, cost.basis)


# --------------------------------------------------------------------------- from emulated instructions

EMULATED_LABEL = "instructions executed on an emulated {core} (QEMU {board}, -icount shift=0)"
TIME_FROM_INSTRUCTIONS_LABEL = (
    "estimate: instructions on the emulated core x an assumed cycles-per-instruction / the "
    "profile's clock (QEMU counts instructions, not cycles)"
)


@dataclass(frozen=True)
class CpiAssumption:
    cycles_per_instruction: float
    basis: str


#: Cycles per instruction assumed to turn emulated instruction counts into time. QEMU does not
#: model pipelines, caches or wait states, so this is the one stated assumption in the figure.
CPI_ASSUMPTIONS: dict[str, CpiAssumption] = {
    "cortex-m7": CpiAssumption(0.8, "Cortex-M7 dual-issue pipeline, code and data in TCM / cache hits"),
    "cortex-m4": CpiAssumption(
        1.3,
        "Cortex-M4 single issue: most instructions 1 cycle, loads 2, taken branches 2-4; "
        "zero flash wait states (flash cache hits)",
    ),
    "cortex-m55": CpiAssumption(1.0, "Cortex-M55 scalar code, TCM"),
    "cortex-m33": CpiAssumption(1.25, "Cortex-M33 single issue, zero wait states"),
    "cortex-m3": CpiAssumption(1.3, "Cortex-M3 single issue, zero wait states"),
    "cortex-m0plus": CpiAssumption(1.4, "Cortex-M0+ two-stage pipeline, zero wait states"),
}


def time_from_instructions(instructions: float, *, mcpu: str, clock_mhz: int) -> dict[str, Any]:
    """Estimated milliseconds at the profile's clock, with the CPI assumption stated beside it."""
    cpi = CPI_ASSUMPTIONS.get(mcpu, CpiAssumption(1.3, "generic single-issue Cortex-M"))
    return {
        "milliseconds": round(instructions * cpi.cycles_per_instruction / (clock_mhz * 1e3), 4),
        "instructions": round(float(instructions), 1),
        "cycles_per_instruction": cpi.cycles_per_instruction,
        "cpi_basis": cpi.basis,
        "clock_mhz": clock_mhz,
        "label": TIME_FROM_INSTRUCTIONS_LABEL,
    }
