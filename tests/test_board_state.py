"""The board's state and power while it is timed: read from sysfs/procfs trees laid out as the kernel documents them.

The runner's readers take a root folder. Here they read (1) this machine's real files, whatever
exists of them, and (2) trees built in tmp folders the way Documentation/admin-guide/pm/cpufreq.rst,
Documentation/driver-api/thermal/sysfs-api.rst, Documentation/hwmon/sysfs-interface.rst (and
hwmon/ina3221.rst), proc(5) and Raspberry Pi's vcgencmd documentation lay them out. A tree is
data, not a mock: the same code reads it as reads a board.
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import pytest
from test_runner import load_runner_module, run_runner

from edgecompress.targets.board_state import round_marks, summary
from edgecompress.targets.energy import NOT_MEASURED, artifact_energy, window_energy

runner = load_runner_module()

#: `vcgencmd pmic_read_adc` on a Raspberry Pi 5 (rail currents and voltages, as the firmware prints them)
PMIC_ADC = """\
 3V7_WL_SW_A current(0)=0.00390372A
   3V3_SYS_A current(1)=0.05466000A
   1V8_SYS_A current(2)=0.17275200A
  DDR_VDD2_A current(3)=0.02049750A
   1V1_SYS_A current(5)=0.18933300A
  VDD_CORE_A current(7)=0.72863000A
      HDMI_A current(22)=0.01367540A
 3V7_WL_SW_V volt(8)=3.74435000V
   3V3_SYS_V volt(9)=3.31111900V
   1V8_SYS_V volt(10)=1.80025000V
  DDR_VDD2_V volt(11)=1.11133000V
   1V1_SYS_V volt(13)=1.11035200V
  VDD_CORE_V volt(15)=0.87200000V
      HDMI_V volt(23)=5.14627000V
     EXT5V_V volt(24)=5.14627000V
"""


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def pi_like_tree(root: Path, *, khz: tuple[int, int] = (1800000, 1800000), temp_mc: int = 48312) -> Path:
    """Two cores sharing one cpufreq policy (cpuN/cpufreq is a link to it), one thermal zone, load and memory."""
    policy = "sys/devices/system/cpu/cpufreq/policy0"
    write(root, f"{policy}/scaling_cur_freq", str(khz[0]))
    write(root, f"{policy}/scaling_max_freq", str(khz[1]))
    write(root, f"{policy}/scaling_governor", "ondemand")
    write(root, f"{policy}/affected_cpus", "0 1")
    for cpu in ("cpu0", "cpu1"):
        (root / "sys/devices/system/cpu" / cpu).mkdir(parents=True, exist_ok=True)
        (root / "sys/devices/system/cpu" / cpu / "cpufreq").symlink_to("../cpufreq/policy0")
    write(root, "sys/class/thermal/thermal_zone0/type", "cpu-thermal")
    write(root, "sys/class/thermal/thermal_zone0/temp", str(temp_mc))
    write(root, "proc/loadavg", "0.52 0.58 0.59 1/467 12345")
    write(root, "proc/meminfo", "MemTotal:        3884056 kB\nMemFree:          123456 kB\nMemAvailable:    3012345 kB")
    return root


def jetson_tree(root: Path) -> Path:
    """An INA3221 hwmon device (bus voltage mV and current mA per channel, labelled rails) and an INA219 with power."""
    ina = "sys/class/hwmon/hwmon1"
    write(root, f"{ina}/name", "ina3221")
    for channel, (label, millivolts, milliamps) in enumerate(
        [("VDD_IN", 5072, 1240), ("VDD_CPU_GPU_CV", 5072, 400), ("VDD_SOC", 5072, 520)], start=1
    ):
        write(root, f"{ina}/in{channel}_label", label)
        write(root, f"{ina}/in{channel}_input", str(millivolts))
        write(root, f"{ina}/curr{channel}_input", str(milliamps))
        write(root, f"{ina}/in{channel + 3}_input", "12")  # shunt voltages: no current of their own, not power
    return root


# ----------------------------------------------------------------------------- board state


def test_a_pi_like_tree_reads_as_the_kernel_documents_it(tmp_path: Path) -> None:
    state = runner.Board(str(pi_like_tree(tmp_path))).state()

    assert state["cpufreq"] == {
        "cpu0": {"khz": 1800000, "max_khz": 1800000, "governor": "ondemand"},
        "cpu1": {"khz": 1800000, "max_khz": 1800000, "governor": "ondemand"},
    }
    assert state["temperatures_c"] == {"thermal_zone0 (cpu-thermal)": pytest.approx(48.312)}
    assert state["load_average"] == [0.52, 0.58, 0.59]
    assert state["memory_available_bytes"] == 3012345 * 1024
    assert state["throttled"] is None and state["throttle_counts"] == {}


def test_x86_throttle_counters_and_hwmon_temperatures_without_thermal_zones(tmp_path: Path) -> None:
    for cpu, count in (("cpu0", 3), ("cpu10", 0), ("cpu2", 7)):
        write(tmp_path, f"sys/devices/system/cpu/{cpu}/thermal_throttle/core_throttle_count", str(count))
    write(tmp_path, "sys/class/hwmon/hwmon0/name", "coretemp")
    write(tmp_path, "sys/class/hwmon/hwmon0/temp1_input", "61000")
    write(tmp_path, "sys/class/hwmon/hwmon0/temp1_label", "Package id 0")

    state = runner.Board(str(tmp_path)).state()

    assert state["throttle_counts"] == {"cpu0": 3, "cpu2": 7, "cpu10": 0}
    assert list(state["throttle_counts"]) == ["cpu0", "cpu2", "cpu10"]  # numbers in numeric order
    assert state["temperatures_c"] == {"coretemp Package id 0": 61.0}
    assert state["cpufreq"] == {} and state["load_average"] is None and state["memory_available_bytes"] is None


@pytest.mark.parametrize(
    "text, now, since_boot",
    [
        ("throttled=0x0", [], []),
        ("throttled=0x50000", [], ["under-voltage", "throttled"]),
        ("throttled=0x50005", ["under-voltage", "throttled"], ["under-voltage", "throttled"]),
        ("throttled=0xe000e", ["arm frequency capped", "throttled", "soft temperature limit"],
         ["arm frequency capped", "throttled", "soft temperature limit"]),
    ],
)  # fmt: skip
def test_raspberry_pi_throttling_bits(text: str, now: list[str], since_boot: list[str]) -> None:
    parsed = runner.parse_throttled(text)

    assert parsed["now"] == now and parsed["since_boot"] == since_boot
    assert runner.parse_throttled("error=1 error_msg=...") is None


def test_this_machine_is_read_for_whatever_it_exposes() -> None:
    state = runner.Board("/").state()

    cores = {p.split(os.sep)[-2] for p in glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq")}
    assert set(state["cpufreq"]) <= cores  # every core that has cpufreq and a readable clock
    assert len(state["temperatures_c"]) >= len(glob.glob("/sys/class/thermal/thermal_zone[0-9]*/temp"))
    assert len(state["load_average"]) == 3 and all(v >= 0 for v in state["load_average"])  # /proc/loadavg
    total = next(int(line.split()[1]) * 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal:"))
    assert 0 < state["memory_available_bytes"] <= total


def test_a_clock_change_or_throttling_during_a_round_marks_it(tmp_path: Path) -> None:
    before = runner.Board(str(pi_like_tree(tmp_path / "before"))).state()
    slowed = runner.Board(str(pi_like_tree(tmp_path / "after", khz=(600000, 1500000), temp_mc=85000))).state()
    steady = runner.Board(str(pi_like_tree(tmp_path / "same"))).state()

    assert round_marks(before, steady) == []
    marks = round_marks(before, slowed)
    assert "clock changed: cpu0 1.80 GHz → 0.60 GHz, cpu1 1.80 GHz → 0.60 GHz" in marks
    assert "clock ceiling lowered: cpu0 1.80 GHz → 1.50 GHz, cpu1 1.80 GHz → 1.50 GHz" in marks
    throttled = {**steady, "throttled": runner.parse_throttled("throttled=0x20002")}
    assert round_marks({**before, "throttled": runner.parse_throttled("throttled=0x0")}, throttled) == [
        "throttled: arm frequency capped (vcgencmd get_throttled)",
        "throttling began during the round: arm frequency capped",
    ]
    counted = round_marks({**before, "throttle_counts": {"cpu0": 3}}, {**steady, "throttle_counts": {"cpu0": 5}})
    assert counted == ["thermal throttling events: cpu0 +2"]
    board = summary([{"state_before": before, "state_after": slowed}])
    assert board["clock_ghz"] == [0.6, 1.8] and board["temperature_c"] == [pytest.approx(48.312), 85.0]
    assert board["governors"] == ["ondemand"] and board["throttled"] is False


# ----------------------------------------------------------------------------- power and energy


def test_ina3221_rails_read_volts_times_amps_and_the_input_rail_is_the_total(tmp_path: Path) -> None:
    board = runner.Board(str(jetson_tree(tmp_path)))
    meter = runner.power_meter(board)

    assert [rail.name for rail in meter.rails] == ["ina3221 VDD_IN", "ina3221 VDD_CPU_GPU_CV", "ina3221 VDD_SOC"]
    assert [rail.name for rail in meter.used] == ["ina3221 VDD_IN"]  # its parts are not added to it
    assert meter.read() == pytest.approx(5.072 * 1.240)
    assert meter.describe()["method"] == "ina3221 VDD_IN (hwmon in1_input x curr1_input)"


def test_hwmon_power_inputs_are_microwatts_and_unlabelled_rails_are_summed(tmp_path: Path) -> None:
    write(tmp_path, "sys/class/hwmon/hwmon0/name", "ina219")
    write(tmp_path, "sys/class/hwmon/hwmon0/power1_input", "2500000")
    write(tmp_path, "sys/class/hwmon/hwmon0/in1_input", "5000")  # power given: in/curr pairs are not read
    write(tmp_path, "sys/class/hwmon/hwmon0/curr1_input", "500")
    write(tmp_path, "sys/class/hwmon/hwmon3/name", "ina226")
    write(tmp_path, "sys/class/hwmon/hwmon3/power1_input", "750000")
    meter = runner.power_meter(runner.Board(str(tmp_path)))

    assert meter.read() == pytest.approx(3.25)
    assert meter.describe()["method"] == "sum of 2 rails (hwmon power1_input)"


def test_older_jetson_iio_rails_are_milliwatts(tmp_path: Path) -> None:
    device = "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    write(tmp_path, f"{device}/rail_name_0", "POM_5V_IN")
    write(tmp_path, f"{device}/in_power0_input", "3520")
    write(tmp_path, f"{device}/rail_name_1", "POM_5V_GPU")
    write(tmp_path, f"{device}/in_power1_input", "120")
    meter = runner.power_meter(runner.Board(str(tmp_path)))

    assert meter.read() == pytest.approx(3.52) and [r.name for r in meter.used] == ["ina3221 POM_5V_IN"]


def test_raspberry_pi_5_pmic_rails_are_volts_times_amps() -> None:
    rails = {
        "3V7_WL_SW": (0.00390372, 3.74435), "3V3_SYS": (0.05466, 3.311119), "1V8_SYS": (0.172752, 1.80025),
        "DDR_VDD2": (0.0204975, 1.11133), "1V1_SYS": (0.189333, 1.110352), "VDD_CORE": (0.72863, 0.872),
        "HDMI": (0.0136754, 5.14627),
    }  # fmt: skip
    assert runner.parse_pmic_adc(PMIC_ADC) == pytest.approx(sum(a * v for a, v in rails.values()))
    assert runner.parse_pmic_adc('error=2 error_msg="Command not registered"') is None


def test_a_board_without_sensors_has_no_power_meter(tmp_path: Path) -> None:
    assert runner.power_meter(runner.Board(str(pi_like_tree(tmp_path)))) is None


def test_energy_per_inference_is_the_power_above_idle_times_the_time_per_inference() -> None:
    window = {
        "idle": {"seconds": 0.5, "watts": [3.0, 3.2, 3.1]},
        "active": {"seconds": 0.5, "inferences": 250, "watts": [5.0, 5.2, 5.1, 5.3]},
    }
    figures = window_energy(window)

    assert figures["seconds_per_inference"] == pytest.approx(0.002)
    assert figures["joules_per_inference"] == pytest.approx((5.15 - 3.1) * 0.002)
    energy = artifact_energy([window, window], "ina3221 VDD_IN (hwmon in1_input x curr1_input)")
    assert energy["measured"] and energy["millijoules_per_inference"] == pytest.approx(4.1)
    assert energy["method"].startswith("ina3221 VDD_IN (hwmon in1_input x curr1_input): (mean power while inferring")
    assert artifact_energy([], None) == {"measured": False, "reason": NOT_MEASURED}


def test_the_runner_reads_state_and_power_around_every_round(
    tiny_tflite_fp32: Path, tiny_tflite_int8: Path, eval_npz: Path, tmp_path: Path
) -> None:
    root = jetson_tree(pi_like_tree(tmp_path / "board"))
    result, completed = run_runner(
        "--rounds", 2, "--noise-pair", "--model", tiny_tflite_fp32, "--model", tiny_tflite_int8, "--data", eval_npz,
        "--warmup", 1, "--runs", 3, "--threads", 1, "--energy-window", 0.05, "--board-root", root,
    )  # fmt: skip

    assert completed.returncode == 0, completed.stderr
    assert result["board"]["power"]["used"] == ["ina3221 VDD_IN"] and result["board"]["cpufreq_cores"] == 2
    second = result["slots"].index({"model": 0, "copy": 1})
    for one in result["round_results"]:
        assert one["state_before"]["temperatures_c"] == {"thermal_zone0 (cpu-thermal)": pytest.approx(48.312)}
        assert one["state_after"]["cpufreq"]["cpu1"]["khz"] == 1800000
        assert [w["slot"] for w in one["energy"]] == [s for s in one["order"] if s != second]  # the baseline once
        for window in one["energy"]:
            assert window["active"]["inferences"] >= 1 and len(window["idle"]["watts"]) >= 2
            assert window_energy(window)["joules_per_inference"] == pytest.approx(0.0)  # a tree's power stands still
    assert json.dumps(result)  # plain JSON
