"""The three sizes every artifact is reported with, and what each one means.

- file bytes: what is copied to the device and loaded.
- gzip bytes: level 9, mtime 0, no file name, so the same artifact always gives the same
  number; a proxy for download / flash-compression cost that rewards repeated values.
- bit-packed bytes: what the unique values per weight tensor allow (see
  `edgecompress.export.weights` for the exact definition); a lower bound a custom kernel
  could reach, not a file that exists.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

from edgecompress.errors import ModelError
from edgecompress.export.flatbuffer import TfliteFile

BITPACKED_DEFINITION = (
    "weights at ceil(log2(unique values)) bits each + codebooks (unique values at stored width "
    "+ float32 scales), per tensor or per output channel, whichever is smaller; biases and "
    "other constants at their stored width, listed separately; graph structure not counted"
)


def gzip_bytes(data: bytes) -> int:
    """Deterministic gzip size: level 9 and mtime 0, so reruns and reports agree byte for byte."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def artifact_sizes(path: Path) -> dict:
    """{'file_bytes', 'gzip_bytes'} of an exported artifact on disk."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Artifact '{path}' does not exist or is not a file.", "Export the model first.")
    data = path.read_bytes()
    return {"file_bytes": len(data), "gzip_bytes": gzip_bytes(data)}


def bitpacked_size(stats: list[dict], *, tflite_bytes: bytes | None = None) -> dict:
    """Bytes the weights could be packed into, with what is *not* packed stated separately.

    `stats` comes from `tflite_weight_stats`. Buffers shared by several tensors (the
    converter de-duplicates identical constants) are counted once, as in the file. Pass
    `tflite_bytes` to also count the remaining constants (shape vectors, lookup tables) at
    their stored width; without it `other_constant_bytes` is None and left out of the total.
    """
    by_buffer = {row["buffer"]: row for row in stats}.values()
    biases = {row["bias_buffer"]: row["bias_bytes"] for row in stats if row["bias_buffer"] is not None}
    packed = sum(math.ceil(row["n_weights"] * row["bits_per_weight"] / 8) for row in by_buffer)
    codebooks = sum(math.ceil(row["codebook_bits"] / 8) for row in by_buffer)
    bias_bytes = sum(biases.values())
    other = None
    if tflite_bytes is not None:
        accounted = {row["buffer"] for row in by_buffer} | set(biases)
        constants = TfliteFile(tflite_bytes).all_constant_buffers()
        other = sum(size for buffer, size in constants.items() if buffer not in accounted)
    return {
        "weights_packed_bytes": packed,
        "codebook_bytes": codebooks,
        "bias_bytes": bias_bytes,
        "other_constant_bytes": other,
        "total_bytes": packed + codebooks + bias_bytes + (other or 0),
        "weights_stored_bytes": sum(row["stored_bytes"] for row in by_buffer),
        "definition": BITPACKED_DEFINITION,
    }
