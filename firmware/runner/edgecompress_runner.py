#!/usr/bin/env python3
"""edgecompress board-side runner: measure one .tflite/.onnx model on *this* device.

This file is copied to the device and run there as is, so it must stay standalone:
Python 3.8+, the standard library, NumPy and one inference runtime. It never imports
edgecompress or TensorFlow's training stack (tensorflow.lite is only the last fallback).
The contract (arguments, JSON, error kinds) is in firmware/runner/README.md.
"""

from __future__ import annotations

import abc
import argparse
import contextlib
import gc
import hashlib
import json
import math
import os
import platform
import shlex
import shutil
import sys
import time
import traceback
import zipfile
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

RUNNER_VERSION = "3"

#: (name reported in JSON, module to import, pip package that provides it), best first.
TFLITE_RUNTIMES = (
    ("ai_edge_litert", "ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime", "tflite_runtime.interpreter", "tflite-runtime"),
    ("tensorflow", "tensorflow", "tensorflow"),
)
ONNX_RUNTIMES = (("onnxruntime", "onnxruntime", "onnxruntime"),)
RUNTIMES_BY_SUFFIX = {".tflite": TFLITE_RUNTIMES, ".onnx": ONNX_RUNTIMES}
ALL_RUNTIMES = TFLITE_RUNTIMES + ONNX_RUNTIMES

OUTPUT_KINDS = ("softmax", "sigmoid", "logits")
#: eval sets of other tasks: the runner returns the outputs and scores nothing (the host computes every figure)
RAW_OUTPUTS = "raw"
#: A single-output model predicts class 1 when its score passes this threshold.
BINARY_THRESHOLDS = {"sigmoid": 0.5, "softmax": 0.5, "logits": 0.0}

#: Accelerators a profile can name -> what the runner tries, best first: LiteRT delegate
#: libraries (`load_delegate`) and onnxruntime execution providers. A board that has none of
#: them runs on the CPU, and the result says so (`execution.note`).
ACCELERATOR_DELEGATES = {
    "edgetpu": ("libedgetpu.so.1", "libedgetpu.1.dylib", "edgetpu.dll"),
    "gpu": ("libtensorflowlite_gpu_delegate.so",),
    "npu": ("libvx_delegate.so", "libneuron_delegate.so", "libethosu_delegate.so"),
    "dsp": ("libhexagon_delegate.so",),
}
ACCELERATOR_PROVIDERS = {
    "gpu": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "ROCMExecutionProvider", "CoreMLExecutionProvider"),
    "npu": ("QNNExecutionProvider", "VitisAIExecutionProvider", "OpenVINOExecutionProvider", "NnapiExecutionProvider"),
    "dsp": ("QNNExecutionProvider",),
    "edgetpu": (),
}
ACCELERATORS = ("none",) + tuple(ACCELERATOR_DELEGATES)
TFLITE_OP_PROFILE_NOTE = (
    "LiteRT's Python interpreter (ai-edge-litert 2.3, tflite_runtime, tf.lite) exposes no per-operator profiler: "
    "its InterpreterWrapper has no profiling call, `experimental_force_delegate_node_profiling` only feeds a C++ "
    "profiler that Python cannot attach, and the CompiledModel API reports no per-op times. On the board, LiteRT's "
    "C++ benchmark_model with --enable_op_profiling=true gives them; the report shows each op's share of MACs instead."
)

#: Exit codes: one per error kind so shell scripts on the board can branch without JSON.
EXIT_CODES = {"bad_args": 2, "no_runtime": 3, "bad_model": 4, "bad_data": 5, "runtime_error": 6}


class RunnerError(Exception):
    """A failure the person at the board can act on; becomes the `{"error": ...}` document."""

    def __init__(self, kind: str, message: str, fix: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.fix = fix

    def as_json(self) -> Dict[str, Any]:
        return {"error": {"kind": self.kind, "message": self.message, "fix": self.fix}}


# --------------------------------------------------------------------------- stdout guard


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to fd 1 to stderr while runtimes are imported, loaded and run.

    Some runtimes print banners to stdout from C++, which would corrupt the one JSON
    document the caller parses. C stdio buffers are flushed before fd 1 is restored, or
    their contents would surface after the JSON at process exit.
    """
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no fd 1 at all (closed by the caller): nothing to protect
        yield
        return
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        _flush_c_stdio()
        os.dup2(saved, 1)
        os.close(saved)


def _flush_c_stdio() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except Exception:  # noqa: BLE001 - best effort; not every libc is reachable via ctypes
        pass


def progress_printer(enabled: bool) -> Callable[[str], None]:
    def emit(message: str) -> None:
        if enabled:
            sys.stderr.write("edgecompress-runner: %s\n" % message)
            sys.stderr.flush()

    return emit


# --------------------------------------------------------------------------- device facts


def usable_cpus() -> int:
    """CPUs this process may run on (a container or taskset can allow fewer than exist)."""
    try:
        return len(os.sched_getaffinity(0))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def platform_info() -> Dict[str, Any]:
    return {
        "machine": platform.machine(),
        "system": platform.system(),
        "release": platform.release(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "cpu_model": _cpu_model(),
    }


def _cpu_model() -> Optional[str]:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def _proc_status_bytes(field: str) -> Optional[int]:
    """A `VmRSS`-style field of /proc/self/status in bytes; None where /proc does not exist."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_bytes() -> Optional[int]:
    """Peak resident set size of this process.

    /proc's VmHWM first: Linux carries ru_maxrss across fork+exec, so a runner started by a
    large parent (a Python process holding TensorFlow, say) would report the parent's peak
    instead of its own. ru_maxrss (KiB on Linux, bytes on macOS) only where /proc is absent.
    """
    hwm = _proc_status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    try:
        import resource
    except ImportError:  # Windows
        return None
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024


def current_rss_bytes() -> Optional[int]:
    return _proc_status_bytes("VmRSS")


def system_memory() -> Dict[str, Optional[int]]:
    info = {}  # type: Dict[str, int]
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                info[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    total = info.get("MemTotal")
    if total is None:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            total = None
    return {"total_bytes": total, "available_bytes": info.get("MemAvailable")}


def probe() -> Dict[str, Any]:
    """Describe this device without loading a model; must work even with no NumPy at all."""
    try:
        import numpy

        numpy_version = numpy.__version__  # type: Optional[str]
    except Exception:  # noqa: BLE001 - a broken NumPy is as good as none
        numpy_version = None
    runtimes = {}  # type: Dict[str, Optional[str]]
    problems = {}  # type: Dict[str, str]
    for name, module, package in ALL_RUNTIMES:
        if name == "tensorflow":
            # Importing TensorFlow takes seconds; installed-and-versioned is enough to know.
            runtimes[name] = _installed_version(package) if _module_exists(module) else None
            continue
        try:
            runtimes[name] = _runtime_version(_import_module(module), package)
        except Exception as exc:  # noqa: BLE001 - report why, do not fail the probe
            runtimes[name] = None
            if _module_exists(name):
                problems[name] = "%s: %s" % (type(exc).__name__, exc)
    try:
        disk_free = shutil.disk_usage(os.path.dirname(os.path.abspath(__file__))).free  # type: Optional[int]
    except OSError:
        disk_free = None
    try:
        board = Board()
        sensors = board.exposes(power_meter(board))  # type: Optional[Dict[str, Any]]
    except Exception:  # noqa: BLE001 - what the board tells about itself is a bonus in a probe
        sensors = None
    return {
        "runner_version": RUNNER_VERSION,
        "platform": platform_info(),
        "board": sensors,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "numpy": numpy_version,
        "runtimes": runtimes,
        "runtime_import_errors": problems,
        "memory": system_memory(),
        "disk_free_bytes": disk_free,
    }


def _module_exists(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def _import_module(module: str) -> Any:
    import importlib

    return importlib.import_module(module)


def _installed_version(package: str) -> Optional[str]:
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8 is not supported, but say "unknown" rather than crash
        return "unknown"
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def _runtime_version(module: Any, package: str) -> str:
    top = sys.modules.get(module.__name__.split(".")[0], module)
    return str(getattr(top, "__version__", None) or _installed_version(package))


# --------------------------------------------------------------------------- board state
#
# What the board says about itself while it is timed: clock per core (cpufreq), temperatures
# (thermal zones), throttling (Raspberry Pi firmware, x86 thermal_throttle counters), load and
# free memory. Every reader takes the file-system root, so the parsing can be checked against
# sysfs trees laid out as the kernel documents them; a file a board does not have is left out.

#: `vcgencmd get_throttled` bits (Raspberry Pi firmware documentation): now (0-3) and since boot (16-19)
THROTTLE_BITS = {
    0: "under-voltage",
    1: "arm frequency capped",
    2: "throttled",
    3: "soft temperature limit",
}
SINCE_BOOT_SHIFT = 16


def _read_text(path: str) -> Optional[str]:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _read_int(path: str) -> Optional[int]:
    text = _read_text(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _numbered(paths: Sequence[str]) -> List[str]:
    """cpu10 after cpu9: sort by the number in the last path component that has one."""
    import re

    def key(path: str) -> Tuple[Any, ...]:
        return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path))

    return sorted(paths, key=key)


def _glob(root: str, pattern: str) -> List[str]:
    import glob

    return _numbered(glob.glob(os.path.join(root, pattern)))


def read_cpufreq(root: str = "/") -> Dict[str, Dict[str, Any]]:
    """Per core: current and maximum clock (kHz) and governor, from cpuN/cpufreq (a link to its policy)."""
    cores = {}  # type: Dict[str, Dict[str, Any]]
    for folder in _glob(root, "sys/devices/system/cpu/cpu[0-9]*/cpufreq"):
        core = os.path.basename(os.path.dirname(folder))
        current = _read_int(os.path.join(folder, "scaling_cur_freq"))
        if current is None:
            current = _read_int(os.path.join(folder, "cpuinfo_cur_freq"))
        if current is None:
            continue
        cores[core] = {
            "khz": current,
            "max_khz": _read_int(os.path.join(folder, "scaling_max_freq")),
            "governor": _read_text(os.path.join(folder, "scaling_governor")),
        }
    return cores


def read_temperatures(root: str = "/") -> Dict[str, float]:
    """Degrees Celsius per thermal zone (`temp` is in millidegrees); hwmon temp*_input where there is no zone."""
    found = {}  # type: Dict[str, float]
    for zone in _glob(root, "sys/class/thermal/thermal_zone[0-9]*"):
        value = _read_int(os.path.join(zone, "temp"))
        if value is not None:
            kind = _read_text(os.path.join(zone, "type"))
            found["%s (%s)" % (os.path.basename(zone), kind) if kind else os.path.basename(zone)] = value / 1000.0
    if found:
        return found
    for sensor in _glob(root, "sys/class/hwmon/hwmon[0-9]*/temp[0-9]*_input"):
        value = _read_int(sensor)
        if value is None:
            continue
        device = os.path.dirname(sensor)
        label = _read_text(sensor.replace("_input", "_label")) or os.path.basename(sensor).split("_")[0]
        found["%s %s" % (_read_text(os.path.join(device, "name")) or os.path.basename(device), label)] = value / 1000.0
    return found


def read_throttle_counts(root: str = "/") -> Dict[str, int]:
    """x86 thermal throttling events per core since boot (thermal_throttle/core_throttle_count)."""
    counts = {}
    for path in _glob(root, "sys/devices/system/cpu/cpu[0-9]*/thermal_throttle/core_throttle_count"):
        value = _read_int(path)
        if value is not None:
            counts[path.split(os.sep)[-3]] = value
    return counts


def parse_throttled(text: str) -> Optional[Dict[str, Any]]:
    """`throttled=0x50005` -> the raw value and the named conditions, now and since boot; None if unreadable."""
    _, _, value = text.strip().partition("=")
    try:
        bits = int(value.strip(), 16)
    except ValueError:
        return None
    return {
        "raw": "0x%x" % bits,
        "now": [name for bit, name in sorted(THROTTLE_BITS.items()) if bits & (1 << bit)],
        "since_boot": [name for bit, name in sorted(THROTTLE_BITS.items()) if bits & (1 << (bit + SINCE_BOOT_SHIFT))],
    }


def run_vcgencmd(vcgencmd: Optional[str], *args: str) -> Optional[str]:
    """The output of Raspberry Pi's `vcgencmd` (None where it does not exist or fails)."""
    if not vcgencmd:
        return None
    import subprocess

    try:
        completed = subprocess.run(
            [vcgencmd] + list(args), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.decode("utf-8", "replace") if completed.returncode == 0 else None


def read_load_average(root: str = "/") -> Optional[List[float]]:
    text = _read_text(os.path.join(root, "proc/loadavg"))
    try:
        return [float(part) for part in text.split()[:3]] if text else None
    except ValueError:
        return None


def read_available_memory(root: str = "/") -> Optional[int]:
    """MemAvailable of /proc/meminfo, in bytes."""
    text = _read_text(os.path.join(root, "proc/meminfo"))
    for line in (text or "").splitlines():
        key, _, value = line.partition(":")
        if key == "MemAvailable":
            try:
                return int(value.split()[0]) * 1024
            except (ValueError, IndexError):
                return None
    return None


class Board:
    """This board's own account of its state, read under `root` ("/" on a real board)."""

    def __init__(self, root: str = "/", vcgencmd: Optional[str] = None) -> None:
        self.root = root
        self.vcgencmd = vcgencmd if vcgencmd is not None else (shutil.which("vcgencmd") if root == "/" else None)
        self._started = time.monotonic()

    def state(self) -> Dict[str, Any]:
        """Clock, temperatures, throttling, load and free memory now (a figure the board lacks is null or empty)."""
        throttled_text = run_vcgencmd(self.vcgencmd, "get_throttled")
        return {
            "time_s": round(time.monotonic() - self._started, 3),
            "cpufreq": read_cpufreq(self.root),
            "temperatures_c": read_temperatures(self.root),
            "throttled": parse_throttled(throttled_text) if throttled_text else None,
            "throttle_counts": read_throttle_counts(self.root),
            "load_average": read_load_average(self.root),
            "memory_available_bytes": read_available_memory(self.root),
        }

    def exposes(self, meter: "Optional[PowerMeter]") -> Dict[str, Any]:
        """What this board can tell at all: which readers found something."""
        state = self.state()
        return {
            "cpufreq_cores": len(state["cpufreq"]),
            "temperature_sensors": sorted(state["temperatures_c"]),
            "throttling": "vcgencmd get_throttled"
            if state["throttled"] is not None
            else ("thermal_throttle counters" if state["throttle_counts"] else None),
            "load_average": state["load_average"] is not None,
            "memory_available": state["memory_available_bytes"] is not None,
            "power": meter.describe() if meter is not None else None,
        }


# --------------------------------------------------------------------------- energy
#
# Power where the board can tell: hwmon power*_input (microwatts), or in*_input (mV) x
# curr*_input (mA) of the same channel (INA3221 on Jetson and other hwmon monitors); the older
# Jetson INA3221 IIO driver's in_power*_input (mW); Raspberry Pi 5's PMIC through
# `vcgencmd pmic_read_adc` (V x A per rail). Energy per inference is computed by the host from
# the raw readings (runner/README.md).

#: a rail whose label names the board's whole input (VDD_IN, POM_5V_IN, VIN, ...) is read alone, not summed with its parts
TOTAL_RAIL = r"(?:^|[\s_])IN(?:$|[\s_])|\bVIN\b|INPUT|TOTAL"


class PowerRail:
    """One power reading: a name, how it is read, and a function returning watts (None when a read fails)."""

    def __init__(self, name: str, method: str, read: Callable[[], Optional[float]]) -> None:
        self.name, self.method, self.read = name, method, read


def _hwmon_power(path: str, scale: float) -> Callable[[], Optional[float]]:
    def read() -> Optional[float]:
        value = _read_int(path)
        return None if value is None else value * scale

    return read


def _hwmon_volts_amps(volts: str, amps: str) -> Callable[[], Optional[float]]:
    def read() -> Optional[float]:
        millivolts, milliamps = _read_int(volts), _read_int(amps)
        return None if millivolts is None or milliamps is None else millivolts * milliamps / 1e6

    return read


def hwmon_rails(root: str = "/") -> List[PowerRail]:
    """Per hwmon device: power*_input (uW) channels, or else in*_input x curr*_input pairs of the same number."""
    import re

    rails = []
    for device in _glob(root, "sys/class/hwmon/hwmon[0-9]*"):
        chip = _read_text(os.path.join(device, "name")) or os.path.basename(device)
        powers = _glob(device, "power[0-9]*_input")
        for path in powers:
            label = _read_text(path.replace("_input", "_label")) or os.path.basename(path).split("_")[0]
            rails.append(
                PowerRail("%s %s" % (chip, label), "hwmon %s" % os.path.basename(path), _hwmon_power(path, 1e-6))
            )
        if powers:
            continue
        for current in _glob(device, "curr[0-9]*_input"):
            channel = re.findall(r"curr(\d+)_input", os.path.basename(current))[0]
            voltage = os.path.join(device, "in%s_input" % channel)
            if not os.path.exists(voltage):
                continue
            label = _read_text(os.path.join(device, "in%s_label" % channel)) or "channel %s" % channel
            rails.append(
                PowerRail(
                    "%s %s" % (chip, label),
                    "hwmon in%s_input x curr%s_input" % (channel, channel),
                    _hwmon_volts_amps(voltage, current),
                )
            )
    return rails


def ina3221_iio_rails(root: str = "/") -> List[PowerRail]:
    """Older Jetson kernels: the ina3221x IIO driver's in_power*_input (mW), named by rail_name_*."""
    rails = []
    for path in _glob(root, "sys/bus/i2c/drivers/ina3221x/*/iio:device[0-9]*/in_power[0-9]*_input"):
        channel = os.path.basename(path)[len("in_power") : -len("_input")]
        label = _read_text(os.path.join(os.path.dirname(path), "rail_name_%s" % channel)) or "channel %s" % channel
        rails.append(
            PowerRail("ina3221 %s" % label, "ina3221x iio in_power%s_input" % channel, _hwmon_power(path, 1e-3))
        )
    return rails


def parse_pmic_adc(text: str) -> Optional[float]:
    """Raspberry Pi 5 `vcgencmd pmic_read_adc`: the sum over rails of volts x amps (a rail needs both)."""
    import re

    amps, volts = {}, {}  # type: Dict[str, float], Dict[str, float]
    for name, kind, value in re.findall(r"(\S+)\s+(current|volt)\(\d+\)=([-+0-9.eE]+)[AV]", text):
        (amps if kind == "current" else volts)[name.rsplit("_", 1)[0]] = float(value)
    rails = [amps[name] * volts[name] for name in amps if name in volts]
    return sum(rails) if rails else None


def pmic_rails(vcgencmd: Optional[str]) -> List[PowerRail]:
    if parse_pmic_adc(run_vcgencmd(vcgencmd, "pmic_read_adc") or "") is None:
        return []

    def read() -> Optional[float]:
        return parse_pmic_adc(run_vcgencmd(vcgencmd, "pmic_read_adc") or "")

    return [PowerRail("Raspberry Pi 5 PMIC (sum of rails)", "vcgencmd pmic_read_adc, V x A per rail", read)]


class PowerMeter:
    """The board's power in watts: its whole-input rail when one is named so, else the sum of every rail."""

    def __init__(self, rails: List[PowerRail]) -> None:
        import re

        total = [rail for rail in rails if re.search(TOTAL_RAIL, rail.name.split(" ", 1)[-1], re.IGNORECASE)]
        self.rails = rails
        self.used = total[:1] or rails

    def read(self) -> Optional[float]:
        values = [rail.read() for rail in self.used]
        return None if any(v is None for v in values) else float(sum(values))  # type: ignore[arg-type]

    def describe(self) -> Dict[str, Any]:
        used = self.used
        how = used[0].name if len(used) == 1 else "sum of %d rails" % len(used)
        return {
            "rails": [{"name": r.name, "method": r.method} for r in self.rails],
            "used": [r.name for r in used],
            "method": "%s (%s)" % (how, "; ".join(sorted({r.method for r in used}))),
        }


def power_meter(board: Board) -> Optional[PowerMeter]:
    """The board's power meter, or None where it exposes no power at all."""
    rails = hwmon_rails(board.root) + ina3221_iio_rails(board.root) + pmic_rails(board.vcgencmd)
    meter = PowerMeter(rails) if rails else None
    return meter if meter is not None and meter.read() is not None else None


def energy_window(session: "Session", inputs: Any, meter: PowerMeter, seconds: float, every: float) -> Dict[str, Any]:
    """Idle power for `seconds`, then power while inferring for `seconds`: the raw readings (W) and the count."""
    idle = []  # type: List[float]
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(idle) < 2:
        reading = meter.read()
        if reading is not None:
            idle.append(reading)
        time.sleep(every)
    idle_s = time.perf_counter() - start
    active = []  # type: List[float]
    count, start = 0, time.perf_counter()
    next_read = start
    while True:
        session.run(inputs[count % len(inputs)][None, ...])
        count += 1
        now = time.perf_counter()
        if now >= next_read:
            reading = meter.read()
            if reading is not None:
                active.append(reading)
            next_read = now + every
        if now - start >= seconds and len(active) >= 2:
            break
    return {
        "idle": {"seconds": round(idle_s, 4), "watts": [round(v, 6) for v in idle]},
        "active": {"seconds": round(now - start, 6), "inferences": count, "watts": [round(v, 6) for v in active]},
    }


# --------------------------------------------------------------------------- eval data


class EvalData:
    """The eval .npz, read so that `x` never has to sit in memory whole.

    A CIFAR-10 test set is 123 MB of float32; on a 512 MB board that would both crowd the
    model and swamp the peak-RSS figure, so `x` is streamed from the zip member in batches.
    """

    def __init__(self, path: str) -> None:
        np = _numpy()
        self.path = path
        if not os.path.isfile(path):
            raise RunnerError(
                "bad_data", "Eval data %s does not exist." % path, "Pass the .npz written by edgecompress with --data."
            )
        try:
            archive = np.load(path, allow_pickle=False)
            members = set(archive.files)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user problem
            raise RunnerError(
                "bad_data", "Eval data %s is not a readable .npz file (%s)." % (path, exc), _REEXPORT_DATA
            ) from exc
        missing = [key for key in ("x", "output_kind") if key not in members]
        if missing:
            raise RunnerError("bad_data", "Eval data %s lacks %s." % (path, ", ".join(missing)), _REEXPORT_DATA)
        try:
            self.output_kind = str(np.asarray(archive["output_kind"]).reshape(-1)[0])
            self.output_names = (
                [str(n) for n in np.asarray(archive["output_names"]).reshape(-1)] if ("output_names" in members) else []
            )
            self.output_sizes = (
                [int(n) for n in np.asarray(archive["output_sizes"]).reshape(-1)] if ("output_sizes" in members) else []
            )
        except Exception as exc:  # noqa: BLE001
            raise RunnerError(
                "bad_data",
                "Eval data %s has an unreadable output_kind/output_names (%s)." % (path, exc),
                _REEXPORT_DATA,
            ) from exc
        if self.output_kind not in OUTPUT_KINDS + (RAW_OUTPUTS,):
            raise RunnerError(
                "bad_data",
                "Eval data %s has output_kind %r." % (path, self.output_kind),
                "output_kind must be one of %s; re-export the eval data." % ", ".join(OUTPUT_KINDS + (RAW_OUTPUTS,)),
            )
        self.labelled = self.output_kind in OUTPUT_KINDS
        missing = [key for key in ("y", "class_names") if self.labelled and key not in members]
        if missing:
            raise RunnerError("bad_data", "Eval data %s lacks %s." % (path, ", ".join(missing)), _REEXPORT_DATA)
        try:
            self.y = np.asarray(archive["y"]).astype(np.int64).reshape(-1) if self.labelled else None
            self.class_names = (
                [str(name) for name in np.asarray(archive["class_names"]).reshape(-1)] if self.labelled else []
            )
        except Exception as exc:  # noqa: BLE001
            raise RunnerError(
                "bad_data", "Eval data %s has unreadable y/class_names (%s)." % (path, exc), _REEXPORT_DATA
            ) from exc
        self._in_memory_x = None  # type: Any
        self.shape, self.dtype = self._read_x_header()
        if len(self.shape) < 2 or (self.y is not None and self.shape[0] != len(self.y)):
            raise RunnerError(
                "bad_data",
                "Eval data %s: x has shape %s but y has %d labels." % (path, list(self.shape), len(self.y or ())),
                "x must be (n_samples, *input_shape) with one label in y per sample; re-export the eval data.",
            )
        if self.shape[0] == 0:
            raise RunnerError("bad_data", "Eval data %s holds no samples." % path, _REEXPORT_DATA)

    @property
    def n(self) -> int:
        return int(self.shape[0])

    def _read_x_header(self) -> Tuple[Tuple[int, ...], Any]:
        np = _numpy()
        with zipfile.ZipFile(self.path) as archive, archive.open("x.npy") as stream:
            version = np.lib.format.read_magic(stream)
            readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            reader = readers.get(version)
            if reader is not None:
                shape, fortran_order, dtype = reader(stream)
                if not fortran_order and not dtype.hasobject:
                    return tuple(int(d) for d in shape), dtype
        # Rare layouts (Fortran order, format 3.0): fall back to holding x in memory.
        try:
            self._in_memory_x = np.ascontiguousarray(np.load(self.path, allow_pickle=False)["x"])
        except Exception as exc:  # noqa: BLE001
            raise RunnerError(
                "bad_data", "Eval data %s: x is unreadable (%s)." % (self.path, exc), _REEXPORT_DATA
            ) from exc
        return tuple(self._in_memory_x.shape), self._in_memory_x.dtype

    def batches(self, batch: int, limit: Optional[int] = None) -> Iterator[Any]:
        """Yield float32 arrays of up to `batch` samples from the start of x."""
        np = _numpy()
        total = self.n if limit is None else min(limit, self.n)
        if self._in_memory_x is not None:
            for start in range(0, total, batch):
                yield self._in_memory_x[start : min(start + batch, total)].astype(np.float32, copy=False)
            return
        row_items = int(np.prod(self.shape[1:], dtype=np.int64))
        with zipfile.ZipFile(self.path) as archive, archive.open("x.npy") as stream:
            version = np.lib.format.read_magic(stream)
            (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(stream)
            for start in range(0, total, batch):
                count = min(batch, total - start)
                raw = _read_exactly(stream, count * row_items * self.dtype.itemsize)
                rows = np.frombuffer(raw, dtype=self.dtype).reshape((count,) + self.shape[1:])
                yield rows.astype(np.float32)

    def head(self, count: int) -> Any:
        """The first `count` samples, used as latency inputs."""
        return next(self.batches(count))


def _read_exactly(stream: Any, size: int) -> bytes:
    chunks = []  # type: List[bytes]
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            raise RunnerError("bad_data", "Eval data ends early: x.npy is truncated.", _REEXPORT_DATA)
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


_REEXPORT_DATA = (
    "Re-create it with edgecompress (it writes x, output_kind and, for a classifier, y and class_names), "
    "or np.savez(path, x=float32_inputs, y=int_labels, class_names=[...], output_kind='softmax') "
    "(output_kind='raw' and no labels to only collect the outputs)."
)


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:
        raise RunnerError(
            "no_runtime",
            "NumPy is not installed for %s." % (sys.executable or "python3"),
            "Install it on the device: %s -m pip install numpy" % _python_command(),
        ) from exc
    return numpy


def _python_command() -> str:
    """This interpreter as a shell word, for the install commands printed in fixes."""
    return shlex.quote(sys.executable) if sys.executable else "python3"


# --------------------------------------------------------------------------- runtimes


class Session(abc.ABC):
    """One loaded model behind a runtime-neutral face: float in, float scores out.

    Subclasses: TfliteSession (LiteRT / tflite_runtime / tf.lite) and OnnxSession.
    """

    runtime = ""
    version = ""

    def __init__(self) -> None:
        self.input_shape = ()  # type: Tuple[Optional[int], ...]  # None marks a dynamic dim
        self.input_dtype = None  # type: Any
        self.batch = 1
        self.output_names = []  # type: List[str]  # every output, in the runtime's order
        self.output_sizes = []  # type: List[Optional[int]]  # values per sample of each output
        self.order = [0]  # type: List[int]  # which runtime output comes first, second, ... in the rows returned

    @abc.abstractmethod
    def run(self, x: Any) -> Any:
        """Run a float32 batch of exactly `self.batch` samples; returns float32 (batch, values): every
        output flattened, side by side, in `self.order`."""

    def arrange(self, names: Sequence[str], sizes: Sequence[int], model: str) -> None:
        """Return the outputs in the eval file's order: matched by name (a training wrapper's 'quant_'
        prefix aside), else by size; an output that cannot be told apart is refused, never guessed."""
        if not names:
            self.order = list(range(len(self.output_names)))
            return
        order = []  # type: List[int]
        for name, size in zip(names, sizes):
            free = [i for i in range(len(self.output_names)) if i not in order]
            matches = [i for i in free if _same_output(self.output_names[i], name)]
            if len(matches) != 1:
                matches = [i for i in free if self.output_sizes[i] == size]
            if len(matches) != 1 and len(free) == 1 and len(names) - len(order) == 1:
                matches = free
            if len(matches) != 1:
                raise RunnerError(
                    "bad_model",
                    "%s has outputs %s; the runner cannot tell which of them is the model's output %r (%d values)."
                    % (model, ", ".join(self.output_names), name, size),
                    "Re-export the model with edgecompress, which keeps the output names.",
                )
            order.append(matches[0])
        wrong = [
            (names[k], sizes[k], self.output_sizes[i])
            for k, i in enumerate(order)
            if self.output_sizes[i] not in (None, sizes[k])
        ]
        if wrong or len(order) != len(self.output_names):
            raise RunnerError(
                "bad_data",
                "%s has %d output(s) (%s) but the eval data expects %s."
                % (
                    model,
                    len(self.output_names),
                    ", ".join(self.output_names),
                    ", ".join("%s of %d values" % (n, z) for n, z in zip(names, sizes)),
                ),
                "Export the eval data for this model.",
            )
        self.order = order


def _same_output(runtime_name: str, name: str) -> bool:
    """An output's name as a runtime reports it ('quant_head', 'head:0') against the Keras name ('head')."""
    bare = runtime_name.split(":")[0]
    return bare == name or bare == "quant_" + name or "quant_" + bare == name

    @abc.abstractmethod
    def try_batch(self, batch: int) -> bool:
        """Switch to `batch` samples per call if the model allows it; False leaves batch 1."""


class TfliteSession(Session):
    def __init__(
        self,
        interpreter_class: Any,
        runtime: str,
        version: str,
        model: str,
        threads: int,
        delegates: Sequence[Any] = (),
    ) -> None:
        super().__init__()
        self.runtime, self.version = runtime, version
        options = {"experimental_delegates": list(delegates)} if delegates else {}
        self.interpreter = interpreter_class(model_path=model, num_threads=threads, **options)
        self.interpreter.allocate_tensors()
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        _require_single("input", len(inputs), model)
        self._input, self._outputs = inputs[0], list(outputs)
        self._output = outputs[0]
        signature = self._input.get("shape_signature", self._input["shape"])
        self.input_shape = tuple(None if int(d) < 0 else int(d) for d in signature)
        self.input_dtype = self._input["dtype"]
        self.input_quantization = tuple(self._input.get("quantization", (0.0, 0)))
        self.output_dtype = self._output["dtype"]
        names = _signature_output_names(self.interpreter)
        self.output_names = [names.get(int(d["index"]), str(d["name"])) for d in outputs]
        self.output_sizes = [_per_sample(d["shape"]) for d in outputs]
        self.order = list(range(len(outputs)))

    def run(self, x: Any) -> Any:
        np = _numpy()
        self.interpreter.set_tensor(self._input["index"], quantize(x, self.input_dtype, self.input_quantization))
        self.interpreter.invoke()
        rows = []
        for i in self.order:
            detail = self._outputs[i]
            raw = self.interpreter.get_tensor(detail["index"])
            rows.append(dequantize(raw, tuple(detail.get("quantization", (0.0, 0)))).reshape(len(x), -1))
        return rows[0] if len(rows) == 1 else np.concatenate(rows, axis=1)

    def try_batch(self, batch: int) -> bool:
        shape = [batch] + [int(d) for d in self._input["shape"][1:]]
        try:
            self.interpreter.resize_tensor_input(self._input["index"], shape)
            self.interpreter.allocate_tensors()
        except Exception:  # noqa: BLE001 - a fixed-shape model simply stays at batch 1
            self.interpreter.resize_tensor_input(self._input["index"], [1] + shape[1:])
            self.interpreter.allocate_tensors()
            return False
        self._input = self.interpreter.get_input_details()[0]
        self._outputs = list(self.interpreter.get_output_details())
        self._output = self._outputs[0]
        self.batch = batch
        return True


class OnnxSession(Session):
    _DTYPES = {
        "tensor(float)": "float32",
        "tensor(float16)": "float16",
        "tensor(double)": "float64",
        "tensor(int8)": "int8",
        "tensor(uint8)": "uint8",
        "tensor(int32)": "int32",
        "tensor(int64)": "int64",
    }

    def __init__(
        self,
        ort: Any,
        version: str,
        model: str,
        threads: int,
        providers: Sequence[str] = (),
        profile_dir: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.runtime, self.version = "onnxruntime", version
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        if profile_dir is not None:
            options.enable_profiling = True
            options.profile_file_prefix = os.path.join(profile_dir, "ort_profile")
        self.session = ort.InferenceSession(
            model, sess_options=options, providers=list(providers) + ["CPUExecutionProvider"]
        )
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        _require_single("input", len(inputs), model)
        self._input_name = inputs[0].name
        self.output_names = [o.name for o in outputs]
        self.output_sizes = [_per_sample(o.shape) for o in outputs]
        self.order = list(range(len(outputs)))
        self.input_shape = tuple(d if isinstance(d, int) and d > 0 else None for d in inputs[0].shape)
        dtype = self._DTYPES.get(inputs[0].type)
        if dtype is None:
            raise RunnerError(
                "bad_model",
                "%s takes %s input, which the runner cannot feed." % (model, inputs[0].type),
                "Export the model with a float32 input.",
            )
        self.input_dtype = _numpy().dtype(dtype)

    def run(self, x: Any) -> Any:
        np = _numpy()
        feed = quantize(x, self.input_dtype, (0.0, 0)) if self.input_dtype.kind in "iu" else x.astype(self.input_dtype)
        wanted = [self.output_names[i] for i in self.order]
        found = self.session.run(wanted, {self._input_name: feed})
        rows = [np.asarray(part, dtype=np.float32).reshape(len(x), -1) for part in found]
        return rows[0] if len(rows) == 1 else np.concatenate(rows, axis=1)

    def try_batch(self, batch: int) -> bool:
        if self.input_shape and self.input_shape[0] is None:
            self.batch = batch
            return True
        return False


def _require_single(what: str, count: int, model: str) -> None:
    if count != 1:
        raise RunnerError(
            "bad_model",
            "%s has %d %ss; the runner measures models with exactly one %s." % (model, count, what, what),
            "Export a model with one input tensor.",
        )


def _per_sample(shape: Any) -> Optional[int]:
    """Values per sample of an output of `shape` (batch first); None when a dimension is dynamic."""
    size = 1
    for d in list(shape)[1:]:
        if not isinstance(d, int) and not hasattr(d, "__index__"):
            return None
        if int(d) < 0:
            return None
        size *= int(d)
    return size


def _signature_output_names(interpreter: Any) -> Dict[int, str]:
    """Output tensor index -> the name the model's signature gives it (the Keras output name).

    The converter orders a model's output tensors by its own rules, not the Keras model's; the
    signature keeps the names. Models without one signature keep their tensor names.
    """
    try:
        signatures = interpreter.get_signature_list()
        if len(signatures) != 1:
            return {}
        runner = interpreter.get_signature_runner(next(iter(signatures)))
        return {int(detail["index"]): str(name) for name, detail in runner.get_output_details().items()}
    except Exception:  # noqa: BLE001 - an old runtime without signature runners keeps tensor names
        return {}


def quantize(x: Any, dtype: Any, quantization: Tuple[float, int]) -> Any:
    """Map float inputs into an integer input tensor with the model's own scale/zero point."""
    np = _numpy()
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu":
        return x.astype(dtype, copy=False)
    scale, zero_point = float(quantization[0]), int(quantization[1])
    values = np.round(x / scale) + zero_point if scale else np.round(x)
    info = np.iinfo(dtype)
    return np.clip(values, info.min, info.max).astype(dtype)


def dequantize(scores: Any, quantization: Tuple[float, int]) -> Any:
    np = _numpy()
    scale, zero_point = float(quantization[0]), int(quantization[1])
    if scores.dtype.kind in "iu" and scale:
        return ((scores.astype(np.float32) - zero_point) * scale).astype(np.float32)
    return scores.astype(np.float32, copy=False)


class Accelerator:
    """Which accelerator a run asked for, what was tried, and what actually runs the model.

    LiteRT: the named (or the accelerator's usual) delegate libraries are loaded with
    `load_delegate`; the first that loads is used. onnxruntime: the accelerator's execution
    providers that this onnxruntime build has are put before the CPU provider. Whatever
    cannot be had is recorded, and the model runs on the CPU.
    """

    def __init__(self, runtime: "Runtime", requested: str, delegate_path: Optional[str]) -> None:
        self.runtime, self.requested, self.delegate_path = runtime, requested or "none", delegate_path
        self.attempts = []  # type: List[Dict[str, str]]
        self.providers = ()  # type: Tuple[str, ...]
        self._delegate_library = None  # type: Optional[str]
        self._unavailable = None  # type: Optional[str]
        if runtime.suffix == ".onnx":
            self._choose_providers()
        elif self.requested != "none" or delegate_path:
            self._choose_delegate()

    def _choose_providers(self) -> None:
        wanted = ACCELERATOR_PROVIDERS.get(self.requested, ())
        if self.requested == "none":
            return
        available = list(self.runtime.module.get_available_providers())
        self.providers = tuple(p for p in wanted if p in available)
        if not self.providers:
            self._unavailable = "onnxruntime %s here has %s; available: %s" % (
                self.runtime.version,
                "no execution provider for %s" % self.requested if not wanted else "none of " + ", ".join(wanted),
                ", ".join(available),
            )

    def _choose_delegate(self) -> None:
        load = self.runtime.load_delegate
        candidates = (self.delegate_path,) if self.delegate_path else ACCELERATOR_DELEGATES.get(self.requested, ())
        if load is None:
            self._unavailable = "%s %s has no load_delegate" % (self.runtime.name, self.runtime.version)
            return
        with _quiet_unraisable():
            for library in candidates:
                error = _delegate_error(load, library)
                if error is None:
                    self._delegate_library = library
                    return
                self.attempts.append({"delegate": library, "error": error})
        self._unavailable = (
            "; ".join(
                a["error"] if a["delegate"] in a["error"] else "%s: %s" % (a["delegate"], a["error"])
                for a in self.attempts
            )
            or "no delegate library is known for %s" % self.requested
        )

    def delegates(self) -> List[Any]:
        """Fresh delegate objects for one interpreter (a delegate instance serves one interpreter)."""
        if self._delegate_library is None:
            return []
        with _quiet_unraisable():
            return [self.runtime.load_delegate(self._delegate_library)]

    def describe(self, session: Session, model: str, threads: int) -> Dict[str, Any]:
        """The `execution` block: what ran the model, and how much of it."""
        info = {"requested": self.requested, "attempts": self.attempts}  # type: Dict[str, Any]
        if isinstance(session, OnnxSession):
            used = [p for p in session.session.get_providers() if p != "CPUExecutionProvider"]
            info.update(backend=", ".join(session.session.get_providers()), used=used[0] if used else "cpu")
            info["nodes"] = _onnx_partition(self.runtime, model, threads, self.providers)
        else:
            partition = _tflite_partition(self.runtime, model, threads, self)
            info.update(partition)
            info["used"] = (
                self.requested if self._delegate_library is not None and partition.get("delegated_nodes") else "cpu"
            )
        if self.requested != "none" and info["used"] == "cpu":
            reason = self._unavailable or (
                "the %s delegate (%s) loaded but took no operation of this model"
                % (self.requested, self._delegate_library)
            )
            info["note"] = "cpu (accelerator not available: %s)" % reason
        elif self.requested == "none":
            info["note"] = "cpu (the profile names no accelerator)"
        else:
            info["note"] = "%s ran %s" % (info["used"], _nodes_phrase(info))
        return info


def _delegate_error(load: Any, library: str) -> Optional[str]:
    """None when `library` loads as a delegate, else why not (the half-made delegate dies in here)."""
    try:
        load(library)
    except Exception as exc:  # noqa: BLE001 - a missing or broken library: the caller tries the next
        return _one_line(exc)
    return None


def _nodes_phrase(info: Dict[str, Any]) -> str:
    nodes = info.get("nodes") or {}
    if "delegated_nodes" in info and "total_nodes" in info:
        return "%d of %d operations" % (info["delegated_nodes"], info["total_nodes"])
    if nodes:
        return ", ".join("%s: %d nodes" % item for item in sorted(nodes.items()))
    return "the model"


@contextlib.contextmanager
def _quiet_unraisable() -> Iterator[None]:
    """LiteRT's Delegate.__del__ raises on a library that failed to load; keep that noise off stderr."""
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        yield
        gc.collect()
    finally:
        sys.unraisablehook = hook


def _taken_by_delegates(ops: List[Dict[str, Any]]) -> Tuple[int, int, int]:
    """(original ops, delegate kernels, original ops replaced by them) from `_get_ops_details()`.

    A delegate kernel ('DELEGATE' node) replaces the ops between its inputs and outputs: walk
    back from its outputs through the original producers until its inputs are reached.
    """
    original = [op for op in ops if op.get("op_name") != "DELEGATE"]
    kernels = [op for op in ops if op.get("op_name") == "DELEGATE"]
    producer = {}  # type: Dict[int, Dict[str, Any]]
    for op in original:
        for tensor in op.get("outputs", []):
            producer[int(tensor)] = op
    taken = set()  # type: set
    for kernel in kernels:
        boundary = set(int(t) for t in kernel.get("inputs", []))
        pending = [int(t) for t in kernel.get("outputs", [])]
        while pending:
            tensor = pending.pop()
            op = producer.get(tensor)
            if op is None or tensor in boundary or op["index"] in taken:
                continue
            taken.add(op["index"])
            pending.extend(int(t) for t in op.get("inputs", []) if int(t) >= 0)
    return len(original), len(kernels), len(taken)


def _tflite_partition(runtime: "Runtime", model: str, threads: int, accelerator: Accelerator) -> Dict[str, Any]:
    """How many operations the accelerator's delegate (or, on the CPU, XNNPACK) took."""
    info = {}  # type: Dict[str, Any]
    try:
        interpreter_class = runtime.interpreter_class
        resolver = _op_resolver(runtime, default_delegates=False)
        delegates = accelerator.delegates()
        if delegates:  # the accelerator's own share, without XNNPACK in the count
            bare = interpreter_class(
                model_path=model, num_threads=threads, experimental_delegates=delegates, **resolver
            )
            bare.allocate_tensors()
            total, kernels, taken = _taken_by_delegates(bare._get_ops_details())
            info.update(
                backend=accelerator._delegate_library,
                total_nodes=total,
                delegated_nodes=taken,
                delegate_kernels=kernels,
            )
            return info
        plain = interpreter_class(model_path=model, num_threads=threads)
        plain.allocate_tensors()
        total, kernels, taken = _taken_by_delegates(plain._get_ops_details())
        info.update(total_nodes=total)
        if kernels:
            info.update(
                backend="XNNPACK delegate (LiteRT's default CPU delegate) + builtin kernels",
                xnnpack_nodes=taken,
                builtin_nodes=total - taken,
            )
        else:
            info.update(backend="builtin CPU kernels", xnnpack_nodes=0, builtin_nodes=total)
    except Exception as exc:  # noqa: BLE001 - partition facts are a bonus; never fail a measurement for them
        info.setdefault("backend", "cpu")
        info["partition_error"] = _one_line(exc)
    return info


def _op_resolver(runtime: "Runtime", default_delegates: bool) -> Dict[str, Any]:
    module = runtime.module.lite if runtime.name == "tensorflow" else runtime.module
    resolver_type = getattr(getattr(module, "experimental", module), "OpResolverType", None) or getattr(
        module, "OpResolverType", None
    )
    if resolver_type is None or default_delegates:
        return {}
    return {"experimental_op_resolver_type": resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES}


def _onnx_partition(runtime: "Runtime", model: str, threads: int, providers: Sequence[str]) -> Dict[str, int]:
    """Nodes per execution provider, read from one profiled run (onnxruntime assigns them at load)."""
    import tempfile

    try:
        with tempfile.TemporaryDirectory(prefix="edgecompress-ort-") as folder:
            session = OnnxSession(runtime.module, runtime.version, model, threads, providers, profile_dir=folder)
            sample = _numpy().zeros([d or 1 for d in session.input_shape], dtype=session.input_dtype)
            session.session.run(None, {session._input_name: sample})
            events = _read_ort_profile(session.session.end_profiling())
    except Exception:  # noqa: BLE001 - partition facts are a bonus
        return {}
    nodes = {}  # type: Dict[str, set]
    for event in events:
        provider = (event.get("args") or {}).get("provider")
        if provider:
            nodes.setdefault(provider, set()).add(event.get("name", "").rsplit("_kernel_time", 1)[0])
    return {provider: len(names) for provider, names in nodes.items()}


def _read_ort_profile(path: str, skip_runs: int = 0) -> List[Dict[str, Any]]:
    """The per-node kernel events of an onnxruntime profile, leaving out the first `skip_runs` runs."""
    with open(path) as handle:
        events = json.load(handle)
    try:
        os.remove(path)
    except OSError:
        pass
    runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: float(e.get("ts", 0)))
    cutoff = 0.0
    if skip_runs and len(runs) >= skip_runs:
        last = runs[skip_runs - 1]
        cutoff = float(last.get("ts", 0)) + float(last.get("dur", 0))
    return [
        event
        for event in events
        if event.get("cat") == "Node"
        and str(event.get("name", "")).endswith("_kernel_time")
        and float(event.get("ts", 0)) >= cutoff
    ]


def op_profile(
    runtime: "Runtime", model: str, threads: int, accelerator: Accelerator, inputs: Any, runs: int
) -> Dict[str, Any]:
    """Per-operator time where the runtime exposes it: onnxruntime's profiler; LiteRT says it cannot."""
    import tempfile

    if runtime.suffix != ".onnx":
        return {"available": False, "source": None, "reason": TFLITE_OP_PROFILE_NOTE}
    with tempfile.TemporaryDirectory(prefix="edgecompress-ort-") as folder:
        session = OnnxSession(
            runtime.module, runtime.version, model, threads, accelerator.providers, profile_dir=folder
        )
        for i in range(runs + 1):  # the first run (allocations, weight prepacking) is left out
            session.run(inputs[i % len(inputs)][None, ...])
        events = _read_ort_profile(session.session.end_profiling(), skip_runs=1)
    by_node = {}  # type: Dict[str, Dict[str, Any]]
    for event in events:
        args = event.get("args") or {}
        name = str(event["name"]).rsplit("_kernel_time", 1)[0]
        row = by_node.setdefault(
            name, {"node": name, "op_type": args.get("op_name"), "provider": args.get("provider"), "durations_us": []}
        )
        row["durations_us"].append(float(event.get("dur", 0)))
    np = _numpy()
    for row in by_node.values():  # medians: a run pre-empted on a busy board does not skew the split
        row["median_us"] = float(np.median(row["durations_us"]))
        row["mean_us"] = float(np.mean(row["durations_us"]))
    total = sum(row["median_us"] for row in by_node.values()) or 1.0
    rows = sorted(by_node.values(), key=lambda row: -row["median_us"])
    ops = [
        {
            "node": row["node"],
            "op_type": row["op_type"],
            "provider": row["provider"],
            "median_ms": round(row["median_us"] / 1000.0, 5),
            "mean_ms": round(row["mean_us"] / 1000.0, 5),
            "share": round(row["median_us"] / total, 4),
        }
        for row in rows
    ]
    by_type = {}  # type: Dict[str, float]
    for row in rows:
        by_type[row["op_type"]] = by_type.get(row["op_type"], 0.0) + row["median_us"]
    return {
        "available": True,
        "source": "onnxruntime SessionOptions.enable_profiling (kernel time per node)",
        "runs": runs,
        "threads": threads,
        "kernel_median_ms_per_run": round(total / 1000.0, 5),
        "ops": ops[:40],
        "ops_truncated": len(ops) > 40,
        "by_op_type": {k: round(v / total, 4) for k, v in sorted(by_type.items(), key=lambda item: -item[1])},
    }


class Runtime:
    """An imported runtime module, not yet holding a model."""

    def __init__(self, name: str, module: Any, version: str, suffix: str) -> None:
        self.name, self.module, self.version, self.suffix = name, module, version, suffix

    @property
    def interpreter_class(self) -> Any:
        return self.module.lite.Interpreter if self.name == "tensorflow" else self.module.Interpreter

    @property
    def load_delegate(self) -> Any:
        """The runtime's `load_delegate` (tf.lite keeps it under experimental)."""
        if self.name == "tensorflow":
            return self.module.lite.experimental.load_delegate
        return getattr(self.module, "load_delegate", None)

    def load(
        self, model: str, threads: int, accelerator: "Optional[Accelerator]" = None, profile_dir: Optional[str] = None
    ) -> Session:
        accelerator = accelerator or Accelerator(self, "none", None)
        try:
            if self.suffix == ".onnx":
                return OnnxSession(self.module, self.version, model, threads, accelerator.providers, profile_dir)
            return TfliteSession(
                self.interpreter_class, self.name, self.version, model, threads, accelerator.delegates()
            )
        except RunnerError:
            raise
        except Exception as exc:  # noqa: BLE001 - runtimes raise assorted types for a bad file
            raise RunnerError(
                "bad_model",
                "%s could not load %s: %s" % (self.name, model, _one_line(exc)),
                _BAD_MODEL_FIXES[self.suffix],
            ) from exc


_BAD_MODEL_FIXES = {
    ".tflite": "Check the file copied completely (compare its sha256) and re-export it with edgecompress; "
    "models with TF Select (Flex) or custom ops need full TensorFlow on the device (--runtime tensorflow).",
    ".onnx": "Check the file copied completely (compare its sha256) and re-export it with edgecompress; "
    "an opset newer than this onnxruntime supports needs a newer onnxruntime on the device.",
}


def import_runtime(model: str, requested: str, emit: Callable[[str], None]) -> Runtime:
    """The first importable runtime for the model's format (or exactly the requested one)."""
    suffix = os.path.splitext(model)[1].lower()
    candidates = RUNTIMES_BY_SUFFIX.get(suffix)
    if candidates is None:
        raise RunnerError(
            "bad_model",
            "%s is neither .tflite nor .onnx." % model,
            "Pass the .tflite or .onnx file edgecompress exported.",
        )
    if not os.path.isfile(model):
        raise RunnerError(
            "bad_model",
            "Model file %s does not exist." % model,
            "Copy the model to the device and pass its path with --model.",
        )
    if requested != "auto":
        candidates = tuple(c for c in candidates if c[0] == requested)
        if not candidates:
            raise RunnerError(
                "bad_args",
                "Runtime %s cannot run %s files." % (requested, suffix),
                "Use --runtime auto or one of: %s." % ", ".join(c[0] for c in RUNTIMES_BY_SUFFIX[suffix]),
            )
    _numpy()
    failures = []  # type: List[str]
    for name, module, package in candidates:
        emit("importing %s" % name)
        if name == "tensorflow":
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            imported = _import_module(module)
        except Exception as exc:  # noqa: BLE001 - try the next runtime, keep the reason
            failures.append("%s (%s: %s)" % (name, type(exc).__name__, exc))
            continue
        return Runtime(name, imported, _runtime_version(imported, package), suffix)
    raise RunnerError(
        "no_runtime",
        "No runtime for %s files is importable by %s: %s." % (suffix, _python_command(), "; ".join(failures)),
        _install_fix(suffix),
    )


def _install_fix(suffix: str) -> str:
    python = _python_command()
    if suffix == ".onnx":
        return "Install ONNX Runtime on the device: %s -m pip install onnxruntime" % python
    preferred = "ai-edge-litert" if sys.version_info >= (3, 9) else "tflite-runtime"
    return (
        "Install LiteRT on the device: %s -m pip install %s (if no wheel exists for this board, "
        "try %s -m pip install tflite-runtime; on a distro-managed Python create a venv first: "
        "python3 -m venv ~/edgecompress-env && ~/edgecompress-env/bin/pip install numpy %s)."
        % (python, preferred, python, preferred)
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:400] + "...") if len(text) > 400 else text


# --------------------------------------------------------------------------- measurement


def predict(scores: Any, output_kind: str) -> Any:
    """Class indices from a (batch, n_outputs) score array."""
    np = _numpy()
    if scores.shape[1] == 1:
        return (scores[:, 0] > BINARY_THRESHOLDS[output_kind]).astype(np.int64)
    return np.argmax(scores, axis=1)


def latency_stats(samples_ms: Sequence[float], warmup: int) -> Dict[str, Any]:
    np = _numpy()
    values = np.asarray(samples_ms, dtype=np.float64)
    percentile = lambda q: float(np.percentile(values, q))  # noqa: E731
    return {
        "warmup": warmup,
        "runs": int(values.size),
        "median": round(percentile(50), 4),
        "p90": round(percentile(90), 4),
        "p99": round(percentile(99), 4),
        "mean": round(float(values.mean()), 4),
        "std": round(float(values.std()), 4),
        "min": round(float(values.min()), 4),
        "max": round(float(values.max()), 4),
    }


def time_single_runs(session: Session, inputs: Any, count: int, offset: int, calls: int = 1) -> List[float]:
    """Wall time of `count` batch-1 calls (set input, invoke, read output), cycling the inputs; with
    `calls` above 1 each sample is the mean of that many back-to-back calls.

    GC is paused so a collection does not land inside one sample, as timeit does.
    """
    timings = []  # type: List[float]
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(count):
            batch = [inputs[(offset + i * calls + j) % len(inputs)][None, ...] for j in range(calls)]
            start = time.perf_counter()
            for sample in batch:
                session.run(sample)
            timings.append((time.perf_counter() - start) * 1000.0 / calls)
    finally:
        if gc_was_enabled:
            gc.enable()
    return timings


def check_input_shape(session: Session, data: EvalData, model: str) -> None:
    expected = session.input_shape[1:]
    actual = data.shape[1:]
    fits = len(expected) == len(actual) and all(e is None or e == a for e, a in zip(expected, actual))
    if not fits:
        shown = ["?" if d is None else d for d in expected]
        raise RunnerError(
            "bad_data",
            "%s expects inputs of shape %s but %s holds samples of shape %s." % (model, shown, data.path, list(actual)),
            "Export the eval data for this model (same input size and channel layout).",
        )


def collect_outputs(session: Session, data: EvalData, batch: int, reference: Any, emit: Callable[[str], None]) -> Any:
    """Every eval sample's outputs (n, values), batched when the model allows.

    `reference` holds batch-1 outputs for sample 0; if a batched run disagrees with them the
    batched path is not trusted and the set is re-run at batch 1. A classifier's progress
    lines count the samples it gets right.
    """
    np = _numpy()
    if batch > 1 and session.try_batch(batch):
        first = _score_batch(session, data.head(1))[0]
        if not np.allclose(first, reference, rtol=1e-3, atol=1e-4):
            emit("batched scores differ from batch-1 scores; evaluating at batch 1")
            session.try_batch(1)
    outputs = np.empty((data.n, int(reference.size)), dtype=np.float32)
    predictions = np.empty(data.n, dtype=np.int64) if data.labelled else None
    done = 0
    for chunk in data.batches(session.batch):
        outputs[done : done + len(chunk)] = _score_batch(session, chunk)
        if predictions is not None:
            predictions[done : done + len(chunk)] = predict(outputs[done : done + len(chunk)], data.output_kind)
        done += len(chunk)
        if done % max(session.batch, 500) < session.batch or done == data.n:
            if predictions is None:
                emit("ran %d/%d samples" % (done, data.n))
            else:
                # images evaluated and images right, never one "n/n" figure that reads like a perfect score
                right = int(np.sum(predictions[:done] == data.y[:done]))
                emit("evaluated %d/%d images, %d correct (%.1f %%)" % (done, data.n, right, 100.0 * right / done))
    return outputs


def classify(outputs: Any, data: EvalData, batch: int) -> Optional[Dict[str, Any]]:
    """A classifier's accuracy figures from its outputs (None for an eval set of another task)."""
    if not data.labelled:
        return None
    np = _numpy()
    n_outputs = int(outputs.shape[1])
    n_classes = max(len(data.class_names), 2 if n_outputs == 1 else n_outputs)
    if data.y.min() < 0 or data.y.max() >= n_classes:
        raise RunnerError(
            "bad_data",
            "Labels in %s run from %d to %d but the model has %d classes."
            % (data.path, data.y.min(), data.y.max(), n_classes),
            "Labels must be class indices 0..%d in the model's class order." % (n_classes - 1),
        )
    summary = tally(predict(np.asarray(outputs), data.output_kind), data.y, data.class_names, n_classes)
    summary["batch"] = batch
    return summary


def evaluate(
    session: Session, data: EvalData, batch: int, reference: Any, emit: Callable[[str], None]
) -> Optional[Dict[str, Any]]:
    """Accuracy over the whole eval set (see `collect_outputs` and `classify`); None without labels."""
    outputs = collect_outputs(session, data, batch, reference, emit)
    return classify(outputs, data, session.batch)


def write_outputs(path: str, outputs: Any, session: Session) -> Dict[str, Any]:
    """Save the raw outputs for the host, which computes every figure from them; describe the file."""
    np = _numpy()
    try:
        with open(path, "wb") as handle:
            np.save(handle, np.ascontiguousarray(outputs, dtype=np.float32), allow_pickle=False)
    except OSError as exc:
        raise RunnerError(
            "bad_args", "Cannot write --outputs-out %s: %s" % (path, exc), "Pass a writable path to --outputs-out."
        ) from exc
    return {
        "file": os.path.basename(path),
        "shape": [int(d) for d in outputs.shape],
        "dtype": "float32",
        "names": [session.output_names[i] for i in session.order],
    }


def tally(predictions: Any, labels: Any, class_names: Sequence[str], n_classes: int) -> Dict[str, Any]:
    """Accuracy overall and per class, the confusion matrix and the per-sample predictions.

    The one place predictions become figures: the host scores the Keras reference with this
    same function, so the reference and every device measurement have the same shape.
    """
    np = _numpy()
    predictions = np.asarray(predictions, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    per_class = {}
    for index in range(n_classes):
        total = int(confusion[index].sum())
        correct = int(confusion[index, index])
        per_class[str(index)] = {
            "name": class_names[index] if index < len(class_names) else str(index),
            "n": total,
            "correct": correct,
            "accuracy": round(correct / total, 6) if total else None,
        }
    correct_total = int(np.trace(confusion))
    return {
        "n": int(labels.size),
        "correct": correct_total,
        "overall": round(correct_total / labels.size, 6) if labels.size else None,
        "per_class": per_class,
        "confusion": confusion.tolist(),
        # Per sample, in eval order: lets the host find the very images on which two
        # artifacts disagree, which the confusion matrix cannot tell.
        "predictions": predictions.tolist(),
    }


def _score_batch(session: Session, chunk: Any) -> Any:
    """Run a chunk that may be shorter than the session's batch by zero-padding it."""
    np = _numpy()
    if session.batch == 1:
        return np.concatenate([session.run(row[None, ...]) for row in chunk], axis=0)
    padded = chunk
    if len(chunk) < session.batch:
        padded = np.concatenate([chunk, np.zeros((session.batch - len(chunk),) + chunk.shape[1:], dtype=chunk.dtype)])
    return session.run(padded)[: len(chunk)]


def write_samples(path: str, samples: Sequence[float], warmup: int) -> None:
    try:
        with open(path, "w") as handle:
            json.dump({"unit": "ms", "warmup": warmup, "samples": [round(s, 6) for s in samples]}, handle)
    except OSError as exc:
        raise RunnerError(
            "bad_args", "Cannot write --samples-out %s: %s" % (path, exc), "Pass a writable path to --samples-out."
        ) from exc


def file_facts(path: str) -> Dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"path": os.path.abspath(path), "bytes": os.path.getsize(path), "sha256": digest.hexdigest()}


def thread_count(requested: Optional[int], cores: Optional[int]) -> Tuple[int, str]:
    """(threads, why): --threads exactly; else the profile's core count capped at the usable CPUs; else all usable CPUs."""
    usable = usable_cpus()
    if requested:
        return requested, "--threads %d" % requested
    if cores:
        if cores > usable:
            return usable, "the profile's %d cores, capped at the %d CPU(s) this process may use" % (cores, usable)
        return cores, "the profile's %d cores" % cores
    return usable, "the %d CPU(s) this process may use" % usable


def time_at_threads(
    runtime: Runtime,
    args: argparse.Namespace,
    accelerator: Accelerator,
    inputs: Any,
    emit: Callable[[str], None],
    main: Tuple[int, Dict[str, Any]],
) -> List[Dict[str, Any]]:
    """Latency at each --latency-threads count, each with a fresh session (capped at the usable CPUs).

    A count equal to the main measurement's (`main`: threads, latency stats) reuses it.
    """
    rows = []
    usable = usable_cpus()
    for requested in args.latency_threads:
        used = min(requested, usable)
        if used == main[0]:
            stats = main[1]
        else:
            emit("latency at %d thread(s)" % used)
            session = runtime.load(args.model, used, accelerator)
            session.run(inputs[:1])
            time_single_runs(session, inputs, args.warmup, offset=1)
            stats = latency_stats(time_single_runs(session, inputs, args.runs, offset=1 + args.warmup), args.warmup)
            del session
        row = {"threads": used, "requested": requested, "latency_ms": stats}
        if used != requested:
            row["note"] = "capped at the %d CPU(s) this process may use" % usable
        rows.append(row)
    return rows


def measure(args: argparse.Namespace) -> Dict[str, Any]:
    emit = progress_printer(args.progress)
    threads, threads_basis = thread_count(args.threads, args.cores)
    data = EvalData(args.data)
    latency_inputs = data.head(min(data.n, 64))
    rss_before_import = current_rss_bytes()
    start = time.perf_counter()
    runtime = import_runtime(args.model, args.runtime, emit)
    import_ms = (time.perf_counter() - start) * 1000.0

    accelerator = Accelerator(runtime, args.accelerator, args.delegate)
    rss_before_load = current_rss_bytes()
    peak_before_load = peak_rss_bytes()
    emit("loading %s with %s %s, %d thread(s)" % (os.path.basename(args.model), runtime.name, runtime.version, threads))
    start = time.perf_counter()
    session = runtime.load(args.model, threads, accelerator)
    load_ms = (time.perf_counter() - start) * 1000.0
    rss_after_load = current_rss_bytes()
    check_input_shape(session, data, args.model)
    session.arrange(data.output_names, data.output_sizes, args.model)

    emit("first inference")
    try:
        start = time.perf_counter()
        reference = session.run(latency_inputs[:1])[0]
        first_ms = (time.perf_counter() - start) * 1000.0
        emit("warmup %d, timed runs %d" % (args.warmup, args.runs))
        time_single_runs(session, latency_inputs, args.warmup, offset=1)
        samples = time_single_runs(session, latency_inputs, args.runs, offset=1 + args.warmup)
        peak_batch1 = peak_rss_bytes()
        hwm_batch1 = _proc_status_bytes("VmHWM")
        emit("latency median %.3f ms" % sorted(samples)[len(samples) // 2])
        outputs = collect_outputs(session, data, args.batch, reference, emit)
        accuracy = classify(outputs, data, session.batch)
        written = write_outputs(args.outputs_out, outputs, session) if args.outputs_out else None
        execution = accelerator.describe(session, args.model, threads)
        ran_with = {"name": session.runtime, "version": session.version}
        del session
        main = (threads, latency_stats(samples, args.warmup))
        by_threads = (
            time_at_threads(runtime, args, accelerator, latency_inputs, emit, main) if args.latency_threads else []
        )
        profile = (
            op_profile(runtime, args.model, threads, accelerator, latency_inputs, args.profile_ops)
            if args.profile_ops
            else None
        )
    except RunnerError:
        raise
    except Exception as exc:  # noqa: BLE001 - an invoke failure on the device is reported, not crashed on
        raise RunnerError(
            "runtime_error",
            "%s failed while running %s: %s" % (runtime.name, args.model, _one_line(exc)),
            "Re-run with --progress to see the failing step; if the model loads but cannot run, re-export it "
            "with edgecompress or try another runtime with --runtime.",
        ) from exc

    if args.samples_out:
        write_samples(args.samples_out, samples, args.warmup)
    return {
        "runner_version": RUNNER_VERSION,
        "runtime": ran_with,
        "model": file_facts(args.model),
        "platform": platform_info(),
        "threads": threads,
        "threads_basis": threads_basis,
        "execution": execution,
        "import_ms": round(import_ms, 4),
        "load_ms": round(load_ms, 4),
        "first_inference_ms": round(first_ms, 4),
        "latency_ms": latency_stats(samples, args.warmup),
        "memory": {
            "rss_before_import_bytes": rss_before_import,
            "rss_before_load_bytes": rss_before_load,
            "rss_after_load_bytes": rss_after_load,
            "peak_rss_bytes": peak_batch1,
            "peak_rss_before_load_bytes": peak_before_load,
            "peak_rss_after_eval_bytes": peak_rss_bytes(),
            "vm_hwm_bytes": hwm_batch1,
            "vm_rss_bytes": current_rss_bytes(),
        },
        "accuracy": accuracy,
        "outputs": written,
        "latency_by_threads": by_threads,
        "op_profile": profile,
    }


# --------------------------------------------------------------------------- interleaved rounds
#
# `--rounds N` times several models against each other: every round times each model once
# (`--warmup` untimed, then `--runs` timed batch-1 calls), in an order rotated by one slot each
# round, so a board that heats up, throttles or gets a background job half-way slows every
# model alike instead of whichever came later. With `--noise-pair` the first model (the
# baseline) has a second slot half a round away from its first: the two are the same file, so
# how far their times differ is the board's own timing noise. The board's state is read before
# and after every round; the host computes every figure from the raw samples.

#: seconds between power readings inside an energy window
ENERGY_EVERY_S = 0.02
#: In rounds, one timed sample spans at least this long: a model that runs in 10 us would
#: otherwise fit a whole slot (20 calls) inside one scheduler time slice, so one burst of
#: another process could slow a whole slot and, with 5 rounds, set the board's noise floor
#: (seen on a 2-core machine: one slot 9x slower, a noise of +-840 %).
MIN_SAMPLE_MS = 1.0
#: ... by averaging at most this many back-to-back calls per sample
MAX_CALLS_PER_SAMPLE = 1000


def calls_per_sample(session: Session, inputs: Any) -> int:
    """Back-to-back calls one sample averages so that it spans MIN_SAMPLE_MS (1 for a model slower than that).

    The cost of one call is the fastest of 10 after 5 untimed ones: the first calls after loading run
    several times slower (caches, lazy kernels), and a cost read from them left samples far shorter."""
    time_single_runs(session, inputs, 5, offset=0)
    single = min(time_single_runs(session, inputs, 10, offset=0))
    if single <= 0:
        return MAX_CALLS_PER_SAMPLE
    return int(max(1, min(MAX_CALLS_PER_SAMPLE, math.ceil(MIN_SAMPLE_MS / single))))


def slot_plan(n_models: int, noise_pair: bool) -> List[Tuple[int, int]]:
    """(model index, copy) per slot; the first model's second copy sits half a round away from its first."""
    slots = [(index, 0) for index in range(n_models)]
    if noise_pair:
        slots.insert((n_models + 2) // 2, (0, 1))
    return slots


def round_order(index: int, n_slots: int) -> List[int]:
    """Round `index` starts with slot `index` (mod the slots): each slot leads once every n_slots rounds."""
    return [(index + i) % n_slots for i in range(n_slots)]


def _thread_counts(main_threads: int, extra: Sequence[int]) -> List[int]:
    usable = usable_cpus()
    counts = [main_threads]
    for requested in extra:
        if min(requested, usable) not in counts:
            counts.append(min(requested, usable))
    return counts


def _load_rounds_models(
    args: argparse.Namespace, data: EvalData, counts: List[int], emit: Callable[[str], None]
) -> Tuple[List[Dict[str, Any]], Dict[Tuple[int, int], Session], Dict[Tuple[int, int], int]]:
    """Every model loaded once per thread count and run once (first call: allocations, weight packing),
    then how many calls one of its timed samples averages."""
    inputs = data.head(1)
    facts, sessions = [], {}  # type: List[Dict[str, Any]], Dict[Tuple[int, int], Session]
    calls = {}  # type: Dict[Tuple[int, int], int]
    runtimes = {}  # type: Dict[str, Runtime]
    for index, model in enumerate(args.model):
        if not os.path.isfile(model):
            raise RunnerError(
                "bad_model",
                "Model file %s does not exist." % model,
                "Copy every model to the device and pass its path.",
            )
        suffix = os.path.splitext(model)[1].lower()
        if suffix not in runtimes:
            runtimes[suffix] = import_runtime(model, args.runtime, emit)
        runtime = runtimes[suffix]
        accelerator = Accelerator(runtime, args.accelerator, args.delegate)
        for count in counts:
            emit("loading %s at %d thread(s)" % (os.path.basename(model), count))
            session = runtime.load(model, count, accelerator)
            check_input_shape(session, data, model)
            session.run(inputs)
            sessions[(index, count)] = session
            calls[(index, count)] = calls_per_sample(session, data.head(min(data.n, 64)))
        facts.append({**file_facts(model), "runtime": {"name": runtime.name, "version": runtime.version}})
    return facts, sessions, calls


def _time_slot(session: Session, inputs: Any, args: argparse.Namespace, calls: int) -> List[float]:
    time_single_runs(session, inputs, args.warmup, offset=1, calls=calls)
    samples = time_single_runs(session, inputs, args.runs, offset=1 + args.warmup * calls, calls=calls)
    return [round(s, 6) for s in samples]


def one_round(
    index: int,
    slots: List[Tuple[int, int]],
    sessions: Dict[Tuple[int, int], Session],
    calls: Dict[Tuple[int, int], int],
    counts: List[int],
    inputs: Any,
    args: argparse.Namespace,
    board: Board,
    meter: Optional[PowerMeter],
) -> Dict[str, Any]:
    """Every slot once, in this round's order, between two readings of the board's state."""
    order = round_order(index, len(slots))
    before, start = board.state(), time.perf_counter()
    timings, energy = [], []
    for slot in order:
        model, copy = slots[slot]
        for count in counts:
            per_sample = calls[(model, count)]
            samples = _time_slot(sessions[(model, count)], inputs, args, per_sample)
            timings.append({"slot": slot, "threads": count, "calls": per_sample, "samples": samples})
        if meter is not None and copy == 0:
            window = energy_window(sessions[(model, counts[0])], inputs, meter, args.energy_window, ENERGY_EVERY_S)
            energy.append({"slot": slot, "threads": counts[0], **window})
    return {
        "round": index,
        "order": order,
        "seconds": round(time.perf_counter() - start, 4),
        "state_before": before,
        "state_after": board.state(),
        "timings": timings,
        "energy": energy,
    }


def measure_rounds(args: argparse.Namespace) -> Dict[str, Any]:
    emit = progress_printer(args.progress)
    threads, threads_basis = thread_count(args.threads, args.cores)
    counts = _thread_counts(threads, args.latency_threads)
    data = EvalData(args.data)
    inputs = data.head(min(data.n, 64))
    board = Board(args.board_root)
    meter = power_meter(board) if args.energy_window > 0 else None
    exposes = board.exposes(meter)
    results = []
    try:
        models, sessions, calls = _load_rounds_models(args, data, counts, emit)
        slots = slot_plan(len(models), args.noise_pair)
        for index in range(args.rounds):
            if index and args.cooldown:
                emit("cooling down %g s" % args.cooldown)
                time.sleep(args.cooldown)
            names = [os.path.basename(args.model[slots[s][0]]) for s in round_order(index, len(slots))]
            emit("round %d/%d: %s" % (index + 1, args.rounds, ", ".join(names)))
            results.append(one_round(index, slots, sessions, calls, counts, inputs, args, board, meter))
    except RunnerError:
        raise
    except Exception as exc:  # noqa: BLE001 - an invoke failure on the device is reported, not crashed on
        raise RunnerError(
            "runtime_error",
            "Timing rounds failed: %s" % _one_line(exc),
            "Re-run with --progress to see the failing round; measure each model alone to find the one that fails.",
        ) from exc
    return {
        "runner_version": RUNNER_VERSION,
        "kind": "rounds",
        "platform": platform_info(),
        "threads": threads,
        "threads_basis": threads_basis,
        "thread_counts": counts,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "runs": args.runs,
        "min_sample_ms": MIN_SAMPLE_MS,
        "cooldown_s": args.cooldown,
        "energy_window_s": args.energy_window if meter is not None else None,
        "models": models,
        "slots": [{"model": model, "copy": copy} for model, copy in slots],
        "board": exposes,
        "round_results": results,
    }


# --------------------------------------------------------------------------- entry point


class _JsonArgumentParser(argparse.ArgumentParser):
    """Argument mistakes must also come back as the one JSON document, not argparse's usage text."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise RunnerError("bad_args", message, "Usage: " + " ".join(self.format_usage().split()[1:]))


def build_parser() -> argparse.ArgumentParser:
    parser = _JsonArgumentParser(prog="edgecompress_runner.py", description=__doc__.splitlines()[0])
    parser.add_argument("--probe", action="store_true", help="describe this device and exit")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        help=".tflite or .onnx file (repeat with --rounds: every model is timed)",
    )
    parser.add_argument("--data", help="eval .npz (x, output_kind; y and class_names for a classifier)")
    parser.add_argument("--warmup", type=_non_negative, default=20)
    parser.add_argument("--runs", type=_positive, default=100)
    parser.add_argument(
        "--threads",
        type=_positive,
        default=None,
        help="interpreter threads, exactly (default: --cores capped at the usable CPUs, else all usable CPUs)",
    )
    parser.add_argument(
        "--cores",
        type=_positive,
        default=None,
        help="the device profile's core count: used as thread count when --threads is not given",
    )
    parser.add_argument(
        "--latency-threads",
        type=_thread_list,
        default=[],
        help="also time batch-1 latency at these thread counts, e.g. 1,4 (capped at the usable CPUs)",
    )
    parser.add_argument(
        "--accelerator",
        default="none",
        choices=list(ACCELERATORS),
        help="try this accelerator's delegate / execution provider; fall back to the CPU and say so",
    )
    parser.add_argument(
        "--delegate", default=None, help="LiteRT delegate library to load instead of the accelerator's usual one"
    )
    parser.add_argument(
        "--profile-ops",
        type=_non_negative,
        default=0,
        help="profile this many runs per operator where the runtime exposes it (onnxruntime)",
    )
    parser.add_argument(
        "--batch", type=_positive, default=32, help="batch size for the accuracy pass (1 = never resize)"
    )
    parser.add_argument("--runtime", default="auto", choices=["auto"] + [name for name, _, _ in ALL_RUNTIMES])
    parser.add_argument("--samples-out", help="write every timed latency sample (ms) to this JSON file")
    parser.add_argument(
        "--outputs-out", help="write every eval sample's raw outputs (float32 .npy, one row per sample) to this file"
    )
    parser.add_argument(
        "--rounds",
        type=_positive,
        default=None,
        help="time every --model in this many interleaved rounds (order rotated each round); "
        "--warmup and --runs are then per model per round, and no accuracy is measured",
    )
    parser.add_argument(
        "--noise-pair",
        action="store_true",
        help="with --rounds: time the first model twice per round, half a round apart (the board's timing noise)",
    )
    parser.add_argument("--cooldown", type=_seconds, default=0.0, help="with --rounds: seconds of rest between rounds")
    parser.add_argument(
        "--energy-window",
        type=_seconds,
        default=0.5,
        help="with --rounds, where the board exposes power: seconds of idle and of inferring power read per model "
        "and round (0: no energy)",
    )
    parser.add_argument(
        "--board-root", default="/", help="read the board's state (sysfs, procfs) under this folder instead of /"
    )
    parser.add_argument("--progress", action="store_true", help="progress lines on stderr")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1, got %s" % text)
    return value


def _thread_list(text: str) -> List[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("must be comma-separated thread counts, e.g. 1,4; got %s" % text) from None
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError("thread counts must be >= 1, got %s" % text)
    return values


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a number of seconds, got %s" % text) from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a finite number of seconds >= 0, got %s" % text)
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0, got %s" % text)
    return value


def run(argv: Optional[Sequence[str]]) -> Tuple[Dict[str, Any], int]:
    try:
        args = build_parser().parse_args(argv)
        if args.probe:
            return probe(), 0
        if not args.model or not args.data:
            raise RunnerError(
                "bad_args",
                "--model and --data are required (or --probe).",
                "Usage: edgecompress_runner.py --model MODEL.tflite --data eval.npz",
            )
        if args.rounds is not None:
            return measure_rounds(args), 0
        if len(args.model) > 1:
            raise RunnerError(
                "bad_args",
                "%d --model options without --rounds." % len(args.model),
                "Measure one model at a time, or time several against each other with --rounds N.",
            )
        args.model = args.model[0]
        return measure(args), 0
    except RunnerError as exc:
        return exc.as_json(), EXIT_CODES[exc.kind]
    except Exception as exc:  # noqa: BLE001 - a runner bug still answers in JSON; the traceback goes to stderr
        traceback.print_exc()
        error = RunnerError(
            "runtime_error",
            "Unexpected %s: %s" % (type(exc).__name__, _one_line(exc)),
            "This is a bug in the edgecompress runner; please report it with the stderr log.",
        )
        return error.as_json(), EXIT_CODES[error.kind]


def main(argv: Optional[Sequence[str]] = None) -> int:
    with stdout_to_stderr():
        document, code = run(argv)
    sys.stdout.write(json.dumps(document, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
