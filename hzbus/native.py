"""Compiled hot paths: a few typed, pure modules compiled to C extensions with mypyc.

The sink's per-message loop (decode, admit, build the row) is plain typed Python; mypyc (part
of the pinned mypy) compiles these modules to C extensions next to their sources, which Python
then imports instead of the ``.py`` (docs/performance.md, "Compiled hot paths"). One source:
compiled or not, the same code runs and gives the same results; tests run on what is built.

``python -m hzbus.native build`` compiles them when their sources (or mypy, or Python) changed
since the last build, in seconds when nothing did; ``scripts/bootstrap.sh`` runs it.
``python -m hzbus.native status`` says which modules are compiled and whether they are current.
``python -m hzbus.native clean`` removes the extensions (plain Python again).

A stale extension (its source edited since the build) would run old code: importing the
package of a compiled module then fails with what to do (:func:`guard`), :func:`status`
reports it, and ``build`` replaces it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.machinery
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the compiled modules, as paths of their sources under ROOT
MODULES = (
    "schemas/avro_fast.py",
    "schemas/canonical_fast.py",
    "schemas/admission.py",
    "sinks/clickhouse/rows.py",
    "sinks/clickhouse/take.py",
    "domain/calendar.py",
    "domain/obligations/engine.py",
    "domain/obligations/state.py",
    "domain/obligations/keys.py",
    "domain/obligations/lines.py",
    "domain/obligations/rules/_common.py",
    "domain/obligations/rules/cases.py",
    "domain/obligations/rules/complaints.py",
    "domain/obligations/rules/determinations.py",
    "domain/obligations/rules/meetings.py",
    "domain/obligations/rules/sharing.py",
    "stream_processors/partitioning.py",
)
BUILD_DIR = ROOT / "build" / "native"
STAMP = BUILD_DIR / "stamp"
LOG = BUILD_DIR / "build.log"
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]  # e.g. .cpython-311-x86_64-linux-gnu.so


@dataclass(frozen=True)
class Status:
    compiled: tuple[str, ...]  # modules whose extension is present
    current: bool  # every module compiled, from the sources as they are now
    reason: str  # why not current ("" when it is)


def sources_digest() -> str:
    h = hashlib.sha256()
    for module in MODULES:
        h.update(module.encode() + b"\0" + (ROOT / module).read_bytes() + b"\0")
    return h.hexdigest()


def digest() -> str:
    """What a build depends on: the sources, mypy's version, the Python build."""
    from importlib.metadata import version

    tools = f"{version('mypy')} {version('setuptools')} {sys.version} {platform.machine()} {SUFFIX}"
    return hashlib.sha256(tools.encode() + sources_digest().encode()).hexdigest()


def _stamp() -> list[str]:
    return STAMP.read_text().split() if STAMP.exists() else []


def guard() -> None:
    """Refuse to import an extension built from other sources than those beside it (run by
    the packages of the compiled modules): it would run old code, silently."""
    if not any(extension_of(m).exists() for m in MODULES):
        return
    stamp = _stamp()
    if stamp[1:2] != [sources_digest()]:
        raise ImportError(
            "hzbus: the compiled hot paths were built from other sources than those in the tree "
            f"({', '.join(MODULES)}). Rebuild them with `.venv/bin/python -m hzbus.native build` "
            "(scripts/bootstrap.sh does it), or remove them with `.venv/bin/python -m hzbus.native clean`."
        )


def extension_of(module: str) -> Path:
    return ROOT / (module.removesuffix(".py") + SUFFIX)


#: mypyc's library of the compiled modules' code (each module's own extension is a shim that
#: imports it): in the hzbus package, so that the editable install finds it from anywhere
GROUP = "hzbus.native_group"
_SETUP = f"""
import sys
from mypyc.build import mypycify
from setuptools import setup
setup(
    name="hzbus-native",
    ext_modules=mypycify(sys.argv[1:], group_name={GROUP!r}, opt_level="3"),
    script_args=["build_ext", "--inplace", "--build-temp", {str(BUILD_DIR / "temp")!r}],
)
"""


def _shared_libraries() -> list[Path]:
    return sorted(ROOT.glob(GROUP.replace(".", "/") + f"__mypyc*{SUFFIX}"))


def status() -> Status:
    compiled = tuple(m for m in MODULES if extension_of(m).exists())
    if not compiled:
        return Status(compiled, False, "not built (run `python -m hzbus.native build`)")
    if len(compiled) < len(MODULES):
        missing = ", ".join(sorted(set(MODULES) - set(compiled)))
        return Status(compiled, False, f"incomplete build: {missing} not compiled")
    if _stamp()[:1] != [digest()]:
        return Status(compiled, False, "stale: sources changed since the build (run `hzbus.native build`)")
    return Status(compiled, True, "")


def describe() -> str:
    """What runs the hot paths, for a process's start-up log line."""
    s = status()
    return "compiled (mypyc)" if s.current else f"plain Python ({s.reason})"


def clean() -> None:
    for module in MODULES:
        extension_of(module).unlink(missing_ok=True)
    for lib in _shared_libraries():
        lib.unlink()
    STAMP.unlink(missing_ok=True)


def build(force: bool = False) -> int:
    """Compile the modules unless they are current. 0 when built (or current), 1 on failure
    (the old extensions are removed: plain Python runs, and the log says why)."""
    want = digest()
    if not force and status().current:
        print("hzbus native: compiled hot paths are current", file=sys.stderr)
        return 0
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    clean()
    if shutil.which(os.environ.get("CC", "gcc")) is None and shutil.which("cc") is None:
        print("hzbus native: no C compiler (gcc); the hot paths run as plain Python", file=sys.stderr)
        return 1
    print(f"hzbus native: compiling {len(MODULES)} hot-path modules with mypyc…", file=sys.stderr)
    started = time.monotonic()
    with LOG.open("w") as log:
        command = [sys.executable, "-c", _SETUP, *MODULES]
        done = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False)
    missing = [m for m in MODULES if not extension_of(m).exists()]
    if done.returncode != 0 or missing:
        tail = LOG.read_text(errors="replace").splitlines()[-15:]
        print("\n".join(tail), file=sys.stderr)
        print(f"hzbus native: mypyc failed (log: {LOG}); the hot paths run as plain Python", file=sys.stderr)
        clean()
        return 1
    STAMP.write_text(f"{want}\n{sources_digest()}\n")
    print(f"hzbus native: built in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hzbus.native", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("build", "status", "clean"))
    parser.add_argument("--force", action="store_true", help="build even when current")
    args = parser.parse_args(argv)
    if args.command == "build":
        return build(force=args.force)
    if args.command == "clean":
        clean()
        return 0
    s = status()
    print(f"{'current' if s.current else s.reason}; compiled: {', '.join(s.compiled) or 'none'}")
    return 0 if s.current else 1


if __name__ == "__main__":
    sys.exit(main())
