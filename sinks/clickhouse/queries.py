"""The analysts' example queries (``queries/*.sql``), each opening with the question it answers."""

from __future__ import annotations

from pathlib import Path

from sinks.clickhouse.migrate import check_database_name

QUERIES_DIR = Path(__file__).resolve().parent / "queries"


def query_names() -> list[str]:
    return sorted(p.stem for p in QUERIES_DIR.glob("*.sql"))


def load_query(name: str, database: str) -> str:
    """The SQL of ``queries/<name>.sql`` for ``database`` (comments kept)."""
    path = QUERIES_DIR / f"{name}.sql"
    if not path.is_file():
        raise KeyError(f"no query {name!r}; known: {', '.join(query_names())}")
    return path.read_text(encoding="utf-8").format(db=check_database_name(database))


def question_of(name: str) -> str:
    """The question a query answers: its opening comment."""
    first = (QUERIES_DIR / f"{name}.sql").read_text(encoding="utf-8").splitlines()[0]
    return first.removeprefix("--").strip()
