"""Java runtimes from Maven Central: ``mvn dependency:copy-dependencies`` of a pinned POM.

Used for the Kafka broker (``infra/kafka/pom.xml``) and ZooKeeper (``infra/zookeeper/pom.xml``).
The jars land in ``libs/`` with a stamp file holding the POM's SHA-256: change the POM and the
next fetch downloads again; otherwise nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from hzbus.errors import UserError
from infra import procs

#: pinned: unpinned, Maven 3.8.7 falls back to maven-dependency-plugin 2.8
COPY_DEPENDENCIES = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"
STAMP = ".pom.sha256"


def pom_property(pom: Path, name: str) -> str:
    """A ``<properties>`` value of ``pom`` (e.g. the pinned version), or ``?``."""
    match = re.search(rf"<{re.escape(name)}>([^<]+)</{re.escape(name)}>", pom.read_text(encoding="utf-8"))
    return match.group(1) if match else "?"


def _pom_hash(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def jars_ready(pom: Path, libs: Path, marker: str) -> bool:
    """``libs`` holds the jars of this very POM (stamp matches, ``marker`` glob present)."""
    try:
        stamp = (libs / STAMP).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return False
    return stamp == _pom_hash(pom) and any(libs.glob(marker))


def fetch(pom: Path, libs: Path, *, marker: str, what: str, hint: str) -> None:
    """The runtime jars of ``pom`` into ``libs`` (skipped when present for this POM).

    ``marker`` is a glob that must match after a successful fetch (``kafka_2.13-*.jar``),
    ``what`` names the download in progress lines, ``hint`` ends the error message."""
    if jars_ready(pom, libs, marker):
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise UserError(f"Maven (mvn) is not installed; it fetches {what}: apt-get install -y maven")
    if shutil.which("java") is None:
        raise UserError(
            f"java is not installed; {what} needs a JRE 17+: apt-get install -y openjdk-17-jre-headless"
        )
    libs.parent.mkdir(parents=True, exist_ok=True)
    procs.say(f"fetching {what} jars from Maven Central… ", end="")
    started = time.monotonic()
    tmp = tempfile.mkdtemp(dir=libs.parent, prefix=".libs-")
    try:
        cmd = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(pom),
            COPY_DEPENDENCIES,
            "-DincludeScope=runtime",
            f"-DoutputDirectory={tmp}",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not any(Path(tmp).glob(marker)):
            procs.say("failed")
            output = (result.stdout + result.stderr).splitlines()
            boiler = ("To see the full stack", "Re-run Maven", "For more information", "[Help 1] http")
            errors = [
                ln
                for ln in (_strip_ansi(x) for x in output)
                if "ERROR" in ln and ln.replace("[ERROR]", "").strip() and not any(b in ln for b in boiler)
            ] or output
            quoted = "\n".join("  " + _strip_ansi(ln) for ln in errors[:15])
            raise UserError(
                f"could not fetch the {what} jars from Maven Central "
                f"(mvn exit {result.returncode}); Maven said:\n{quoted}\n"
                "Check network access to repo.maven.apache.org (or a mirror in ~/.m2/settings.xml), "
                f"{hint}"
            )
        Path(tmp, STAMP).write_text(_pom_hash(pom) + "\n", encoding="ascii")
        if libs.exists():
            shutil.rmtree(libs)
        Path(tmp).chmod(0o755)
        Path(tmp).rename(libs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    count = len(list(libs.glob("*.jar")))
    procs.say(f"ok ({count} jars, {time.monotonic() - started:.1f} s)")


def _strip_ansi(line: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", line)
