"""The one place TensorFlow is imported from.

tfmot 0.8 only understands tf-keras (Keras 2); TensorFlow 2.21 defaults to Keras 3. The
switch must be set before TensorFlow is first imported, so every module that needs
TensorFlow goes through here instead of importing it directly.

Importing edgecompress changes nothing in os.environ, and hides no GPU (`--device` chooses
where fine-tuning runs). The switch (TF_USE_LEGACY_KERAS=1, and TF_CPP_MIN_LOG_LEVEL=3 when
the caller has not set it) is in the environment only while TensorFlow, its lazy `keras`
modules and tfmot are first imported, here; the caller's values are put back afterwards,
so the programs a caller starts later see the environment it set.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

#: what TensorFlow, its lazy `tf.keras` and tfmot read from the environment when first imported
_IMPORT_ENVIRONMENT = {"TF_USE_LEGACY_KERAS": "1"}
#: the same, only where the caller has not set it: TF's C++ notices (oneDNN, ...) bury our messages
_IMPORT_DEFAULTS = {"TF_CPP_MIN_LOG_LEVEL": "3"}


def tensorflow():  # noqa: ANN201 - returns the module
    """Import TensorFlow lazily: the CLI's --help and the profile commands must not pay 2 s for it.

    TensorFlow's C++ runtime prints CUDA/oneDNN notices to stderr before any log level can
    take effect; they would bury edgecompress's own messages, so the first import runs with
    stderr silenced (EDGECOMPRESS_DEBUG=1 shows them).
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with _silence_fds(), _import_environment():
        import tensorflow as tf
        import tf_keras  # noqa: F401 - imports TF's remaining native modules while quiet

        for keras_module in (tf.keras, tf.compat.v1.keras, tf.compat.v2.keras):
            keras_module.layers  # noqa: B018 - each lazy loader picks its Keras on first use: tf-keras, now
        tf.config.list_physical_devices("GPU")  # device discovery (cuInit) prints here, not later

    tf.get_logger().setLevel("ERROR")
    return tf


def tfmot():  # noqa: ANN201 - returns the module
    """tensorflow-model-optimization, imported once like TensorFlow (it sets TF_USE_LEGACY_KERAS on import)."""
    tensorflow()
    if "tensorflow_model_optimization" not in sys.modules:
        with _silence_fds(), _import_environment():
            import tensorflow_model_optimization  # noqa: F401
    return sys.modules["tensorflow_model_optimization"]


@contextlib.contextmanager
def _import_environment() -> Iterator[None]:
    """The environment TensorFlow needs while it is imported; the caller's own afterwards."""
    names = (*_IMPORT_ENVIRONMENT, *_IMPORT_DEFAULTS)
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(_IMPORT_ENVIRONMENT)
    for name, value in _IMPORT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    try:
        yield
    finally:
        for name, before in saved.items():
            if before is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = before


#: fd -> a copy of the real fd, while that fd is silenced; our own messages still go there
_SILENCED: dict[int, int] = {}


class TerminalStream:
    """A text stream for edgecompress's own messages that stays audible while TensorFlow is silenced.

    Writes go to sys.stderr / sys.stdout as usual (so pytest's capture sees them), except while
    `quiet_native_output` has pointed the fd at /dev/null: then to the saved real fd.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def _stream(self):  # noqa: ANN202
        return real_stream(sys.stderr if self.fd == 2 else sys.stdout, self.fd)

    def write(self, text: str) -> int:
        saved = _SILENCED.get(self.fd)
        stream = self._stream()
        # Only when the stream really is the silenced fd: under pytest's capture it is not.
        if saved is not None and _has_fileno(stream) and stream.fileno() == self.fd:
            stream.flush()
            os.write(saved, text.encode("utf-8", "replace"))
            return len(text)
        return stream.write(text)

    def flush(self) -> None:
        self._stream().flush()

    def isatty(self) -> bool:
        return self._stream().isatty()

    def fileno(self) -> int:
        return self._stream().fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream(), "encoding", "utf-8")


def real_stream(stream: object, fd: int):  # noqa: ANN201 - a text stream
    """The stream under any proxy that prints through a console, never None.

    While a rich live display (a progress bar) runs on a terminal it replaces sys.stdout and
    sys.stderr with proxies that print through *its* console. The console's own file is a
    TerminalStream: were it to write to the proxy, the proxy would print through the console,
    which writes to the proxy again, for ever (a deploy typed into a terminal hung at its first
    progress bar). So the console always writes below the proxy. A closed stream (`2>&-`, where
    Python sets sys.stderr to None) becomes /dev/null: output is lost, the run is not.
    """
    while hasattr(stream, "rich_proxied_file"):
        stream = stream.rich_proxied_file
    if stream is None:
        return _devnull()
    return stream


_DEVNULL: list[object] = []


def _devnull():  # noqa: ANN202
    if not _DEVNULL:
        _DEVNULL.append(open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - lives as long as the process
    return _DEVNULL[0]


def _has_fileno(stream: object) -> bool:
    try:
        stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False
    return True


@contextlib.contextmanager
def quiet_native_output(fds: tuple[int, ...] = (2,)) -> Iterator[None]:
    """Silence what TensorFlow's C++ side prints and its Python warnings, unless debugging.

    Conversion also prints to stdout (fd 1): pass fds=(1, 2) there. Training keeps fd 1 so
    Keras' progress bar shows.
    """
    import warnings

    with _silence_fds(fds), warnings.catch_warnings():
        if not os.environ.get("EDGECOMPRESS_DEBUG"):
            warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _silence_fds(fds: tuple[int, ...] = (2,)) -> Iterator[None]:
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
        for fd, copy in zip(fds, saved):
            os.dup2(devnull, fd)
            _SILENCED[fd] = copy
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip(fds, saved):
            _SILENCED.pop(fd, None)
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def limit_threads(cpus: int) -> dict[str, int | bool]:
    """Use `cpus` threads for TensorFlow's kernels and OpenMP: a Ray worker given 1 CPU must not
    spread over every core (2 trials on 2 cores would otherwise fight over 4+ threads each).

    Effective only before TensorFlow is imported (its thread pools are made once); returns what
    was set and whether it took effect.
    """
    cpus = max(1, int(cpus))
    settings = {"TF_NUM_INTRAOP_THREADS": cpus, "TF_NUM_INTEROP_THREADS": 1, "OMP_NUM_THREADS": cpus}
    wanted = {name: str(value) for name, value in settings.items()}
    effective = "tensorflow" not in sys.modules or all(os.environ.get(k) == v for k, v in wanted.items())
    if "tensorflow" not in sys.modules:
        os.environ.update(wanted)
    return {"intra_op": cpus, "inter_op": 1, "omp": cpus, "effective": effective}


def keras():  # noqa: ANN201 - returns the module
    """tf-keras (Keras 2), the Keras that tfmot and the TFLite converter agree on."""
    tensorflow()
    import tf_keras

    return tf_keras
