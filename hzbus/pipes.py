"""Standard output that a reader stopped reading (``hzbus … | head``)."""

from __future__ import annotations

import io
import os
import sys


def silence_stdout() -> None:
    """Point stdout at /dev/null after a ``BrokenPipeError``: what is still buffered for the
    closed pipe goes nowhere, and Python's own flush at exit does not raise again (the recipe
    of the Python documentation, "Note on SIGPIPE")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # no file descriptor (a test's stdout)
        pass
