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
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

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

    def _silenced_copy(self, stream: object) -> int | None:
        """The saved real fd while this stream's fd is silenced (only when the stream really is that
        fd: under pytest's capture it is not)."""
        saved = _SILENCED.get(self.fd)
        if saved is not None and _has_fileno(stream) and stream.fileno() == self.fd:  # type: ignore[attr-defined]
            return saved
        return None

    def write(self, text: str) -> int:
        stream = self._stream()
        saved = self._silenced_copy(stream)
        if saved is None:
            return stream.write(text)
        stream.flush()
        data = text.encode("utf-8", "replace")
        while data:
            data = data[os.write(saved, data) :]
        return len(text)

    def flush(self) -> None:
        self._stream().flush()

    def isatty(self) -> bool:
        """Whether the real stream is a terminal, also while its fd points at a capture file."""
        stream = self._stream()
        saved = self._silenced_copy(stream)
        return os.isatty(saved) if saved is not None else stream.isatty()

    def fileno(self) -> int:
        stream = self._stream()
        saved = self._silenced_copy(stream)
        return saved if saved is not None else stream.fileno()

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
    """Keep what TensorFlow's C++ side prints, and Python warnings, off the terminal unless debugging.

    Both are logged instead (logger `edgecompress.libraries`, INFO), so a run's deploy.log keeps
    them. Conversion also prints to stdout (fd 1): pass fds=(1, 2) there.
    """
    import warnings

    with _silence_fds(fds), warnings.catch_warnings():
        if not os.environ.get("EDGECOMPRESS_DEBUG"):
            warnings.showwarning = _log_warning
        yield


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001 - warnings' signature
    import logging

    logging.getLogger("edgecompress.libraries").info(
        "%s: %s (%s:%s)", getattr(category, "__name__", category), message, filename, lineno
    )


#: guards the redirections: steps in several threads may silence at once
_LOCK = threading.Lock()
#: fd -> (how many blocks silence it now, its capture file)
_HELD: dict[int, tuple[int, Any]] = {}


@contextlib.contextmanager
def _silence_fds(fds: tuple[int, ...] = (2,)) -> Iterator[None]:
    """Point `fds` at a temporary file while the block runs, then log what landed there.

    Re-entrant and shared between threads: the first block to silence an fd redirects it, the
    last one to leave restores it; edgecompress's own console keeps writing to the real fd
    (TerminalStream)."""
    if os.environ.get("EDGECOMPRESS_DEBUG"):
        yield
        return
    with _LOCK:
        held = [fd for fd in fds if _hold(fd)]
    try:
        yield
    finally:
        with _LOCK:
            for fd in held:
                _release(fd)


def _hold(fd: int) -> bool:
    """One more block silences `fd`; False when it cannot be (a closed fd: nothing to silence)."""
    if fd in _HELD:
        depth, capture = _HELD[fd]
        _HELD[fd] = (depth + 1, capture)
        return True
    try:
        copy = os.dup(fd)
    except OSError:  # closed (2>&-)
        return False
    _flush_all()
    capture = tempfile.TemporaryFile()  # noqa: SIM115 - closed in _release
    os.dup2(capture.fileno(), fd)
    _SILENCED[fd] = copy
    _HELD[fd] = (1, capture)
    return True


def _release(fd: int) -> None:
    depth, capture = _HELD[fd]
    if depth > 1:
        _HELD[fd] = (depth - 1, capture)
        return
    del _HELD[fd]
    _flush_all()
    copy = _SILENCED.pop(fd)
    os.dup2(copy, fd)
    os.close(copy)
    capture.seek(0)
    text = capture.read().decode("utf-8", "replace")
    capture.close()
    _log_native(fd, text)


def _flush_all() -> None:
    """Python's and C's stdio buffers, so nothing printed before a redirection lands after it."""
    import ctypes

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).fflush(None)


def _log_native(fd: int, text: str) -> None:
    """What a library printed while silenced, into the log (a run's deploy.log), never the terminal."""
    import logging

    lines = [line.rstrip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    if lines:
        logger = logging.getLogger("edgecompress.libraries")
        name = "stdout" if fd == 1 else "stderr"
        for line in lines[:_MAX_LOGGED_LINES]:
            logger.info("[%s] %s", name, line)
        if len(lines) > _MAX_LOGGED_LINES:
            logger.info("[%s] ... %d more lines", name, len(lines) - _MAX_LOGGED_LINES)


#: a converter can print thousands of MLIR lines; the log keeps the first ones
_MAX_LOGGED_LINES = 200


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
