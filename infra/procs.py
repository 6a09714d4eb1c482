"""Process plumbing for ``hzbus infra``: progress lines, pid files, ports, locks, log tails.

Only processes recorded in our pid files *and* whose command line carries our markers
(e.g. the path of our own config file) are ever signalled.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path


def say(message: str, *, end: str = "\n") -> None:
    """A progress line on stderr (stdout stays for command output)."""
    print(message, end=end, file=sys.stderr, flush=True)


def read_pid(pidfile: Path) -> int | None:
    try:
        text = pidfile.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def write_pid(pidfile: Path, pid: int) -> None:
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    tmp = pidfile.with_suffix(".tmp")
    tmp.write_text(f"{pid}\n", encoding="ascii")
    tmp.replace(pidfile)


def cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie child of ours is reaped and counts as dead)."""
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    # state is the field after the parenthesised command name
    state = stat.rsplit(")", 1)[-1].split()[0:1]
    return state != ["Z"] and state != ["X"]


def our_pid(pidfile: Path, markers: Sequence[str]) -> int | None:
    """The pid in ``pidfile`` if that process is alive and its command line has every marker."""
    pid = read_pid(pidfile)
    if pid is None or not is_alive(pid):
        return None
    argv = cmdline(pid)
    if argv is None:
        return None
    joined = " ".join(argv)
    return pid if all(m in joined for m in markers) else None


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    """Something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_owner(port: int) -> str:
    """Best effort: who listens on ``port`` (from ``ss``), for error messages."""
    if shutil.which("ss") is None:
        return ""
    try:
        out = subprocess.run(
            ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return out


def spawn(argv: Sequence[str], *, cwd: Path, output: Path, pidfile: Path, tied: bool = False) -> int:
    """Start ``argv`` detached (own session), stdout+stderr appended to ``output``; record the pid.
    ``tied``: killed when this process dies (:func:`die_with_parent`), for throw-away services."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("ab") as out:
        out.write(f"\n--- started {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            preexec_fn=die_with_parent if tied else None,
        )
    # The child outlives us; keep Popen from warning about it at interpreter exit.
    proc.returncode = 0
    write_pid(pidfile, proc.pid)
    return proc.pid


def stop(pid: int, timeout: float) -> str:
    """SIGTERM, wait up to ``timeout`` s, then SIGKILL. Returns how it ended."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return "already gone"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return "stopped"
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if not is_alive(pid):
            break
        time.sleep(0.1)
    return f"killed (no exit {timeout:.0f} s after SIGTERM)"


def tail(path: Path, lines: int = 30) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive lock across processes (two ``hzbus infra up`` at once start things only once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def die_with_parent() -> None:
    """``preexec_fn`` for a child that must not outlive the process that started it (a worker
    started by the demo or a test): Linux sends it SIGKILL when the parent dies."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
