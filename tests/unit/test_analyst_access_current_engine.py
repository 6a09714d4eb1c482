"""The analyst's access on a current ClickHouse engine (chdb): infra/clickhouse/analyst_grants.sql.

On 18.16 (the local server) the analyst is a users.xml user with ``allow_databases`` and the
``readonly`` profile (tests/integration/test_department_identity.py). On a current server the same
is SQL: ``CREATE USER … SETTINGS readonly = 1`` and ``GRANT SELECT ON <db>.*``. chdb keeps users
only in a users.xml (no SQL-created users), whose ``<grants>`` take the very GRANT statements of
the file; so the check runs in two processes over one data directory: an administrator applies
the migrations and stores rows, then the analyst — the file's grants, readonly — reads the
analysts' views and is refused the restricted dead letters and every change
[信息资源共享机制 五].
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("chdb")

GRANTS = Path(__file__).resolve().parents[2] / "infra" / "clickhouse" / "analyst_grants.sql"
DB = "hz_an"
PERSON = "330502199001011236"

CONFIG = (
    "<clickhouse><user_directories><users_xml><path>{users}</path></users_xml></user_directories>"
    "</clickhouse>"
)
USERS = """<clickhouse>
  <profiles><default><readonly>{readonly}</readonly></default></profiles>
  <users><default><password></password><profile>default</profile><quota>default</quota>
    <grants>{grants}</grants></default></users>
  <quotas><default/></quotas>
</clickhouse>"""

ADMIN = r"""
import sys, chdb
from sinks.clickhouse.migrate import migrate
from sinks.clickhouse.rows import DEAD_LETTER_COLUMNS

conn = chdb.connect(sys.argv[1])
cur = conn.cursor()

class Client:
    def execute(self, sql, rows=None):
        if rows is not None:
            sql += " " + ", ".join("(" + ", ".join(repr(str(v)) for v in r) + ")" for r in rows)
        cur.execute(sql)
        return cur.fetchall()

db = sys.argv[2]
migrate(Client(), db)
cur.execute(f"INSERT INTO {db}.events (event_id, type, source_dept, subject_id, payload) "
            "VALUES ('e1', 'ApprovalIssued', 'HZ-SJJ', 'P-0123456789abcdef', '{}')")
cur.execute(f"INSERT INTO {db}_restricted.dead_letters ({', '.join(DEAD_LETTER_COLUMNS)}) "
            f"VALUES ('t.ingress.HZ-SJJ', 0, 1, 'forged', 'k', base64Encode('{sys.argv[3]}'), now())")
conn.close()
"""

ANALYST = r"""
import json, sys, chdb
conn = chdb.connect(sys.argv[1])
cur = conn.cursor()
out = {}
for name, sql in json.loads(sys.argv[2]).items():
    try:
        cur.execute(sql)
        out[name] = ["ok", repr(cur.fetchall())]
    except Exception as exc:
        out[name] = ["error", str(exc).splitlines()[0]]
print(json.dumps(out))
conn.close()
"""


def grant_statements(db: str) -> list[str]:
    """The GRANT statements of analyst_grants.sql for ``db``, without ``TO <user>`` (the
    ``<grants>`` of a users.xml user apply to that user)."""
    text = "\n".join(ln for ln in GRANTS.read_text(encoding="utf-8").splitlines() if not ln.startswith("--"))
    grants = [s.strip() for s in text.split(";") if s.strip().startswith("GRANT")]
    assert grants, f"no GRANT in {GRANTS}"
    return [re.sub(r"\s+TO\s+\{user\}\s*$", "", g).replace("{db}", db) for g in grants]


def _phase(tmp: Path, name: str, readonly: int, grants: list[str], script: str, *args: str) -> str:
    users, config = tmp / f"{name}_users.xml", tmp / f"{name}.xml"
    queries = "".join(f"<query>{g}</query>" for g in grants)
    users.write_text(USERS.format(readonly=readonly, grants=queries), encoding="utf-8")
    config.write_text(CONFIG.format(users=users), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", script, f"{tmp / 'data'}?config-file={config}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def analyst_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    from sinks.clickhouse.queries import load_query, query_names

    tmp = tmp_path_factory.mktemp("chdb_access")
    _phase(tmp, "admin", 0, ["GRANT ALL ON *.* WITH GRANT OPTION"], ADMIN, DB, PERSON)
    statements = {
        f"view {v}": f"SELECT * FROM {DB}.{v}"
        for v in (
            "obligations_latest",
            "obligation_stats",
            "department_stats",
            "obligation_monthly",
            "correlations_active",
            "repeat_offenders",
            "assessment_adjustments",
            "scorecard_official",
        )
    }
    analysts = [q for q in query_names() if q != "dead_letters_by_reason"]  # that one is the operator's
    statements.update({f"query {q}": load_query(q, DB) for q in analysts})
    statements.update(
        {
            "events": f"SELECT subject_id FROM {DB}.events",
            "restricted": f"SELECT value_base64 FROM {DB}_restricted.dead_letters",
            "operator query": load_query("dead_letters_by_reason", DB),
            "insert": f"INSERT INTO {DB}.events (event_id) SELECT 'x'",
            "alter": f"ALTER TABLE {DB}.events DELETE WHERE 1",
            "drop": f"DROP TABLE {DB}.events",
            "create": f"CREATE TABLE {DB}.mine (x UInt8) ENGINE = Memory",
            "set": "SET readonly = 0",
        }
    )
    out = _phase(tmp, "analyst", 1, grant_statements(DB), ANALYST, json.dumps(statements))
    results: dict[str, list[str]] = json.loads(out.strip().splitlines()[-1])
    return results


def test_the_grants_file_parses_on_a_current_engine() -> None:
    import chdb

    text = "\n".join(ln for ln in GRANTS.read_text(encoding="utf-8").splitlines() if not ln.startswith("--"))
    filled = text.replace("{user}", "analyst").replace("{password}", "pw").replace("{db}", DB)
    for statement in (s.strip() for s in filled.split(";") if s.strip()):
        assert "Query" in str(chdb.query(f"EXPLAIN AST {statement}", "CSV")), statement


def test_the_analyst_reads_every_analyst_view_and_query(analyst_results: dict[str, list[str]]) -> None:
    failed = {k: v for k, v in analyst_results.items() if k.startswith(("view", "query")) and v[0] != "ok"}
    assert not failed
    assert analyst_results["events"] == ["ok", "(('P-0123456789abcdef',),)"]


@pytest.mark.parametrize("what", ["restricted", "operator query"])
def test_the_analyst_cannot_read_the_restricted_dead_letters(
    analyst_results: dict[str, list[str]], what: str
) -> None:
    status, message = analyst_results[what]
    assert status == "error" and ("ACCESS_DENIED" in message or "Not enough privileges" in message)
    assert PERSON not in message


@pytest.mark.parametrize("what", ["insert", "alter", "drop", "create", "set"])
def test_the_analyst_cannot_change_anything(analyst_results: dict[str, list[str]], what: str) -> None:
    status, message = analyst_results[what]
    assert status == "error", message
    assert re.search(r"readonly|Not enough privileges|ACCESS_DENIED", message), message
