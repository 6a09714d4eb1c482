"""Starting ``hzbus`` sub-commands as child processes (the demo, tests and benchmarks run the
worker and the sink this way), tied to their parent's life."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import IO, Any

from hzbus.config import PROJECT_ROOT
from infra.procs import die_with_parent


def spawn_hzbus(
    *args: str,
    env: dict[str, str] | None = None,
    stdout: IO[Any] | int | None = subprocess.DEVNULL,
    stderr: IO[Any] | int | None = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """``python -m hzbus.cli ARGS`` with ``env`` added to this process's environment; the child
    is killed if this process dies (no orphan worker left in a consumer group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "hzbus.cli", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        stdout=stdout,
        stderr=stderr,
        preexec_fn=die_with_parent,
    )
