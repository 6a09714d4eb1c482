"""The department registry: reference data of the event contract."""

from __future__ import annotations

import re

import pytest

from domain.departments import Department, UnknownDepartment, load_registry, parse_registry

DOMAIN_MD_CODES = [
    "HZ-FGW",
    "HZ-JYJ",
    "HZ-GAJ",
    "HZ-GTJ",
    "HZ-JSJ",
    "HZ-GHJ",
    "HZ-SLJ",
    "HZ-NYJ",
    "HZ-LYJ",
    "HZ-SWJ",
    "HZ-TYJ",
    "HZ-HBJ",
    "HZ-LW",
    "HZ-AJJ",
    "HZ-ZFJ",
    "HZ-SJJ",
    "HZ-RFB",
    "HZ-TCB",
    "HZ-LXB",
]
COUNTY_BUREAUS = ["WX-ZFJ", "NX-ZFJ", "DQ-ZFJ", "CX-ZFJ", "AJ-ZFJ", "KFQ-ZFJ", "TH-ZFJ"]


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def test_every_code_of_domain_md_and_every_county_bureau_is_registered(registry):
    for code in DOMAIN_MD_CODES + COUNTY_BUREAUS:
        assert code in registry


def test_the_seventeen_assessed_units_of_the_scorecard(registry):
    assessed = {d.code for d in registry.assessed()}
    assert len(assessed) == 17
    assert assessed == set(DOMAIN_MD_CODES) - {"HZ-TCB", "HZ-LXB"}


def test_kinds_of_the_special_departments(registry):
    assert registry.get("HZ-GAJ").kind == "police"
    assert registry.get("HZ-ZFJ").kind == "enforcement" and registry.get("HZ-ZFJ").assessed
    assert registry.get("HZ-TCB").kind == "coordination_office"
    assert registry.get("HZ-LXB").kind == "joint_meeting_office"
    assert "HZ-GAJ" not in {d.code for d in registry.business()}
    assert len(registry.business()) == 15


def test_county_bureaus_have_two_to_four_squadrons(registry):
    for bureau in COUNTY_BUREAUS:
        squadrons = registry.squadrons(bureau)
        assert 2 <= len(squadrons) <= 4, bureau
        for sq in squadrons:
            assert re.fullmatch(rf"{bureau[:-4]}-ZD-[A-Z]+", sq.code)
            assert sq.level == "township" and sq.kind == "enforcement"
            assert sq.area == registry.get(bureau).area
            assert sq.county_bureau == bureau


def test_levels(registry):
    assert registry.get("HZ-SJJ").level == "city"
    assert registry.get("DQ-ZFJ").level == "county"
    assert registry.get("DQ-ZD-WK").level == "township"
    assert registry.get("DQ-ZD-WK").name_zh.endswith("武康中队")
    assert registry.get("HZ-SJJ").county_bureau is None


def test_enforcement_departments_are_of_every_level(registry):
    levels = {d.level for d in registry.enforcement()}
    assert levels == {"city", "county", "township"}


def test_unknown_code_is_a_key_error_naming_the_code_and_a_close_match(registry):
    with pytest.raises(KeyError) as info:
        registry.get("HZ-RFBB")
    assert isinstance(info.value, UnknownDepartment)
    assert "'HZ-RFBB'" in str(info.value)
    assert "did you mean 'HZ-RFB'" in str(info.value)
    with pytest.raises(UnknownDepartment) as info:
        registry.get("dq-zd-wk")
    assert info.value.suggestion == "DQ-ZD-WK"


def test_unknown_code_without_any_close_match(registry):
    with pytest.raises(UnknownDepartment) as info:
        registry["ZZZZZZZZZZ"]
    assert info.value.suggestion is None
    assert "ZZZZZZZZZZ" in str(info.value)


def test_the_default_registry_is_cached(registry):
    assert load_registry() is registry
    assert isinstance(next(iter(registry)), Department)


HEADER = "code,name_zh,name_en,level,area,kind,assessed\n"


@pytest.mark.parametrize(
    "rows, message",
    [
        ("A,a,a,city,x,business,true\nA,a,a,city,x,business,true\n", "duplicate"),
        ("A,a,a,planet,x,business,true\n", "level"),
        ("A,a,a,city,x,army,true\n", "kind"),
        ("A,a,a,city,x,business,maybe\n", "assessed"),
    ],
)
def test_bad_registry_files_are_rejected(rows, message):
    with pytest.raises(ValueError, match=message):
        parse_registry((HEADER + rows).splitlines(keepends=True))


def test_a_missing_column_is_rejected():
    with pytest.raises(ValueError, match="assessed"):
        parse_registry(["code,name_zh,name_en,level,area,kind\n"])


def test_load_registry_from_a_path(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(HEADER + "X-1,甲,X one,city,x,business,false\n", encoding="utf-8")
    reg = load_registry(path)
    assert reg.codes() == ["X-1"] and len(reg) == 1
