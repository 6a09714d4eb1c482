"""The cluster form of the single-node DDL: one source of DDL, two shapes.

With ``clickhouse_cluster`` set (docs/clickhouse-cluster.md), every statement of the migrations
(and the ``schema_migrations`` table) is rewritten here instead of being run as it is:

``CREATE DATABASE IF NOT EXISTS db``
    gains ``ON CLUSTER c``.
``CREATE TABLE IF NOT EXISTS db.t (cols) ENGINE = XMergeTree(args) PARTITION BY … ORDER BY k``
    becomes two statements, both ``ON CLUSTER c``:

    * ``db.t_local``: the same columns and clauses on ``ReplicatedXMergeTree(
      '/clickhouse/tables/{shard}/db/t_local', '{replica}', args)`` (the ``{shard}`` and
      ``{replica}`` macros come from each server's ``<macros>``);
    * ``db.t``: ``Distributed(c, db, t_local, cityHash64(k))`` with the same columns, under the
      name the sink and the analysts use.

    The sharding key is the hash of the table's sorting key: ReplacingMergeTree collapses rows
    whose sorting key is equal, and only on one server, so every version of a row (an event
    re-delivered, an obligation open → missed → late) must land on the same shard. Hashing the
    whole ``ORDER BY`` guarantees that for every table, whatever its key.
``CREATE VIEW IF NOT EXISTS db.v AS SELECT …``
    gains ``ON CLUSTER c``: a view on every server, reading the Distributed tables, so each
    server answers for the whole cluster. ``FINAL`` is sent on to each shard's local table.

Anything else (a materialized view, an ALTER, a non-MergeTree engine) raises
``ClusterDDLError``: such a migration needs its cluster form thought through (an MV must read
``*_local`` on every shard), not guessed.
"""

from __future__ import annotations

import re

from hzbus.errors import UserError

#: suffix of the replicated table behind each Distributed table
LOCAL_SUFFIX = "_local"
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME = re.compile(rf"^{_IDENT}$")
_CREATE_DATABASE = re.compile(rf"^CREATE\s+DATABASE\s+(IF\s+NOT\s+EXISTS\s+)?({_IDENT})\s*$", re.I)
_CREATE_TABLE = re.compile(rf"^CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?({_IDENT})\.({_IDENT})\s*\(", re.I)
_CREATE_VIEW = re.compile(rf"^CREATE\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?({_IDENT})\.({_IDENT})\s+AS\s", re.I)
_ENGINE = re.compile(r"^\s*ENGINE\s*=\s*(\w*)MergeTree\s*", re.I)
_ORDER_BY = re.compile(
    r"\bORDER\s+BY\s+(.+?)(?=\s+(?:PRIMARY\s+KEY|SAMPLE\s+BY|TTL|SETTINGS)\b|\s*$)", re.I | re.S
)
#: MergeTree family members that have a Replicated twin (ReplicatedGraphiteMergeTree too)
_FAMILY = {"", "Replacing", "Summing", "Aggregating", "Collapsing", "VersionedCollapsing", "Graphite"}


class ClusterDDLError(UserError):
    """A statement the cluster transformation does not know how to rewrite."""


def check_cluster_name(cluster: str) -> str:
    if not _NAME.match(cluster):
        raise UserError(
            f"invalid ClickHouse cluster name {cluster!r} (HZBUS_CLICKHOUSE_CLUSTER): a name of "
            "<remote_servers> in the servers' configuration, letters, digits and _"
        )
    return cluster


def zookeeper_path(database: str, table: str) -> str:
    """Where the replicas of one shard of ``database.table`` meet in ZooKeeper."""
    return f"/clickhouse/tables/{{shard}}/{database}/{table}"


def _closing(text: str, opening: int) -> int:
    """Index of the parenthesis closing the one at ``opening`` (quotes respected)."""
    depth, quote, i = 0, "", opening
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError("unbalanced parentheses")


def _split_top_level(text: str) -> list[str]:
    """``a, f(b, c), d`` → ``['a', 'f(b, c)', 'd']``."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def sharding_key(order_by: str) -> str:
    """``cityHash64`` of the sorting key's expressions (``rand()`` for ``tuple()``)."""
    key = order_by.strip()
    if key.startswith("(") and _closing(key, 0) == len(key) - 1:
        key = key[1:-1]
    parts = _split_top_level(key)
    if not parts or parts == ["tuple()"]:
        return "rand()"
    return f"cityHash64({', '.join(parts)})"


def _where(statement: str) -> str:
    first = " ".join(statement.split())
    return first if len(first) <= 90 else first[:87] + "..."


def cluster_statements(statement: str, cluster: str) -> list[str]:
    """The statements that replace one single-node ``statement`` on ``cluster``."""
    check_cluster_name(cluster)
    text = statement.strip().rstrip(";").strip()
    on = f"ON CLUSTER {cluster}"

    m = _CREATE_DATABASE.match(text)
    if m:
        return [f"CREATE DATABASE {m.group(1) or ''}{m.group(2)} {on}"]

    m = _CREATE_VIEW.match(text)
    if m:
        return [f"{text[: m.end(3)]} {on}{text[m.end(3) :]}"]  # the SELECT verbatim

    m = _CREATE_TABLE.match(text)
    if not m:
        raise ClusterDDLError(
            f"no cluster form for this statement (only CREATE DATABASE / TABLE … MergeTree / VIEW "
            f"are rewritten; see docs/clickhouse-cluster.md): {_where(text)}"
        )
    if_not_exists, db, table = m.group(1) or "", m.group(2), m.group(3)
    if table.endswith(LOCAL_SUFFIX):
        raise ClusterDDLError(
            f"{db}.{table}: table names ending in {LOCAL_SUFFIX} are reserved for the cluster form"
        )
    open_paren = m.end() - 1
    close_paren = _closing(text, open_paren)
    columns = text[open_paren : close_paren + 1]
    rest = text[close_paren + 1 :]
    e = _ENGINE.match(rest)
    if not e or e.group(1) not in _FAMILY:
        raise ClusterDDLError(
            f"{db}.{table}: only MergeTree-family tables have a replicated cluster form: {_where(text)}"
        )
    after_engine = rest[e.end() :]
    args = ""
    if after_engine.startswith("("):
        end_args = _closing(after_engine, 0)
        args = after_engine[1:end_args].strip()
        after_engine = after_engine[end_args + 1 :]
    clauses = after_engine.strip()
    o = _ORDER_BY.search(clauses)
    if not o:
        raise ClusterDDLError(f"{db}.{table}: no ORDER BY, so no sharding key can be derived")
    local = f"{table}{LOCAL_SUFFIX}"
    replicated_args = ", ".join(a for a in (f"'{zookeeper_path(db, local)}'", "'{replica}'", args) if a)
    engine = f"Replicated{e.group(1)}MergeTree({replicated_args})"
    return [
        f"CREATE TABLE {if_not_exists}{db}.{local} {on}\n{columns}\nENGINE = {engine}\n{clauses}",
        f"CREATE TABLE {if_not_exists}{db}.{table} {on}\n{columns}\n"
        f"ENGINE = Distributed({cluster}, {db}, {local}, {sharding_key(o.group(1))})",
    ]


def cluster_form(statements: list[str], cluster: str) -> list[str]:
    """Every statement's cluster form, in order."""
    return [out for statement in statements for out in cluster_statements(statement, cluster)]
