"""The one place TensorFlow is imported from.

tfmot 0.8 only understands tf-keras (Keras 2); TensorFlow 2.21 defaults to Keras 3. The
switch must be set before TensorFlow is first imported, so every module that needs
TensorFlow goes through here instead of importing it directly.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ notices (oneDNN, graph versions) bury our messages
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")  # edge work is CPU work; skip cuInit noise


def tensorflow():  # noqa: ANN201 - returns the module
    """Import TensorFlow lazily: the CLI's --help and the profile commands must not pay 2 s for it.

    TensorFlow's C++ runtime prints CUDA/oneDNN notices to stderr before any log level can
    take effect; they would bury edgecompress's own messages, so the first import runs with
    stderr silenced (EDGECOMPRESS_DEBUG=1 shows them).
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with _quiet_stderr():
        import tensorflow as tf
        import tf_keras  # noqa: F401 - imports TF's remaining native modules while quiet

        tf.config.list_physical_devices("GPU")  # device discovery (cuInit) prints here, not later

    tf.get_logger().setLevel("ERROR")
    return tf


@contextlib.contextmanager
def quiet_native_output() -> Iterator[None]:
    """Silence what TensorFlow's C++ side prints (fd 2) and its Python warnings, unless debugging."""
    import warnings

    with _quiet_stderr((1, 2)), warnings.catch_warnings():
        if not os.environ.get("EDGECOMPRESS_DEBUG"):
            warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _quiet_stderr(fds: tuple[int, ...] = (2,)) -> Iterator[None]:
    if os.environ.get("EDGECOMPRESS_DEBUG"):
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = [os.dup(fd) for fd in fds]
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in fds:
            os.dup2(devnull, fd)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip(fds, saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def keras():  # noqa: ANN201 - returns the module
    """tf-keras (Keras 2), the Keras that tfmot and the TFLite converter agree on."""
    tensorflow()
    import tf_keras

    return tf_keras
