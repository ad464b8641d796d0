"""Export a Keras model to TFLite / ONNX, prove the files compute what Keras does, and size them.

Nothing here imports TensorFlow at import time; the converters are loaded when first used.
"""

from edgecompress.export.macs import MAC_DEFINITION, artifact_macs
from edgecompress.export.modes import PTQ_MODE_SPECS, PTQ_MODES, PtqMode
from edgecompress.export.onnx import to_onnx, verify_onnx
from edgecompress.export.onnx_quant import export_onnx
from edgecompress.export.sizes import BITPACKED_DEFINITION, artifact_sizes, bitpacked_size, gzip_bytes
from edgecompress.export.tflite import to_tflite, verify_tflite
from edgecompress.export.weights import tflite_mode, tflite_weight_stats

__all__ = [
    "BITPACKED_DEFINITION",
    "MAC_DEFINITION",
    "artifact_macs",
    "export_onnx",
    "PTQ_MODES",
    "PTQ_MODE_SPECS",
    "PtqMode",
    "artifact_sizes",
    "bitpacked_size",
    "gzip_bytes",
    "tflite_mode",
    "tflite_weight_stats",
    "to_onnx",
    "to_tflite",
    "verify_onnx",
    "verify_tflite",
]
