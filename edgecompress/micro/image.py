"""The whole firmware for a Cortex-M profile: compiled, linked, measured, and sized on 32 bits.

Two ELF files come out of one generated project, both linked with Debian's arm-none-eabi
GCC + newlib-nano against TFLM compiled for the profile's core (CMSIS-NN kernels by default,
reference kernels as a switch), with only the model's ops registered:

- `firmware.elf` (+ `firmware.bin`): what a board would run -- main.cc's demo loop, the
  model, TFLM. Its flash and RAM, read from the ELF and its linker map, are the figures
  checked against the profile's budgets.
- `firmware-qemu.elf`: the same model, TFLM and kernels with the evaluation harness
  (semihosting I/O, SysTick timing, per-operator profiling) instead of the demo loop, run on
  the emulated board by the `qemu` target.

When qemu-system-arm is installed the harness first runs one sample with a roomy arena, so
the arena is measured on the 32-bit core with the real kernels (CMSIS-NN's scratch buffers
included) and `kTensorArenaSize` is set from that figure plus a stated margin; the stack's
high-water mark sizes the linker script's stack the same way. Without QEMU the host
figure and a fixed stack are used, and the report says so.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import string
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecompress.errors import TargetError, ToolError
from edgecompress.micro import emulator, footprint, linking, tflm_make, tflm_tree
from edgecompress.micro.c_literals import c_comment
from edgecompress.micro.cores import BOARDS, Board, Core, board_for
from edgecompress.micro.toolchain import arm_tool, qemu_version_text, require_newlib
from edgecompress.resources import bundled_dir

DEVICE_ELF, EMULATOR_ELF, MANIFEST = "firmware.elf", "firmware-qemu.elf", "firmware.json"
#: Margin on the arena measured on the 32-bit core with the shipped kernels: it covers a TFLM
#: revision a user builds with that allocates a little differently, not a different word size.
ARENA_MARGIN_32_FRACTION = 0.05
ARENA_MARGIN_32_MIN_BYTES = 512
#: Stack: the measured high-water mark on the emulator plus this fraction, at least STACK_MIN.
STACK_MARGIN_FRACTION = 0.25
STACK_MIN_BYTES = 2048
#: Stack reserved when nothing could be measured, and for the measuring run itself.
STACK_UNMEASURED_BYTES = 8192
STACK_PROBE_BYTES = 32768
#: Memory a board without an emulator is linked into (addresses only; sizes are measured).
_GENERIC_BOARD = Board(
    "generic", "", "no emulated board: addresses only", 0x0, 16 << 20, 0x2000_0000, 16 << 20, 25_000_000
)
_APP_DEVICE = ("main.cc", "model_data.cc", "sample_input.cc", "startup_cortex_m.c")
_APP_EMULATOR = ("emulator_main.cc", "model_data.cc", "startup_cortex_m.c", "semihosting.c", "systick_time.cc")


@dataclass
class WholeFirmware:
    """The linked firmware of one model for one core and kernel set, with its measured figures."""

    directory: Path
    core: Core
    board: Board | None
    kernels: str
    tree: tflm_tree.TflmTree
    device: footprint.Footprint
    emulator: footprint.Footprint
    arena: dict[str, Any]
    stack: dict[str, Any]
    build: dict[str, Any]
    probe: dict[str, Any] | None
    manifest: Path
    notes: list[str] = field(default_factory=list)

    @property
    def device_elf(self) -> Path:
        return self.directory / DEVICE_ELF

    @property
    def emulator_elf(self) -> Path:
        return self.directory / EMULATOR_ELF

    @property
    def image(self) -> Path:
        return self.device_elf.with_suffix(".bin")

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "core": {
                "mcpu": self.core.mcpu,
                "family": self.core.family,
                "tflm_arch": self.core.tflm_arch,
                "fpu": self.core.fpu,
            },
            "board": self.board.name if self.board else None,
            "kernels": self.kernels,
            "tflm": self.tree.to_dict(),
            "toolchain": linking.gcc_version(),
            "optimization": linking.OPTIMIZATION,
            "device_elf": str(self.device_elf),
            "emulator_elf": str(self.emulator_elf),
            "image": str(self.image),
            "device": self.device.to_dict(),
            "emulator": self.emulator.to_dict(),
            "arena": self.arena,
            "stack": self.stack,
            "build": self.build,
            "probe": self.probe,
            "manifest": str(self.manifest),
            "notes": self.notes,
        }


@dataclass(frozen=True)
class ProbeInput:
    """One quantized sample (the input tensor's exact bytes) and the I/O sizes the harness checks."""

    sample: bytes
    input_bytes: int
    output_bytes: int
    output_dtype: str


def build_firmware(
    project: Path,
    *,
    core: Core,
    kernels: str,
    host_arena_bytes: int,
    probe: ProbeInput,
    tflm_dir: str | Path | None = None,
    board: str | None = None,
    emulate: bool = True,
    out_name: str | None = None,
    manifest_extra: dict[str, Any] | None = None,
    publish: bool | None = None,
) -> WholeFirmware:
    """Compile and link `project` (a generated firmware folder) for `core` with `kernels`.

    `host_arena_bytes` is the arena the host TFLM measured (with its margin): the fallback
    when the emulator cannot measure the 32-bit one. Raises ToolError for a missing tree,
    toolchain or a kernel the tree lacks.
    """
    job = _Linker(
        project,
        core,
        kernels,
        tflm_dir,
        _emulated_board(core, board) if emulate else None,
        project / "build" / (out_name or f"{core.mcpu}-{kernels}"),
    )
    measured = job.measure_on_emulator(host_arena_bytes, probe)
    arena, stack = _arena_figures(host_arena_bytes, measured), _stack_figures(measured)
    device, final_emulator, image = _link_final(job, arena, stack)
    device_footprint = footprint.measure(device.elf, device.map_file, device.origin_of())
    emulator_footprint = footprint.measure(final_emulator.elf, final_emulator.map_file, final_emulator.origin_of())
    extra = _manifest_figures(device_footprint, measured, manifest_extra, stack["reserved_bytes"])
    home = _publish(
        job, device, image, probe, arena, extra, manifest_extra or {}, out_name is None if publish is None else publish
    )
    return WholeFirmware(
        home,
        core,
        job.emulated,
        kernels,
        job.tree,
        device_footprint,
        emulator_footprint,
        arena,
        stack,
        job.summary(device, final_emulator),
        measured,
        home / MANIFEST,
        _unmeasured_notes(measured),
    )


def _link_final(
    job: _Linker, arena: dict[str, Any], stack: dict[str, Any]
) -> tuple[linking.LinkedFirmware, linking.LinkedFirmware, Path]:
    """Final link of device firmware and harness with the measured arena and stack, plus the image a board flashes."""
    final_emulator = job.link(_APP_EMULATOR, "firmware-qemu", arena["size_bytes"], stack["reserved_bytes"])
    device = job.link(_APP_DEVICE, "firmware", arena["size_bytes"], stack["reserved_bytes"])
    image = job.out / DEVICE_ELF.replace(".elf", ".bin")
    subprocess.run([arm_tool("objcopy"), "-O", "binary", str(device.elf), str(image)], check=True)
    return device, final_emulator, image


def _manifest_figures(
    device: footprint.Footprint, measured: dict[str, Any] | None, manifest_extra: dict[str, Any] | None, stack: int
) -> dict[str, Any]:
    """ELF figures the qemu target reports from the manifest (flash, RAM, instructions) and the stack the
    firmware was linked with (a rebuild needs it); the caller's extras win."""
    return {
        "flash_bytes": device.flash_bytes,
        "ram_bytes": device.ram_bytes,
        "stack_bytes": stack,
        "instructions_first_sample": measured["instructions_first_sample"] if measured else None,
        **(manifest_extra or {}),
    }


def _unmeasured_notes(measured: dict[str, Any] | None) -> list[str]:
    """Tell the report's reader when arena and stack are host figures, not measured on the 32-bit core."""
    if measured is not None:
        return []
    return [
        "qemu-system-arm is not available (or the core has no emulated board): the arena is the host TFLM figure "
        "with its margin and the stack a fixed reservation, not measured on the 32-bit core"
    ]


class _Linker:
    """Links the project's firmware variants against one TFLM tree, sharing compiled objects."""

    def __init__(
        self, project: Path, core: Core, kernels: str, tflm_dir: str | Path | None, emulated: Board | None, out: Path
    ) -> None:
        self.project, self.core, self.kernels, self.emulated, self.out = project, core, kernels, emulated, out
        self.tree = tflm_tree.find_tree(tflm_dir)
        self.builder = linking.Builder(self.tree, tflm_make.build_recipe(self.tree, core.tflm_arch or "", kernels))
        require_newlib(self.builder.cpu_flags)
        self.layout = emulated or _GENERIC_BOARD
        out.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        self.stats: dict[str, Any] = {
            "compiled_now": 0,
            "from_cache": 0,
            "rounds": 0,
            "compile_seconds": 0.0,
            "link_seconds": 0.0,
        }

    def link(self, sources: tuple[str, ...], name: str, arena: int, stack: int) -> linking.LinkedFirmware:
        harness = sources == _APP_EMULATOR  # its arena is the linker script's region; main.cc's is an array
        defines = [f"-DEDGECOMPRESS_SYSTICK_HZ={self.layout.sysclk_hz}"] + (
            [] if harness else [f"-DEDGECOMPRESS_ARENA_BYTES={arena}"]
        )
        # The project's own objects are shared by its variants (keyed by command and source).
        compile_started = time.monotonic()
        application = self.builder.compile_application(
            [self.project / s for s in sources], self.project / "build" / "objects", defines
        )
        units, rounds, _ = self.builder.close_over(application)
        compile_seconds = time.monotonic() - compile_started
        script = _linker_script(self.out / f"{name}.ld", self.layout, stack, arena if harness else 0)
        elf = self.out / f"{name}.elf"
        command, link_seconds, warnings = self.builder.link(units, script, elf)
        library = [u for u in units if u.origin != "application"]
        self.stats["compiled_now"] += sum(not u.cached for u in library)
        self.stats["from_cache"] += sum(u.cached for u in library)
        self.stats["rounds"] = max(self.stats["rounds"], rounds)
        self.stats["link_seconds"] += link_seconds
        self.stats["compile_seconds"] += compile_seconds
        return linking.LinkedFirmware(
            elf,
            elf.with_suffix(".map"),
            units,
            command,
            compile_seconds,
            link_seconds,
            rounds,
            sum(not u.cached for u in units),
            sum(u.cached for u in units),
            warnings,
        )

    def measure_on_emulator(self, host_arena_bytes: int, probe: ProbeInput) -> dict[str, Any] | None:
        """Arena, stack and the first sample's instructions on the emulated 32-bit core (None without one)."""
        if self.emulated is None:
            return None
        probe_arena = _align(max(2 * host_arena_bytes, host_arena_bytes + (64 << 10)))
        probe_arena = min(probe_arena, self.layout.data_bytes - STACK_PROBE_BYTES - (256 << 10))
        run = self._run(self.link(_APP_EMULATOR, "probe", probe_arena, STACK_PROBE_BYTES), probe, "probe-run")
        measured: dict[str, Any] = {
            "arena_used": run.arena_used,
            "stack_peak": run.stack_peak,
            "instructions_first_sample": float(run.instructions[0]),
            "calibration": run.calibration.to_dict(),
            "board": self.emulated.name,
            "qemu": qemu_version_text(),
        }

        def runs_in(arena_bytes: int) -> bool:
            try:
                self._run(
                    self.link(_APP_EMULATOR, "probe-arena", arena_bytes, STACK_PROBE_BYTES), probe, "probe-arena-run"
                )
            except TargetError:
                return False
            return True

        measured["smallest_arena"] = smallest_arena(int(measured["arena_used"]), probe_arena, runs_in)
        return measured

    def _run(self, linked: linking.LinkedFirmware, probe: ProbeInput, folder: str) -> Any:
        assert self.emulated is not None
        return emulator.run_firmware(
            linked.elf,
            self.emulated,
            probe.sample,
            input_bytes=probe.input_bytes,
            output_bytes=probe.output_bytes,
            output_dtype=probe.output_dtype,
            workdir=self.out / folder,
            timeout_s=300,
        )

    def summary(self, device: linking.LinkedFirmware, final_emulator: linking.LinkedFirmware) -> dict[str, Any]:
        """The build section of the manifest: what was compiled, reused and linked, and how long it took."""
        return {
            **self.stats,
            "seconds": round(time.monotonic() - self.started, 2),
            "link_seconds": round(self.stats["link_seconds"], 2),
            "compile_seconds": round(self.stats["compile_seconds"], 2),
            "jobs": self.builder.jobs,
            "object_cache": str(self.builder.object_dir),
            "sources": device.to_dict()["sources"],
            "emulator_sources": final_emulator.to_dict()["sources"],
            "link_command": device.to_dict()["link_command"],
            "warnings": device.warnings[:20],
        }


def _publish(
    job: _Linker,
    device: linking.LinkedFirmware,
    image: Path,
    probe: ProbeInput,
    arena: dict[str, Any],
    extra: dict[str, Any],
    manifest_extra: dict[str, Any],
    publish: bool,
) -> Path:
    """Write the manifest and Makefile; the project's own firmware is copied beside its sources,
    where users and the qemu target look. Returns the folder that holds the finished firmware."""
    out, project = job.out, job.project
    if "reference_scores" in extra:  # named relative to the project; the manifest may sit deeper
        extra["reference_scores"] = os.path.relpath(project / extra["reference_scores"], out)
    _write_manifest(out, job.core, job.emulated, job.kernels, probe, arena, job.tree, extra)
    _write_makefile(
        project if publish else out,
        device,
        job.tree,
        recipe_flags=job.builder,
        core=job.core,
        kernels=job.kernels,
        script=out / "firmware.ld",
    )
    if not publish:
        return out
    if "reference_scores" in extra:
        extra["reference_scores"] = manifest_extra["reference_scores"]
    for name in (DEVICE_ELF, EMULATOR_ELF, "firmware.map", "firmware-qemu.map", image.name):
        shutil.copyfile(out / name, project / name)
    _write_manifest(project, job.core, job.emulated, job.kernels, probe, arena, job.tree, extra)
    return project


def smallest_arena(used: int, works_at: int, runs_in: Any) -> dict[str, int]:
    """The smallest arena (16-byte steps) the firmware really runs in on the emulated core.

    `arena_used_bytes()` + 16 is TFLM's own figure, but preparing the model also needs
    temporary room (the memory planner's scratch: "Too many buffers" when it is short), so
    the size is searched: upward in doubling steps from that figure until it runs, then
    bisected. Each probe relinks the harness (the arena is a linker-script region) and runs
    one sample: about a second.
    """
    failing, step, probes = _align(used), 256, 0
    candidate = _align(used + 16)
    while candidate < works_at:
        probes += 1
        if runs_in(candidate):
            works_at = candidate
            break
        failing, candidate, step = candidate, _align(used + step), step * 2
    while works_at - failing > 16:
        middle = _align((failing + works_at) // 2)
        if middle in (failing, works_at):
            break
        probes += 1
        if runs_in(middle):
            works_at = middle
        else:
            failing = middle
    return {"bytes": works_at, "probes": probes}


def _emulated_board(core: Core, requested: str | None) -> Board | None:
    from edgecompress.micro.toolchain import qemu_system

    if requested is None and core.qemu_board is None:
        return None
    try:
        qemu_system()
    except ToolError:
        if requested is not None:
            raise
        return None
    return board_for(core, requested)


def _align(n: float, to: int = 16) -> int:
    return -(-int(n) // to) * to


def _arena_figures(host_bytes: int, measured: dict[str, Any] | None) -> dict[str, Any]:
    if measured is None:
        return {
            "size_bytes": _align(host_bytes),
            "source": "host TFLM interpreter (64-bit, reference kernels) with its margin",
            "host_with_margin_bytes": host_bytes,
            "measured_32bit_bytes": None,
        }
    used = int(measured["arena_used"])
    needed = int(measured["smallest_arena"]["bytes"])
    margin = max(math.ceil(needed * ARENA_MARGIN_32_FRACTION), ARENA_MARGIN_32_MIN_BYTES)
    return {
        "size_bytes": _align(needed + margin),
        "source": "smallest arena the firmware runs in on the emulated 32-bit core, shipped kernels",
        "measured_32bit_bytes": used,
        "smallest_working_bytes": needed,
        "margin_bytes": margin,
        "search_probes": measured["smallest_arena"]["probes"],
        "search": "arena_used_bytes() + 16, then doubling steps until the firmware runs, then bisection to 16 B",
        "margin_rule": f"max({ARENA_MARGIN_32_FRACTION:.0%} of the smallest working arena, {ARENA_MARGIN_32_MIN_BYTES} B), "
        "rounded up to 16 B",
        "host_with_margin_bytes": host_bytes,
    }


def _stack_figures(measured: dict[str, Any] | None) -> dict[str, Any]:
    if measured is None:
        return {
            "reserved_bytes": STACK_UNMEASURED_BYTES,
            "peak_bytes": None,
            "source": "fixed reservation (not measured)",
        }
    peak = int(measured["stack_peak"])
    reserved = _align(max(peak * (1 + STACK_MARGIN_FRACTION), STACK_MIN_BYTES), 256)
    return {
        "reserved_bytes": reserved,
        "peak_bytes": peak,
        "source": f"high-water mark on the emulator + {STACK_MARGIN_FRACTION:.0%}, at least {STACK_MIN_BYTES} B",
    }


def _linker_script(path: Path, board: Board, stack_bytes: int, arena_bytes: int) -> Path:
    template = string.Template((bundled_dir("firmware") / "tflm" / "cortex_m.ld.in").read_text())
    path.write_text(
        template.substitute(
            board_note=c_comment(board.description),
            code_origin=hex(board.code_origin),
            code_bytes=hex(board.code_bytes),
            data_origin=hex(board.data_origin),
            data_bytes=hex(board.data_bytes),
            stack_bytes=hex(_align(stack_bytes, 8)),
            arena_bytes=hex(_align(arena_bytes)),
        )
    )
    return path


def _write_makefile(
    directory: Path,
    device: linking.LinkedFirmware,
    tree: tflm_tree.TflmTree,
    *,
    recipe_flags: linking.Builder,
    core: Core,
    kernels: str,
    script: Path,
) -> Path:
    """A Makefile that rebuilds firmware.elf from the same TFLM sources and flags, for a user's own board."""
    root = str(tree.root)

    def quoted(flags: Any) -> str:
        return " ".join(shlex.quote(flag) for flag in flags)

    recipe = recipe_flags.recipe
    includes = " ".join(
        "-I" + ("$(TFLM_DIR)" + path[len(root) :] if path.startswith(root) else path) for path in recipe.includes
    )
    sources = sorted(u.source for u in device.units if u.origin != "application")
    template = string.Template((bundled_dir("firmware") / "tflm" / "Makefile.in").read_text())
    path = directory / "Makefile"
    path.write_text(
        template.substitute(
            core_family=core.family,
            kernels=kernels,
            optimization=linking.OPTIMIZATION,
            tflm_dir=root,
            cpu_flags=quoted(recipe_flags.cpu_flags),
            cxxflags=quoted(recipe.cxxflags),
            cflags=quoted(recipe.cflags),
            includes=includes,
            ldflags=quoted(f for f in recipe.ldflags if f != "-Wl,--fatal-warnings"),
            libs=quoted(recipe.libs),
            tflm_sources=" \\\n".join(f"  {source}" for source in sources),
        )
    )
    if script.resolve() != (directory / "firmware.ld").resolve():
        shutil.copyfile(script, directory / "firmware.ld")
    return path


def _write_manifest(
    directory: Path,
    core: Core,
    board: Board | None,
    kernels: str,
    probe: ProbeInput,
    arena: dict[str, Any],
    tree: tflm_tree.TflmTree,
    extra: dict[str, Any],
) -> Path:
    """What the qemu target needs to run the firmware, with paths relative to the project (run folders move)."""
    path = directory / MANIFEST
    path.write_text(
        json.dumps(
            {
                "kind": "edgecompress.tflm-firmware",
                "emulator_elf": EMULATOR_ELF,
                "device_elf": DEVICE_ELF,
                "core": core.mcpu,
                "core_family": core.family,
                "board": board.name if board else None,
                "kernels": kernels,
                "input_bytes": probe.input_bytes,
                "output_bytes": probe.output_bytes,
                "output_dtype": probe.output_dtype,
                "arena_bytes": arena["size_bytes"],
                "tflm_revision": tree.revision,
                **extra,
            },
            indent=2,
        )
    )
    return path


def read_manifest(path: Path) -> dict[str, Any]:
    document = json.loads(Path(path).read_text())
    if document.get("kind") != "edgecompress.tflm-firmware":
        raise ToolError(
            f"{path} is not a firmware manifest written by edgecompress.", "Build the firmware with deploy first."
        )
    return document


def relink(project: Path, out: Path, *, tflm_dir: str | Path | None = None) -> Path:
    """Link `project`'s device firmware again from its own sources, with the core, kernels, memory map,
    arena and stack its firmware.json records; returns the new flash image (in `out`).

    TFLM's objects come from the object cache when this machine built them before; a project
    unchanged since it was built links to the very same image, byte for byte.
    """
    from edgecompress.hardware import CORES

    manifest = read_manifest(project / MANIFEST)
    core = next((c for c in CORES.values() if c.family == manifest.get("core_family")), None)
    if core is None or core.mcpu != manifest.get("core"):
        raise ToolError(
            f"{project / MANIFEST} names a core this edgecompress does not build for ({manifest.get('core_family')}).",
            "Use the edgecompress version that built the firmware.",
        )
    board = BOARDS.get(str(manifest.get("board"))) if manifest.get("board") else None
    job = _Linker(project, core, str(manifest["kernels"]), tflm_dir, board, out)
    stack = int(manifest.get("stack_bytes") or STACK_UNMEASURED_BYTES)
    device = job.link(_APP_DEVICE, "firmware", int(manifest["arena_bytes"]), stack)
    image = out / DEVICE_ELF.replace(".elf", ".bin")
    subprocess.run([arm_tool("objcopy"), "-O", "binary", str(device.elf), str(image)], check=True)
    return image


def available_boards() -> list[str]:
    return sorted(BOARDS)


def quantized_bytes(x: np.ndarray, dtype: str, scale: float, zero_point: int) -> bytes:
    """Inputs as the device gets them: quantized exactly like the runner quantizes for TFLM and LiteRT."""
    from edgecompress.micro.tflm import runner_module

    runner = runner_module()
    return np.ascontiguousarray(runner.quantize(x, np.dtype(dtype), (scale, zero_point))).tobytes()
