"""Sub-8-bit weights trained with a straight-through estimator, then written back as plain layers.

One quantizer covers binarisation and b-bit weights. Per output channel c:

    latent weights   W_c  <- clip(W_c - mean(W_c), -1, 1)   (mean-centred and clipped, as
                                                             in XNOR-Net; done every step)
    codes            Q_c  = 2^b uniform symmetric levels on [-1, 1] of W_c / max|W_c|
                            (b = 1: Q = sign(W))
    scale            a_c  = <W_c, Q_c> / <Q_c, Q_c>         (least squares; b = 1 gives
                                                             XNOR's a = mean |W_c|)
    forward kernel   a_c * Q_c, gradient passed straight through to W_c

After training `materialize` writes a_c * Q_c into the ordinary Conv/Dense kernel and drops
the wrapper, so export sees only standard ops and every channel holds at most 2^b values.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from edgecompress._tf import keras, tensorflow
from edgecompress.compression.graph import rebuild, selected


def coded_kernel(kernel: Any, bits: int) -> Any:
    """a_c * Q_c for a kernel whose last axis is the output channel (see module docstring)."""
    tf = tensorflow()
    levels = float(2**bits - 1)
    axes = list(range(len(kernel.shape) - 1))
    peak = tf.maximum(tf.reduce_max(tf.abs(kernel), axis=axes, keepdims=True), 1e-12)
    unit = tf.clip_by_value(kernel / peak, -1.0, 1.0)
    codes = (2.0 * tf.round((unit + 1.0) / 2.0 * levels) - levels) / levels
    scale = tf.reduce_sum(kernel * codes, axis=axes, keepdims=True) / tf.reduce_sum(
        codes * codes, axis=axes, keepdims=True
    )
    return scale * codes


def project_latent(kernel: Any) -> Any:
    """Mean-centre each output channel and clip to [-1, 1]: the latent weights XNOR-Net trains."""
    tf = tensorflow()
    axes = list(range(len(kernel.shape) - 1))
    return tf.clip_by_value(kernel - tf.reduce_mean(kernel, axis=axes, keepdims=True), -1.0, 1.0)


@lru_cache(maxsize=1)
def _wrapper_class() -> type:
    """Defined on first use so importing this module does not import TensorFlow."""
    tf = tensorflow()
    k = keras()

    class LowBitWeights(k.layers.Wrapper):  # type: ignore[name-defined]  # tf-keras, imported lazily
        """Runs the wrapped layer with its kernel replaced by the straight-through coded kernel."""

        def __init__(self, layer: Any, bits: int, **kwargs: Any) -> None:
            super().__init__(layer, **kwargs)
            self.bits = int(bits)

        def build(self, input_shape: Any) -> None:
            if not self.layer.built:
                self.layer.build(input_shape)
            super().build(input_shape)

        def call(self, inputs: Any, training: Any = None) -> Any:
            kernel = self.layer.kernel
            if training:
                kernel.assign(project_latent(kernel))
            latent = project_latent(kernel)
            coded = latent + tf.stop_gradient(coded_kernel(latent, self.bits) - latent)
            # Swap the variable for the coded tensor only while the layer runs; bypass
            # Keras attribute tracking so the variable stays the layer's weight.
            object.__setattr__(self.layer, "kernel", coded)
            try:
                return self.layer.call(inputs)
            finally:
                object.__setattr__(self.layer, "kernel", kernel)

        def compute_output_shape(self, input_shape: Any) -> Any:
            return self.layer.compute_output_shape(input_shape)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "bits": self.bits}

    return LowBitWeights


def wrap_layers(model: Any, bits: dict[str, int]) -> Any:
    """Wrap the layers named in `bits` (name -> bits per weight) for straight-through training."""
    wrapper = _wrapper_class()
    return rebuild(model, selected(bits, lambda layer: wrapper(layer, bits[layer.name], name=f"lowbit_{layer.name}")))


def is_lowbit_wrapper(layer: Any) -> bool:
    return isinstance(layer, _wrapper_class())


def materialize(model: Any) -> Any:
    """Write a_c * Q_c into each wrapped layer's kernel and return the model without wrappers."""

    def unwrap(layer: Any) -> Any:
        if not is_lowbit_wrapper(layer):
            return layer
        inner = layer.layer
        inner.kernel.assign(coded_kernel(project_latent(inner.kernel), layer.bits))
        return inner

    return rebuild(model, unwrap)
