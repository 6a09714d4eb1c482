"""Crash points for the fault tests: ``HZBUS_FAILPOINT=<point>:<n>`` makes the process SIGKILL
itself the n-th time it reaches ``point`` (e.g. ``sink.written:3``: the third batch is in
ClickHouse, its offsets are not committed). Unset, as in every real run, ``reached`` is a
no-op. The points are named where they are called; docs/reliability.md lists them."""

from __future__ import annotations

import os
import signal

ENV_VAR = "HZBUS_FAILPOINT"


def parse(spec: str) -> tuple[str, int]:
    point, _, count = spec.strip().rpartition(":")
    if not point or not count.isdigit() or int(count) < 1:
        raise ValueError(f"{ENV_VAR}={spec!r}: expected <point>:<n>, e.g. sink.written:3")
    return point, int(count)


_point, _left = parse(os.environ[ENV_VAR]) if os.environ.get(ENV_VAR) else (None, 0)


def reached(point: str) -> None:
    """Count a pass through ``point``; SIGKILL this process on the armed pass."""
    global _left
    if point != _point:
        return
    _left -= 1
    if _left <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
