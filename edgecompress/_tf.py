"""The one place TensorFlow is imported from.

tfmot 0.8 only understands tf-keras (Keras 2); TensorFlow 2.21 defaults to Keras 3. The
switch must be set before TensorFlow is first imported, so every module that needs
TensorFlow goes through here instead of importing it directly.
"""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ INFO/WARNING chatter
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")  # edge work is CPU work; skip cuInit noise


def tensorflow():  # noqa: ANN201 - returns the module
    """Import TensorFlow lazily: the CLI's --help and the profile commands must not pay 2 s for it."""
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


def keras():  # noqa: ANN201 - returns the module
    """tf-keras (Keras 2), the Keras that tfmot and the TFLite converter agree on."""
    tensorflow()
    import tf_keras

    return tf_keras
