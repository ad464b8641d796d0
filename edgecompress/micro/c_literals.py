"""C and C++ literals for every generated source: one emitter, valid for every value it accepts.

Generated firmware sources are only as good as their literals. A float printed the Python
way (`1f` for 1.0, `inf`, `nan`) does not compile, or compiles to another value; the most
negative int32 written as `-2147483648` is a negation of a `long`; a class name with a
quote or a newline ends its string literal early, and a newline in a `//` comment turns the
rest of the name into code. So every literal that enters a template is made here:

- floats are float32, written with the fewest digits that read back to the same float32
  (Dragon4, as numpy prints float32), always with a '.', an exponent where a positional
  form would be long, and an `f` suffix; negative zero keeps its sign and subnormals are
  exact. NaN and infinity have no literal: they are refused, naming the tensor or figure;
- integers are range-checked against their C type, unsigned ones get a `u` suffix, and each
  type's minimum is written as an expression (`(-2147483647 - 1)`), never a negated literal
  that does not fit the type;
- strings escape quotes, backslashes, '?' (no trigraphs) and every byte outside printable
  ASCII as three-digit octal (a `\\x` escape would swallow the hex digits after it);
- comment text loses its control characters (a newline or a trailing backslash would end,
  or continue, a `//` comment) and any `*/`.

tests/test_c_literals.py compiles generated arrays with arm-none-eabi-g++ and the host g++ and
reads every value back bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import numpy as np

from edgecompress.errors import ModelError

#: numpy dtype name -> (C type, suffix). The C types are <stdint.h>'s.
C_TYPES: Final[dict[str, tuple[str, str]]] = {
    "int8": ("int8_t", ""),
    "uint8": ("uint8_t", "u"),
    "int16": ("int16_t", ""),
    "uint16": ("uint16_t", "u"),
    "int32": ("int32_t", ""),
    "uint32": ("uint32_t", "u"),
    "int64": ("int64_t", "ll"),
    "uint64": ("uint64_t", "ull"),
    "float32": ("float", "f"),
}
#: positional notation inside this magnitude range, scientific outside it (shorter, still exact)
_POSITIONAL = (1e-4, 1e7)


def c_type(dtype: str | np.dtype) -> str:
    """The C type of a tensor's numpy dtype ('int8' -> 'int8_t', 'float32' -> 'float')."""
    name = np.dtype(dtype).name
    if name not in C_TYPES:
        raise ModelError(
            f"The firmware cannot carry a tensor of type {name}.",
            f"TFLite Micro firmware inputs and outputs are one of {', '.join(C_TYPES)}; re-export the model as int8.",
        )
    return C_TYPES[name][0]


def c_float(value: float, what: str) -> str:
    """`value` as a float32 C literal that reads back to the same float32, bit for bit.

    `what` names the figure (e.g. "the input tensor 'serving_default_x:0' scale") for the
    error raised when the value is NaN or infinite, which no C literal can hold.
    """
    with np.errstate(over="ignore"):  # beyond float32's range is infinity, refused below
        x = np.float32(value)
    if not np.isfinite(x):
        raise ModelError(
            f"Cannot write the firmware: {what} is {float(value)}, and C has no literal for a value that is "
            "not finite.",
            "A quantization scale or threshold that is NaN or infinite comes from calibration or training data "
            "with NaN/inf values, or a layer whose output overflows: check the data and re-export the model.",
        )
    magnitude = abs(float(x))
    if magnitude == 0.0 or _POSITIONAL[0] <= magnitude < _POSITIONAL[1]:
        text = np.format_float_positional(x, unique=True, trim="0")
    else:
        text = np.format_float_scientific(x, unique=True, trim="0")
    return text + "f"


def c_int(value: int, dtype: str | np.dtype) -> str:
    """`value` as a literal of the C type of `dtype`; refused (ValueError) when the type cannot hold it."""
    name = np.dtype(dtype).name
    info = np.iinfo(np.dtype(name))
    number = int(value)
    if not info.min <= number <= info.max:
        raise ValueError(f"{number} does not fit {c_type(name)} ({info.min}..{info.max})")
    suffix = C_TYPES[name][1]
    if number == info.min and number < 0:
        return f"({number + 1}{suffix} - 1)"  # -2147483648 would negate a literal int cannot hold
    return f"{number}{suffix}"


def c_array_items(values: np.ndarray | Iterable[float], what: str, *, per_line: int = 16) -> str:
    """The initialiser lines of a C array of `values` (typed by their dtype), 16 per line, each ending in ','.

    Floats go through c_float (a non-finite element is refused with its index), integers
    through c_int; `what` names the array in errors.
    """
    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind == "f":
        with np.errstate(over="ignore"):
            flat = flat.astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(flat))
        if bad.size:
            c_float(float(flat[bad[0]]), f"element {int(bad[0])} of {what}")
        render = [c_float(float(v), what) for v in flat]
    else:
        render = [c_int(int(v), flat.dtype) for v in flat]
    rows = [render[i : i + per_line] for i in range(0, len(render), per_line)]
    return "\n".join("  " + ", ".join(row) + "," for row in rows)


def c_bytes(data: bytes, *, per_line: int = 16) -> str:
    """The initialiser lines of an `unsigned char` array holding `data` (hex, 16 per line)."""
    hexed = bytes(data).hex()
    lines = []
    for start in range(0, len(data), per_line):
        chunk = hexed[2 * start : 2 * (start + per_line)]
        lines.append("  " + ", ".join(f"0x{chunk[i : i + 2]}" for i in range(0, len(chunk), 2)) + ",")
    return "\n".join(lines)


_ESCAPES = {ord('"'): '\\"', ord("\\"): "\\\\", ord("?"): "\\?", ord("\n"): "\\n", ord("\t"): "\\t"}


def c_string(text: str) -> str:
    """`text` as a C string literal (quotes included), UTF-8, every non-printable byte escaped."""
    out = []
    for byte in str(text).encode("utf-8"):
        if byte in _ESCAPES:
            out.append(_ESCAPES[byte])
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def c_comment(text: str) -> str:
    """`text` made safe inside a `//` or `/* */` comment: one line, no trailing backslash, no '*/'."""
    flat = "".join(ch if ch.isprintable() else " " for ch in str(text))
    return flat.replace("*/", "* /").replace("\\", "/")
