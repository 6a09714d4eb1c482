"""The worker's RocksDB databases: which are written without RocksDB's write-ahead log.

The key states, the deadline index and the subject states are written without the log (their
changelogs hold every write; Faust restores from them what a killed worker's databases lost),
the delivery markers with it: a marker must outlive a kill that its changelog record may not.
A child process writes one key in the first partition's database of each table and is killed;
the parent then reads what the databases kept.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import rocksdict

from stream_processors.worker import TABLES, WITHOUT_WAL

CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from hzbus.calendar_source import load_calendar
    from hzbus.config import load_settings
    from stream_processors.worker import TABLES, build_app

    app = build_app(load_settings(), load_calendar(), prefix="walcheck", datadir=Path(sys.argv[1]))
    dbs = []  # kept open (a database closed when its object goes is flushed)
    for name in TABLES:
        store = app.tables[name].data
        dbs.append(store._open_for_partition(0))
        dbs[-1].put(b"k", name.encode())
        print(store.partition_path(0), flush=True)
    os._exit(9)  # killed: no close, no flush
    """
)


def test_only_the_delivery_markers_outlive_a_killed_worker_in_rocksdb(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 9, done.stderr
    paths = dict(zip(TABLES, done.stdout.split(), strict=True))
    kept = {}
    for name, path in paths.items():
        db = rocksdict.Rdict(path, options=rocksdict.Options(raw_mode=True))
        kept[name] = db.get(b"k")
        db.close()
    assert {"obligation-state", "wakeups", "subject-state"} == WITHOUT_WAL
    assert kept == {name: None if name in WITHOUT_WAL else name.encode() for name in TABLES}
