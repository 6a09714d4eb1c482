"""Column mappings: a department's own export columns → canonical event fields.

A mapping file (JSON, see ``producers/mappings/``) names the event type (or a column that
holds it), the column → field translation, value translations (``准予`` → ``granted``),
constants, list separators, the export's time zone and time formats. Every value is
coerced to the type the event's Avro schema declares, so the record then passes the same
strict validation as canonical JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from schemas import codec

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"

_TRUE = {"true", "1", "yes", "y", "是", "有", "√"}
_FALSE = {"false", "0", "no", "n", "否", "无", "×", ""}


class MappingError(ValueError):
    """A record that the mapping cannot translate; the message names the column."""


@dataclass(frozen=True)
class Mapping_:
    name: str
    event_type: str | None
    type_column: str | None
    types: dict[str, str]
    columns: dict[str, str]
    values: dict[str, dict[str, str]]
    constants: dict[str, Any]
    lists: dict[str, str]
    tz: timezone
    time_formats: tuple[str, ...]
    event_id_from: tuple[str, ...] = field(default=())


def _parse_offset(text: str) -> timezone:
    sign = -1 if text.startswith("-") else 1
    hours, _, minutes = text.lstrip("+-").partition(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes or 0)))


def load_mapping(path_or_name: str | Path) -> Mapping_:
    """Load a mapping file by path, or by the name of a file shipped in ``producers/mappings``."""
    path = Path(path_or_name)
    if not path.is_file():
        shipped = MAPPINGS_DIR / f"{path_or_name}.json"
        if not shipped.is_file():
            names = ", ".join(sorted(p.stem for p in MAPPINGS_DIR.glob("*.json")))
            raise MappingError(f"no mapping file {path_or_name!r} (shipped mappings: {names})")
        path = shipped
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MappingError(f"{path}: cannot read mapping: {exc}") from exc
    event_type = spec.get("event_type")
    type_column = spec.get("type_column")
    if bool(event_type) == bool(type_column):
        raise MappingError(f"{path}: give exactly one of 'event_type' or 'type_column'")
    types = dict(spec.get("types", {}))
    for t in [event_type, *types.values()]:
        if t and t not in codec.event_types():
            raise MappingError(f"{path}: unknown event type {t!r}")
    return Mapping_(
        name=spec.get("name", path.stem),
        event_type=event_type,
        type_column=type_column,
        types=types,
        columns=dict(spec.get("columns", {})),
        values={k: dict(v) for k, v in spec.get("values", {}).items()},
        constants=dict(spec.get("constants", {})),
        lists=dict(spec.get("lists", {})),
        tz=_parse_offset(spec.get("timezone", "+08:00")),
        time_formats=tuple(spec.get("time_formats", ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"])),
        event_id_from=tuple(spec.get("event_id_from", ())),
    )


def _field_kinds(event_type: str) -> dict[str, tuple[str, bool]]:
    """field name → (kind, optional) from the Avro schema: string, boolean, int, long, double,
    enum, timestamp, date, array."""
    kinds: dict[str, tuple[str, bool]] = {}
    for f in codec.schema_of(event_type)["fields"]:
        t = f["type"]
        optional = False
        if isinstance(t, list):
            optional = "null" in t
            t = next(x for x in t if x != "null")
        if isinstance(t, dict):
            logical = t.get("logicalType")
            if logical and logical.startswith("timestamp"):
                kind = "timestamp"
            elif logical == "date":
                kind = "date"
            else:
                kind = t["type"] if t["type"] in ("enum", "array") else str(t["type"])
        else:
            kind = str(t)
        kinds[f["name"]] = (kind, optional)
    return kinds


def _to_time(text: str, mapping: Mapping_, column: str) -> str:
    text = text.strip()
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
        for fmt in mapping.time_formats:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if parsed is None:
            raise MappingError(
                f"column {column!r}: bad timestamp {text!r} (expected ISO-8601 or one of "
                f"{', '.join(mapping.time_formats)})"
            ) from None
    assert parsed is not None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=mapping.tz)
    return parsed.isoformat()


def apply_mapping(row: Mapping[str, Any], mapping: Mapping_, source_dept: str) -> dict[str, Any]:
    """Translate one export row into a canonical-JSON event object (not yet validated)."""
    if mapping.type_column:
        raw_type = str(row.get(mapping.type_column, "")).strip()
        event_type = mapping.types.get(raw_type)
        if event_type is None:
            raise MappingError(
                f"column {mapping.type_column!r}: unknown event type {raw_type!r} "
                f"(mapped values: {', '.join(mapping.types)})"
            )
    else:
        assert mapping.event_type is not None
        event_type = mapping.event_type
    kinds = _field_kinds(event_type)
    out: dict[str, Any] = {"type": event_type, "source_dept": source_dept}
    out.update(mapping.constants)
    for column, name in mapping.columns.items():
        if column not in row:
            raise MappingError(f"missing column {column!r} (maps to field {name!r})")
        value = row[column]
        if isinstance(value, str):
            value = value.strip()
        if name not in kinds:
            continue  # the column maps to a field of another type of this register
        kind, optional = kinds[name]
        if value in ("", None):
            if optional or kind == "boolean":
                if kind == "boolean":
                    out[name] = False
                continue
            raise MappingError(f"column {column!r}: empty, but field {name!r} is required")
        if name in mapping.values:
            table = mapping.values[name]
            if kind == "array":
                sep = mapping.lists.get(name, ";")
                value = sep.join(table.get(v.strip(), v.strip()) for v in str(value).split(sep))
            else:
                value = table.get(str(value), value)
        out[name] = _coerce(value, kind, column, mapping, name)
    missing = [f for f in mapping.event_id_from if f not in out]
    if missing:
        raise MappingError(f"event_id_from names field(s) not in the record: {', '.join(missing)}")
    return out


def _coerce(value: Any, kind: str, column: str, mapping: Mapping_, name: str) -> Any:
    if not isinstance(value, str):
        return value
    if kind in ("timestamp", "date"):
        iso = _to_time(value, mapping, column)
        return iso[:10] if kind == "date" else iso
    if kind == "boolean":
        low = value.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise MappingError(f"column {column!r}: {value!r} is not a yes/no value")
    if kind in ("int", "long"):
        try:
            return int(value)
        except ValueError:
            raise MappingError(f"column {column!r}: {value!r} is not a whole number") from None
    if kind in ("double", "float"):
        try:
            return float(value.replace(",", ""))
        except ValueError:
            raise MappingError(f"column {column!r}: {value!r} is not a number") from None
    if kind == "array":
        sep = mapping.lists.get(name, ";")
        return [v.strip() for v in value.split(sep) if v.strip()]
    return value
