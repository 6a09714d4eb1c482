"""Versioned DDL migrations, applied in order and recorded in ``schema_migrations``.

Files ``migrations/NNNN_name.sql`` hold one or more statements separated by ``;`` at the end
of a line; ``{db}`` stands for the target database. Every statement is idempotent
(``IF NOT EXISTS``), so two processes migrating at once do no harm. A recorded migration
whose file has since changed is an error: published DDL is never edited, a new file is added.

With a cluster name (setting ``clickhouse_cluster``) the same files are applied in their cluster
form (``cluster_ddl``: replicated local tables and Distributed tables ``ON CLUSTER``), the
``schema_migrations`` table included; the checksums are those of the files, so one record
means the same thing in both shapes. docs/clickhouse-cluster.md.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hzbus.errors import UserError
from sinks.clickhouse.cluster_ddl import check_cluster_name, cluster_form

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


SCHEMA_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
    "(version UInt32, name String, checksum String, applied_at DateTime) "
    "ENGINE = ReplacingMergeTree() ORDER BY version"
)


def planned_statements(
    database: str, cluster: str = "", directory: Path = MIGRATIONS_DIR
) -> list[tuple[Migration | None, list[str]]]:
    """Every statement ``migrate`` may run, per migration (``None``: the database and the
    ``schema_migrations`` table), in the single-node or the cluster form. Nothing connects."""
    check_database_name(database)
    shape = (lambda statements: cluster_form(statements, cluster)) if cluster else (lambda s: s)
    if cluster:
        check_cluster_name(cluster)
    plan: list[tuple[Migration | None, list[str]]] = [
        (None, shape([f"CREATE DATABASE IF NOT EXISTS {database}", SCHEMA_MIGRATIONS.format(db=database)]))
    ]
    plan.extend((m, shape(m.statements(database))) for m in load_migrations(directory))
    return plan


def migrate(
    client: Any, database: str, directory: Path = MIGRATIONS_DIR, *, cluster: str = ""
) -> list[Migration]:
    """Create ``database`` if needed and apply the migrations it lacks; return those applied.
    ``cluster``: apply them ON CLUSTER in their replicated + Distributed form."""
    plan = planned_statements(database, cluster, directory)  # a statement without cluster form fails here
    _check_shape(client, database, cluster)
    for statement in plan[0][1]:
        client.execute(statement)
    applied = {
        int(v): (n, c)
        for v, n, c in client.execute(
            f"SELECT version, name, checksum FROM {database}.schema_migrations FINAL"
        )
    }
    # through a Distributed table, an insert returns once every shard has its rows
    insert_settings = {"settings": {"insert_distributed_sync": 1}} if cluster else {}
    done = []
    for migration, statements in plan[1:]:
        assert migration is not None
        if migration.version in applied:
            _name, checksum = applied[migration.version]
            if checksum != migration.checksum:
                raise UserError(
                    f"migration {migration.version:04d}_{migration.name} was applied to {database} with "
                    f"checksum {checksum} but the file now has {migration.checksum}: never edit an "
                    "applied migration, add a new one"
                )
            continue
        for statement in statements:
            client.execute(statement)
        client.execute(
            f"INSERT INTO {database}.schema_migrations (version, name, checksum, applied_at) VALUES",
            [(migration.version, migration.name, migration.checksum, _now())],
            **insert_settings,
        )
        done.append(migration)
    return done


def _check_shape(client: Any, database: str, cluster: str) -> None:
    """A database migrated for one server is not silently half-converted to a cluster, nor the
    other way round: its ``schema_migrations`` says which shape it has."""
    rows = client.execute(
        f"SELECT engine FROM system.tables WHERE database = '{database}' AND name = 'schema_migrations'"
    )
    if not rows:
        return
    distributed = rows[0][0] == "Distributed"
    if cluster and not distributed:
        raise UserError(
            f"ClickHouse database {database} was created for a single server (its tables are not "
            f"replicated); HZBUS_CLICKHOUSE_CLUSTER={cluster} needs a new database: copy the data "
            "over as docs/clickhouse-cluster.md shows, or use another HZBUS_CLICKHOUSE_DATABASE"
        )
    if not cluster and distributed:
        raise UserError(
            f"ClickHouse database {database} is a cluster database (Distributed tables); set "
            "HZBUS_CLICKHOUSE_CLUSTER to its cluster name"
        )


def _now() -> Any:
    from datetime import datetime

    return datetime.now().replace(microsecond=0)


def main(argv: list[str] | None = None) -> int:
    """``python -m sinks.clickhouse.migrate``: print the DDL the sink would apply, for review or
    to run by hand (nothing connects); the settings give the database and cluster by default."""
    import argparse
    import sys

    from hzbus.config import load_settings

    parser = argparse.ArgumentParser(prog="python -m sinks.clickhouse.migrate", description=main.__doc__)
    parser.add_argument("--database", help="default: HZBUS_CLICKHOUSE_DATABASE")
    parser.add_argument("--cluster", help="default: HZBUS_CLICKHOUSE_CLUSTER ('' = one server)")
    args = parser.parse_args(argv)
    settings = load_settings()
    database = args.database or settings.clickhouse_database
    cluster = settings.clickhouse_cluster if args.cluster is None else args.cluster
    try:
        plan = planned_statements(database, cluster)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = []
    for migration, statements in plan:
        if migration is None:
            out.append("-- the database and schema_migrations\n")
        else:
            out.append(f"-- {migration.version:04d}_{migration.name} (checksum {migration.checksum})\n")
        out.extend(f"{statement};\n\n" for statement in statements)
    try:
        sys.stdout.write("".join(out))
        sys.stdout.flush()
    except BrokenPipeError:  # | head
        sys.stderr.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
