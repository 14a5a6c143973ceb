"""Import TensorFlow without its start-up log lines.

TensorFlow's C++ runtime prints INFO lines when it loads (oneDNN is on, no CUDA driver found, CPU
instructions it was not built for), and on a machine without a CUDA driver an ``E``-level
"failed call to cuInit" when it first lists devices. They are written before absl logging is
set up, so ``TF_CPP_MIN_LOG_LEVEL`` does not silence them, and for a command-line user they read
as errors. :func:`import_tensorflow` captures the process's stderr (file descriptor 2) while
TensorFlow loads and lists its devices, then writes back every line except those.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

# absl's INFO lines ("I0000 00:00:1795813277.567674   18977 port.cc:153] ..."), its banner saying
# that messages before InitializeLog go to stderr, and the second line of cpu_feature_guard's note.
_INFO = re.compile(r"^I\d{4} \d\d:\d\d:[\d.]+\s+\d+ \S+:\d+\] ")
_NOISE = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
          "To enable the following instructions:")
_NO_DRIVER = "Could not find cuda drivers on your machine"
_CUINIT = re.compile(r"^E\d{4} .*\] failed call to cuInit")


def filter_startup_lines(text: str) -> str:
    """``text`` without TensorFlow's start-up INFO lines; a cuInit failure is dropped only when
    TensorFlow also said there is no CUDA driver (then it is expected, not news)."""
    no_driver = _NO_DRIVER in text
    kept = [line for line in text.splitlines(keepends=True)
            if not (_INFO.match(line) or line.startswith(_NOISE) or (no_driver and _CUINIT.match(line)))]
    return "".join(kept)


@contextlib.contextmanager
def _stderr_filtered():
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, AttributeError, ValueError):  # no usable file descriptor 2: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = filter_startup_lines(captured.read().decode("utf-8", errors="replace"))
            if text:
                sys.stderr.write(text)
                sys.stderr.flush()


def import_tensorflow():
    """Import TensorFlow (and list its devices) with the start-up log lines filtered out of stderr;
    the module. Once imported, a plain import."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # later C++ INFO and WARNING lines
    with _stderr_filtered():
        import tensorflow as tf

        tf.config.list_physical_devices()
    return tf
