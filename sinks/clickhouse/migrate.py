"""Versioned DDL migrations, applied in order and recorded in ``schema_migrations``.

Files ``migrations/NNNN_name.sql`` hold one or more statements separated by ``;`` at the end
of a line; ``{db}`` stands for the target database. Every statement is idempotent
(``IF NOT EXISTS``), so two processes migrating at once do no harm. A recorded migration
whose file has since changed is an error: published DDL is never edited, a new file is added.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hzbus.errors import UserError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()[:16]

    def statements(self, database: str) -> list[str]:
        body = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip().format(db=database) for s in re.split(r";\s*$", body, flags=re.M) if s.strip()]


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ValueError(f"{path}: migration files are named NNNN_name.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"{directory}: two migrations share a version number")
    return found


def check_database_name(database: str) -> str:
    if not _DB_NAME.match(database):
        raise UserError(f"invalid ClickHouse database name {database!r}")
    return database


def migrate(client: Any, database: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Create ``database`` if needed and apply the migrations it lacks; return those applied."""
    check_database_name(database)
    client.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.execute(
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations "
        "(version UInt32, name String, checksum String, applied_at DateTime) "
        "ENGINE = ReplacingMergeTree() ORDER BY version"
    )
    applied = {
        int(v): (n, c)
        for v, n, c in client.execute(
            f"SELECT version, name, checksum FROM {database}.schema_migrations FINAL"
        )
    }
    done = []
    for migration in load_migrations(directory):
        if migration.version in applied:
            _name, checksum = applied[migration.version]
            if checksum != migration.checksum:
                raise UserError(
                    f"migration {migration.version:04d}_{migration.name} was applied to {database} with "
                    f"checksum {checksum} but the file now has {migration.checksum}: never edit an "
                    "applied migration, add a new one"
                )
            continue
        for statement in migration.statements(database):
            client.execute(statement)
        client.execute(
            f"INSERT INTO {database}.schema_migrations (version, name, checksum, applied_at) VALUES",
            [(migration.version, migration.name, migration.checksum, _now())],
        )
        done.append(migration)
    return done


def _now() -> Any:
    from datetime import datetime

    return datetime.now().replace(microsecond=0)
