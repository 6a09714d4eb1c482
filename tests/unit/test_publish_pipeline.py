"""The publish pipeline without Kafka: readers, mappings, validation, rejects."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from domain.departments import load_registry
from producers.mapping import load_mapping
from producers.pipeline import RejectWriter, publish_records
from producers.publisher import InMemoryPublisher
from producers.readers import read_csv, read_jsonl, read_records
from producers.validate import RejectedRecord, derive_event_id, validate_event

DATA = Path(__file__).resolve().parent.parent / "data"
NOW = datetime(2026, 10, 20, 9, 0, tzinfo=UTC)
REGISTRY = load_registry()


def discovered(**overrides: object) -> dict[str, object]:
    event: dict[str, object] = {
        "type": "ViolationDiscovered",
        "event_id": "e-1",
        "source_dept": "HZ-SJJ",
        "occurred_at": "2026-09-30T10:00:00+08:00",
        "recorded_at": "2026-09-30T10:05:00+08:00",
        "case_id": "SJJ-2026-0001",
        "subject_id": "91330502MA2B3C4D5E",
        "domain": "urban_management",
        "matter_code": "CG-001",
        "jurisdiction_dept": "HZ-ZFJ",
        "urgent": False,
        "origin": "inspection",
    }
    event.update(overrides)
    return event


def run(records, *, dept="HZ-SJJ", mapping=None, tmp_path: Path):
    publisher = InMemoryPublisher()
    console = io.StringIO()
    rejects = RejectWriter(tmp_path / "rejects.jsonl", "export", console=console)
    summary = publish_records(
        records,
        publisher=publisher,
        registry=REGISTRY,
        rejects=rejects,
        publishing_dept=dept,
        now=NOW,
        mapping=mapping,
    )
    kept = (
        [orjson.loads(line) for line in (tmp_path / "rejects.jsonl").read_bytes().splitlines()]
        if rejects.count
        else []
    )
    return summary, publisher.published, kept, console.getvalue()


def jsonl(*lines: object) -> io.BytesIO:
    return io.BytesIO(
        b"\n".join(line if isinstance(line, bytes) else orjson.dumps(line) for line in lines) + b"\n"
    )


def test_a_valid_canonical_event_is_published_with_its_fields(tmp_path: Path) -> None:
    summary, published, kept, _ = run(read_jsonl(jsonl(discovered())), tmp_path=tmp_path)
    assert (summary.published, summary.rejected, kept) == (1, 0, [])
    assert published[0].fields["case_id"] == "SJJ-2026-0001"
    assert published[0].occurred_at == datetime(2026, 9, 30, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (discovered(type="ViolationSpotted"), "ViolationSpotted"),
        ({k: v for k, v in discovered().items() if k != "case_id"}, "case_id"),
        (discovered(occurred_at="30/09/2026"), "occurred_at"),
        (discovered(occurred_at="2026-09-30T10:00:00"), "occurred_at"),
        (discovered(origin="rumour"), "origin"),
        (discovered(jurisdiction_dept="HZ-XXX"), "HZ-XXX"),
        (discovered(source_dept="HZ-HBJ"), "publishes only as itself"),
        (discovered(occurred_at="2026-10-30T10:00:00+08:00"), "clock is skewed"),
        (discovered(recorded_at="2027-10-20T09:00:00+08:00"), "in the future of this adapter's clock"),
        (discovered(occurred_at="1970-01-01T08:00:00+08:00"), "is before 2000-01-01"),
        # larger than consumers admit (the broker would take it: its limit is about 1 MiB)
        (discovered(domain="城" * 30_000), "e-1: oversized: 90,085 bytes, over the bus limit of 65,536"),
    ],
)
def test_each_bad_record_is_rejected_with_its_line_and_a_reason(tmp_path: Path, line, reason) -> None:
    summary, published, kept, console = run(
        read_jsonl(jsonl(discovered(event_id="ok-1"), line, discovered(event_id="ok-2"))), tmp_path=tmp_path
    )
    assert summary.published == 2 and summary.rejected == 1
    assert [e.event_id for e in published] == ["ok-1", "ok-2"]
    assert kept[0]["line"] == 2 and reason in kept[0]["reason"]
    assert "export:2: rejected:" in console and reason in console


def test_an_unknown_department_gets_a_suggestion() -> None:
    with pytest.raises(RejectedRecord, match="did you mean 'HZ-ZFJ'"):
        validate_event(discovered(jurisdiction_dept="HZ-ZFK"), REGISTRY, publishing_dept="HZ-SJJ", now=NOW)


def test_event_ids_are_derived_deterministically_from_the_fact_not_the_adapter_clock() -> None:
    a = discovered(recorded_at="2026-09-30T10:05:00+08:00")
    b = discovered(recorded_at="2026-10-02T08:00:00+08:00")
    del a["event_id"], b["event_id"]
    assert derive_event_id(a) == derive_event_id(b)
    assert derive_event_id(a) != derive_event_id({**a, "case_id": "other"})


def test_the_approval_register_maps_chinese_columns_and_rejects_bad_rows(tmp_path: Path) -> None:
    mapping = load_mapping("approval_register")
    records = list(read_records(DATA / "approval_register.csv"))
    summary, published, kept, _ = run(records, mapping=mapping, tmp_path=tmp_path)
    assert summary.read == 7
    first = published[0]
    assert first.type == "ApprovalIssued" and first.source_dept == "HZ-SJJ"
    assert first.fields["approval_kind"] == "license" and first.fields["decision"] == "granted"
    assert first.fields["domain"] == "market"
    assert first.occurred_at == datetime(2026, 10, 9, 1, 30, tzinfo=UTC)
    assert published[1].fields["approval_kind"] == "filing"
    assert published[2].fields["decision"] == "denied"
    reasons = {r["line"]: r["reason"] for r in kept}
    assert set(reasons) == {5, 6, 7, 8}
    assert "批准了" in reasons[5]  # a decision the mapping does not know
    assert "bad timestamp" in reasons[6]
    assert "approval_id" in reasons[7]  # empty but required
    assert "expected 8 columns" in reasons[8]


def test_republishing_the_same_register_gives_the_same_event_ids(tmp_path: Path) -> None:
    mapping = load_mapping("approval_register")
    _, first, _, _ = run(read_records(DATA / "approval_register.csv"), mapping=mapping, tmp_path=tmp_path)
    _, second, _, _ = run(read_records(DATA / "approval_register.csv"), mapping=mapping, tmp_path=tmp_path)
    assert [e.event_id for e in first] == [e.event_id for e in second]


def test_the_case_register_maps_penalties_with_amounts_and_yes_no_columns(tmp_path: Path) -> None:
    mapping = load_mapping("case_register")
    summary, published, kept, _ = run(
        read_records(DATA / "case_register.csv"), dept="HZ-ZFJ", mapping=mapping, tmp_path=tmp_path
    )
    assert summary.published == 2
    fine, warning = published
    assert fine.fields["penalty_kind"] == "fine" and fine.fields["amount_yuan"] == 20000
    assert warning.fields["unlicensed_operation"] is True
    assert warning.fields.get("amount_yuan") is None
    assert kept[0]["line"] == 4
    assert "'abc' is not a number" in kept[0]["reason"]


def test_a_csv_with_a_broken_quote_is_named_not_a_traceback() -> None:
    text = 'a,b\n1,2\n"3,4\n'
    records = list(read_csv(io.BytesIO(text.encode())))
    assert records[0].data == {"a": "1", "b": "2"}
    assert records[-1].error is not None and records[-1].line == 3


def test_a_failed_delivery_is_kept_as_a_reject(tmp_path: Path) -> None:
    publisher = InMemoryPublisher(fail_ids={"e-2"})
    rejects = RejectWriter(tmp_path / "r.jsonl", "export", console=None)
    summary = publish_records(
        read_jsonl(jsonl(discovered(event_id="e-1"), discovered(event_id="e-2"))),
        publisher=publisher,
        registry=REGISTRY,
        rejects=rejects,
        publishing_dept="HZ-SJJ",
        now=NOW,
    )
    assert summary.published == 1 and summary.rejected == 1
    kept = orjson.loads((tmp_path / "r.jsonl").read_bytes())
    assert kept["line"] == 2
    assert kept["reason"] == "simulated delivery failure"


def test_a_worker_pool_publishes_what_the_serial_pipeline_publishes_in_file_order(tmp_path: Path) -> None:
    from producers.pipeline import publish_file

    good = [discovered(event_id=f"e-{i}", case_id=f"SJJ-2026-{i:04d}") for i in range(5000)]
    lines = [orjson.dumps(e) for e in good]
    lines[10] = b"{broken"
    lines[4321] = orjson.dumps(discovered(event_id="e-x", source_dept="NO-SUCH"))
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    results = []
    for workers in (0, 2):
        publisher = InMemoryPublisher()
        rejects = RejectWriter(tmp_path / f"rejects-{workers}.jsonl", "export", console=None)
        done: list[int] = []
        summary = publish_file(
            path,
            "jsonl",
            publisher=publisher,
            registry=REGISTRY,
            rejects=rejects,
            publishing_dept=None,
            now=NOW,
            workers=workers,
            on_records=done.append,
        )
        kept = [orjson.loads(x) for x in (tmp_path / f"rejects-{workers}.jsonl").read_bytes().splitlines()]
        results.append(([e.event_id for e in publisher.published], [(k["line"], k["reason"]) for k in kept]))
        assert (summary.read, summary.published, summary.rejected) == (5000, 4998, 2)
        assert sum(done) == 5000
    assert results[0] == results[1]
    assert results[1][0] == [e["event_id"] for i, e in enumerate(good) if i not in (10, 4321)]
    assert [line for line, _ in results[1][1]] == [11, 4322]
    assert "NO-SUCH" in results[1][1][1][1]


def test_a_csv_register_through_the_worker_pool_gives_the_serial_result(tmp_path: Path) -> None:
    from producers.pipeline import publish_file

    results = []
    for workers in (0, 2):
        publisher = InMemoryPublisher()
        rejects = RejectWriter(tmp_path / f"r{workers}.jsonl", "register", console=None)
        summary = publish_file(
            DATA / "approval_register.csv",
            None,
            publisher=publisher,
            registry=REGISTRY,
            rejects=rejects,
            publishing_dept="HZ-SJJ",
            now=NOW,
            mapping=load_mapping("approval_register"),
            workers=workers,
        )
        kept = [(k["line"], k["reason"]) for k in map(orjson.loads, rejects.path.read_bytes().splitlines())]
        results.append(([e.event_id for e in publisher.published], kept, summary.read))
    assert results[0] == results[1]
    assert results[1][0] and results[1][1]  # the register has good rows and bad ones
