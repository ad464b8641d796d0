"""Literals in generated firmware sources: compiled by the real compilers and read back bit for bit.

Each array is emitted by `edgecompress.micro.c_literals`, compiled with arm-none-eabi-g++ for
the Nano 33 BLE's Cortex-M4F and with the host g++ (the firmware's own flags, -Werror), and
its bytes are read back from the object with objcopy: the compiler, not Python, says what
value each literal denotes. The firmware header is then generated for a model whose input
scale is exactly 1.0 (any model fed 0-255 pixels) and odd class names, and compiled and run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgecompress.errors import ModelError
from edgecompress.micro import c_literals as c
from edgecompress.micro import firmware
from edgecompress.micro.tflm import ModelIo, TensorIo

ARM = shutil.which("arm-none-eabi-g++")
HOST = shutil.which("g++")
COMPILERS = [
    pytest.param(ARM, ("-mcpu=cortex-m4", *firmware._ARM_FLAGS), id="cortex-m4"),
    pytest.param(HOST, (), id="host"),
]
needs_compilers = pytest.mark.skipif(ARM is None or HOST is None, reason="needs arm-none-eabi-g++ and g++")

F32 = np.finfo(np.float32)
SPECIAL_FLOATS = [
    1.0,  # the input scale of every model fed 0-255 pixels: `1f` does not compile
    0.0,
    -0.0,
    -1.0,
    255.0,
    1 / 255,
    0.1,
    16777216.0,
    16777217.0,  # not a float32: rounds to 16777216
    1e-4,
    9.99999e-5,
    1e7,
    9999999.0,
    float(F32.max),
    -float(F32.max),
    float(F32.tiny),  # smallest normal
    float(F32.smallest_subnormal),
    -float(F32.smallest_subnormal),
    float(F32.tiny) - float(F32.smallest_subnormal),  # largest subnormal
    3.0e-39,
    1e30,
    2.5e-05,
    0.003921568859368563,
]


def _random_finite_floats(n: int, seed: int = 0) -> np.ndarray:
    """`n` float32 values with uniformly random bit patterns (every exponent, subnormals included), finite only."""
    bits = np.random.default_rng(seed).integers(0, 2**32, size=4 * n, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32)
    return values[np.isfinite(values)][:n]


def _compile_and_read(compiler: str, flags: tuple[str, ...], source: str, symbols: list[str], tmp: Path) -> dict:
    """Compile `source` to an object and read each extern "C" symbol's bytes back with objcopy."""
    (tmp / "values.cc").write_text(source)
    subprocess.run(
        [compiler, *firmware._COMPILE_FLAGS, *flags, "-fdata-sections", "-c", "values.cc", "-o", "values.o"],
        cwd=tmp,
        check=True,
        capture_output=True,
        text=True,
    )
    objcopy = shutil.which(compiler.rsplit("g++", 1)[0] + "objcopy")
    assert objcopy is not None
    found = {}
    for symbol in symbols:
        out = tmp / f"{symbol}.bin"
        subprocess.run(
            [objcopy, "-O", "binary", f"--only-section=.rodata.{symbol}", "values.o", str(out)], cwd=tmp, check=True
        )
        found[symbol] = out.read_bytes()
    return found


def _array(symbol: str, values: np.ndarray) -> str:
    ctype = c.c_type(values.dtype)
    return f'extern "C" const {ctype} {symbol}[{values.size}] = {{\n{c.c_array_items(values, symbol)}\n}};\n'


def test_float_literals_are_the_shortest_that_read_back():
    assert c.c_float(1.0, "x") == "1.0f"
    assert c.c_float(-0.0, "x") == "-0.0f"
    assert c.c_float(255.0, "x") == "255.0f"
    assert c.c_float(1 / 255, "x") == "0.003921569f"
    assert c.c_float(float(F32.smallest_subnormal), "x") == "1.0e-45f"
    assert c.c_float(float(F32.max), "x") == "3.4028235e+38f"
    for value in [*SPECIAL_FLOATS, *_random_finite_floats(2000)]:
        text = c.c_float(float(value), "x")
        assert "." in text and text.endswith("f") and "inf" not in text and "nan" not in text
        assert np.float32(text[:-1]).tobytes() == np.float32(value).tobytes(), text


@needs_compilers
@pytest.mark.parametrize(("compiler", "flags"), COMPILERS)
def test_every_float32_literal_compiles_to_the_same_bits(compiler, flags, tmp_path):
    values = np.concatenate([np.array(SPECIAL_FLOATS, dtype=np.float32), _random_finite_floats(4000, seed=1)])
    found = _compile_and_read(
        compiler, flags, "#include <stdint.h>\n" + _array("ec_floats", values), ["ec_floats"], tmp_path
    )
    read = np.frombuffer(found["ec_floats"], dtype="<f4")
    assert read.tobytes() == values.astype("<f4").tobytes()  # sign of zero and subnormals included
    assert np.signbit(read[2]) and read[0] == 1.0


@needs_compilers
@pytest.mark.parametrize(("compiler", "flags"), COMPILERS)
def test_integer_literals_of_every_type_compile_to_their_values(compiler, flags, tmp_path):
    arrays = {}
    for name in ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"):
        info = np.iinfo(name)
        random = np.random.default_rng(2).integers(info.min, info.max, size=64, dtype=name, endpoint=True)
        arrays[f"ec_{name}"] = np.concatenate([np.array([info.min, info.max, 0, 1], dtype=name), random])
    source = "#include <stdint.h>\n" + "".join(_array(symbol, values) for symbol, values in arrays.items())
    found = _compile_and_read(compiler, flags, source, list(arrays), tmp_path)
    for symbol, values in arrays.items():
        assert found[symbol] == values.astype(values.dtype.newbyteorder("<")).tobytes(), symbol
    assert c.c_int(-(2**31), "int32") == "(-2147483647 - 1)" and c.c_int(2**32 - 1, "uint32") == "4294967295u"
    with pytest.raises(ValueError, match="does not fit int8_t"):
        c.c_int(128, "int8")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 1e39])
def test_a_value_with_no_float_literal_is_refused_with_its_name(bad):
    with pytest.raises(ModelError, match="the input tensor 'serving_default_x:0'"):
        c.c_float(bad, "the input tensor 'serving_default_x:0'")
    with pytest.raises(ModelError, match="element 3 of the sample input"):
        c.c_array_items(np.array([0.5, 1.0, 2.0, bad]), "the sample input")


def _inputs(*, scale: float, names: list[str], model_name: str = "cifar_resnet") -> firmware.FirmwareInputs:
    model = b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 3  # the header check reads only the identifier
    io = ModelIo(
        TensorIo((1, 4, 4, 3), "int8", scale, -128, "serving_default_input_1:0"),
        TensorIo((1, len(names)), "int8", 0.00390625, -128, "StatefulPartitionedCall:0"),
    )
    return firmware.FirmwareInputs(
        name=model_name,
        profile_name="arduino-nano-33-ble",
        model=model,
        model_file=f"{model_name}.tflite",
        io=io,
        op_names=["CONV_2D", "FULLY_CONNECTED", "SOFTMAX"],
        arena_minimum=4096,
        arena_bytes=5120,
        arena_note="measured in a test",
        sample_input=np.arange(-128, -80, dtype=np.int8),
        sample_label=1,
        class_names=names,
        output_kind="softmax",
        binary_threshold=0.5,
    )


READER = r"""
#include <cstdio>
#include "model_data.h"
static void bytes(const char* text) {  // a string as a JSON list of its bytes
  std::printf("[");
  for (const char* p = text; *p; ++p) std::printf("%s%d", p == text ? "" : ", ", (unsigned char)*p);
  std::printf("]");
}
int main() {
  std::printf("{\"input_scale\": \"%a\", \"output_scale\": \"%a\", \"threshold\": \"%a\", \"zero_point\": %d, \"names\": [",
              (double)kInputScale, (double)kOutputScale, (double)kBinaryThreshold, kInputZeroPoint);
  for (int i = 0; i < kClassCount; ++i) {
    if (i) std::printf(", ");
    bytes(kClassNames[i]);
  }
  std::printf("], \"model\": ");
  bytes(kModelName);
  std::printf(", \"first_sample\": %d}\n", g_sample_input[0]);
}
"""


@needs_compilers
def test_the_firmware_header_for_a_0_255_input_model_compiles_for_cortex_m_and_reads_back(tmp_path):
    names = ['ship "A"', "truck\\n", "naïve?\n??=", "*/ end", "ok"]
    inputs = _inputs(scale=1.0, names=names, model_name="odd\nname */ x\\")
    project = firmware.write_firmware(inputs, tmp_path / "firmware")
    header = (project / "model_data.h").read_text()
    assert "constexpr float kInputScale = 1.0f;" in header
    build = firmware.compile_firmware(project, inputs.model, mcpu="cortex-m4")  # -Werror, both compilers
    assert build.host_check is not None and build.host_check["array_matches_tflite"]
    assert {o.target for o in build.objects} == {"host", "cortex-m4"}
    (project / "reader.cc").write_text(READER)
    subprocess.run(
        [HOST, *firmware._COMPILE_FLAGS, "-Wno-format", "reader.cc", *firmware.COMPILED_UNITS, "-o", "reader"],
        cwd=project,
        check=True,
    )
    read = json.loads(subprocess.run(["./reader"], cwd=project, check=True, capture_output=True, text=True).stdout)
    assert float.fromhex(read["input_scale"]) == 1.0 and float.fromhex(read["output_scale"]) == 0.00390625
    assert float.fromhex(read["threshold"]) == 0.5 and read["zero_point"] == -128
    assert [bytes(n).decode("utf-8") for n in read["names"]] == names
    assert bytes(read["model"]).decode() == "odd\nname */ x\\" and read["first_sample"] == -128


def test_a_non_finite_scale_stops_the_firmware_with_the_tensor_name(tmp_path):
    with pytest.raises(ModelError, match="the input tensor 'serving_default_input_1:0'.s quantization scale is nan"):
        firmware.write_firmware(_inputs(scale=float("nan"), names=["a", "b"]), tmp_path / "firmware")
    assert not (tmp_path / "firmware" / "model_data.h").exists()
