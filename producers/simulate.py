"""A deterministic simulator of the departments' facts, as canonical-JSON events.

``simulate(days, seed, start, scale, calendar, registry)`` yields canonical-JSON objects (one
event each, the fields of domain.md, ``type``, times ISO-8601 with +08:00), sorted by
``occurred_at``. A seeded ``random.Random`` drives everything: the same arguments give the same
bytes. Every event's ``source_dept`` is the department that reports that fact (the receiving
dept acknowledges a transfer, the requested dept replies to a determination, the business dept
issues an approval, the county bureau decides a penalty).

What the stream contains (rates per working day at ``scale=1``; non-working days are quiet
except for hotline complaints and a few urgent patrol finds):

- violations (~40/WD) discovered by enforcement squadrons and bureaus and by business depts;
  ~40 % lie outside the discoverer's jurisdiction → CaseTransferred (≈80 % within 3 WD, ≈7 %
  with a TransferExtensionNotified first, ≈10 % late, ≈4 % never), urgent ones mostly with a
  StopOrdered first, some with incomplete materials / no leader approval / no copy to the
  coordination office; TransferAcknowledged by the receiver (≈85 % within 5 WD, accepted mostly);
  a rejected transfer is mostly sent again, to the same dept with the evidence completed or to
  the city enforcement bureau, whose answer is owed in turn;
- penalties and coercive measures by the enforcement bureaus (repeat offenders, subjects that
  hold an approval in the same domain, unlicensed operations, permit suspensions); their
  ``recorded_at`` is the publication time, late (> 3 WD) for ≈8 %;
- approvals (~35/WD) by the business depts (granted mostly; late publication ≈8 %);
- determination requests and the requested dept's replies (extended, referred and returned,
  late or missing);
- complaints (12345 hotline mostly) verified, replied, or referred by a CaseTransferred carrying
  ``complaint_id`` (no ViolationDiscovered for those: the complaint_referral obligation is the
  clock);
- written information formed and shared (some with a stated extension reason, some late);
- one joint consultation meeting (HZ-ZFJ), a few thematic ones, two AssessmentAdjusted entries.

Only facts inside the window [start, start + days) are emitted (``recorded_at`` too): a
response due after the window end simply has not happened yet.

Domains (``domain``) and matter codes (``matter_code``): see :data:`DOMAINS`. A matter code is
``<domain abbreviation>-<L|F|C|P><nn>``: L licence (许可), F filing (备案), C confirmation (确认),
P penalty matter (处罚事项); penalty matters say who holds the power: the enforcement dept
(划转事项) or the business dept (or police).

Subjects: unified social credit codes (GB 32100-2015, check character correct) of organisations
registered in Huzhou's districts, and ID numbers (GB 11643-1999, check digit correct) of
individuals; fake but well-formed.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from domain.calendar import WorkingDayCalendar
from domain.departments import DepartmentRegistry
from domain.events import SHANGHAI
from domain.obligations.rules.cases import organisation

#: why a receiving dept rejects a transfer: not its jurisdiction, evidence to complete, already handled
REJECTIONS = ("不属于本部门管辖", "证据材料不足,请补充", "已由其他部门立案查处")
#: namespace of the simulator's event ids: uuid5(namespace, "<seed>/<n>")
SIMULATOR_NAMESPACE = uuid.UUID("5b3c1f4e-2a6d-5e8f-9c1b-7d4e3a2f1b60")
DEFAULT_START = date(2026, 9, 21)

# -- reference tables ------------------------------------------------------------------------------

#: area → (administrative division code, county enforcement bureau)
AREAS: dict[str, tuple[str, str]] = {
    "wuxing": ("330502", "WX-ZFJ"),
    "nanxun": ("330503", "NX-ZFJ"),
    "deqing": ("330521", "DQ-ZFJ"),
    "changxing": ("330522", "CX-ZFJ"),
    "anji": ("330523", "AJ-ZFJ"),
    "kaifaqu": ("330501", "KFQ-ZFJ"),
    "taihu": ("330501", "TH-ZFJ"),
}
AREA_WEIGHTS = {
    "wuxing": 22,
    "nanxun": 14,
    "deqing": 14,
    "changxing": 18,
    "anji": 14,
    "kaifaqu": 10,
    "taihu": 8,
}


@dataclass(frozen=True)
class PenaltyMatter:
    code: str
    holder: str  # "enforcement" (划转事项) or a department code (business dept / police)
    legal_basis: str
    kinds: tuple[str, ...]  # plausible penalty kinds, the first the most common
    licensed_activity: bool = False  # an "operating without approval" matter


@dataclass(frozen=True)
class DomainSpec:
    name: str
    abbr: str
    business_dept: str
    approvals: tuple[tuple[str, str], ...]  # (matter code, approval kind)
    penalties: tuple[PenaltyMatter, ...]
    weight: int  # relative frequency of violations


def _pm(code: str, holder: str, basis: str, *kinds: str, unlicensed: bool = False) -> PenaltyMatter:
    return PenaltyMatter(code, holder, basis, kinds or ("fine",), unlicensed)


E = "enforcement"

#: The domains of the simulator. The business dept is the competent dept of the domain
#: (相关业务主管部门): it issues the approvals and is asked for determinations.
DOMAINS: tuple[DomainSpec, ...] = (
    DomainSpec(
        "urban_management",
        "UM",
        "HZ-JSJ",
        (("UM-L01", "license"), ("UM-L02", "license"), ("UM-F01", "filing")),
        (
            _pm("UM-P01", E, "《浙江省城市市容和环境卫生管理条例》第四十二条", "fine", "warning"),
            _pm("UM-P02", E, "《浙江省城市市容和环境卫生管理条例》第四十五条", "warning", "fine"),
            _pm("UM-P03", E, "《城市建筑垃圾管理规定》第二十六条", "fine", "confiscation"),
            _pm("UM-P04", E, "《城市道路管理条例》第四十二条", "fine", unlicensed=True),
        ),
        18,
    ),
    DomainSpec(
        "construction",
        "CN",
        "HZ-JSJ",
        (("CN-L01", "license"), ("CN-F01", "filing")),
        (
            _pm("CN-P01", E, "《建筑法》第六十四条", "fine", "business_restriction", unlicensed=True),
            _pm("CN-P02", "HZ-JSJ", "《建设工程质量管理条例》第六十二条", "fine", "license_suspension"),
        ),
        7,
    ),
    DomainSpec(
        "planning",
        "PL",
        "HZ-GHJ",
        (("PL-L01", "license"), ("PL-C01", "confirmation")),
        (
            _pm("PL-P01", E, "《城乡规划法》第六十四条", "fine", "closure", "other", unlicensed=True),
            _pm("PL-P02", E, "《浙江省城乡规划条例》第六十九条", "fine"),
        ),
        10,
    ),
    DomainSpec(
        "land",
        "LD",
        "HZ-GTJ",
        (("LD-L01", "license"), ("LD-C01", "confirmation")),
        (
            _pm("LD-P01", E, "《土地管理法》第七十七条", "fine", "confiscation", unlicensed=True),
            _pm("LD-P02", "HZ-GTJ", "《矿产资源法》第三十九条", "fine", "confiscation"),
        ),
        6,
    ),
    DomainSpec(
        "environment",
        "EN",
        "HZ-HBJ",
        (("EN-L01", "license"), ("EN-F01", "filing")),
        (
            _pm("EN-P01", E, "《大气污染防治法》第一百一十八条", "fine", "warning"),
            _pm("EN-P02", E, "《环境噪声污染防治法》第五十八条", "warning", "fine"),
            _pm("EN-P03", "HZ-HBJ", "《环境影响评价法》第三十一条", "fine", "closure", unlicensed=True),
        ),
        12,
    ),
    DomainSpec(
        "water",
        "WT",
        "HZ-SLJ",
        (("WT-L01", "license"), ("WT-L02", "license")),
        (
            _pm("WT-P01", E, "《浙江省河道管理条例》第四十七条", "fine", "warning"),
            _pm("WT-P02", "HZ-SLJ", "《水法》第六十九条", "fine", unlicensed=True),
        ),
        5,
    ),
    DomainSpec(
        "agriculture",
        "AG",
        "HZ-NYJ",
        (("AG-L01", "license"), ("AG-F01", "filing")),
        (
            _pm("AG-P01", "HZ-NYJ", "《农药管理条例》第六十条", "fine", "confiscation"),
            _pm("AG-P02", E, "《大气污染防治法》第一百一十九条", "fine", "warning"),
        ),
        4,
    ),
    DomainSpec(
        "forestry",
        "FO",
        "HZ-LYJ",
        (("FO-L01", "license"), ("FO-L02", "license")),
        (
            _pm("FO-P01", "HZ-LYJ", "《森林法》第七十六条", "fine", "confiscation", unlicensed=True),
            _pm("FO-P02", E, "《浙江省森林管理条例》第五十一条", "fine"),
        ),
        3,
    ),
    DomainSpec(
        "market",
        "MK",
        "HZ-SJJ",
        (("MK-L01", "license"), ("MK-F01", "filing"), ("MK-C01", "confirmation")),
        (
            _pm(
                "MK-P01",
                E,
                "《无证无照经营查处办法》第十三条",
                "fine",
                "confiscation",
                "warning",
                unlicensed=True,
            ),
            _pm("MK-P02", "HZ-SJJ", "《产品质量法》第四十九条", "fine", "confiscation", "license_revocation"),
            _pm(
                "MK-P03",
                "HZ-SJJ",
                "《食品安全法》第一百二十二条",
                "fine",
                "license_suspension",
                unlicensed=True,
            ),
        ),
        12,
    ),
    DomainSpec(
        "commerce",
        "CM",
        "HZ-SWJ",
        (("CM-F01", "filing"), ("CM-L01", "license")),
        (_pm("CM-P01", "HZ-SWJ", "《单用途商业预付卡管理办法（试行）》第三十六条", "fine", "warning"),),
        3,
    ),
    DomainSpec(
        "tourism",
        "TR",
        "HZ-LW",
        (("TR-L01", "license"),),
        (
            _pm("TR-P01", "HZ-LW", "《旅游法》第九十五条", "fine", "confiscation", unlicensed=True),
            _pm("TR-P02", E, "《浙江省旅游条例》第六十三条", "fine", "warning"),
        ),
        3,
    ),
    DomainSpec(
        "safety",
        "SF",
        "HZ-AJJ",
        (("SF-L01", "license"), ("SF-F01", "filing")),
        (
            _pm(
                "SF-P01", "HZ-AJJ", "《危险化学品安全管理条例》第七十七条", "fine", "closure", unlicensed=True
            ),
            _pm("SF-P02", E, "《浙江省消防条例》第五十九条", "fine", "warning"),
        ),
        4,
    ),
    DomainSpec(
        "civil_defence",
        "CD",
        "HZ-RFB",
        (("CD-L01", "license"), ("CD-F01", "filing")),
        (_pm("CD-P01", E, "《人民防空法》第四十九条", "fine", "warning"),),
        2,
    ),
    DomainSpec(
        "price",
        "PR",
        "HZ-FGW",
        (("PR-F01", "filing"),),
        (_pm("PR-P01", "HZ-FGW", "《价格法》第四十二条", "fine", "warning"),),
        2,
    ),
    DomainSpec(
        "education",
        "ED",
        "HZ-JYJ",
        (("ED-L01", "license"),),
        (_pm("ED-P01", "HZ-JYJ", "《民办教育促进法》第六十四条", "closure", "fine", unlicensed=True),),
        1,
    ),
    DomainSpec(
        "sports",
        "SP",
        "HZ-TYJ",
        (("SP-L01", "license"),),
        (_pm("SP-P01", "HZ-TYJ", "《全民健身条例》第三十六条", "fine", "confiscation", unlicensed=True),),
        1,
    ),
    DomainSpec(
        "public_order",
        "PO",
        "HZ-GAJ",
        (),
        (_pm("PO-P01", "HZ-GAJ", "《治安管理处罚法》第五十条", "detention", "fine"),),
        1,
    ),
)
DOMAIN_BY_NAME = {d.name: d for d in DOMAINS}

INFO_KINDS = (
    "laws_and_standards",
    "approval_decisions",
    "penalty_decisions",
    "statistics",
    "discretion_standards",
    "workflows",
    "subject_dynamics",
    "complaint_handling",
    "violation_clues",
    "other",
)
COMPLAINT_CHANNELS = (("12345", 50), ("phone", 18), ("web", 15), ("letter", 5), ("visit", 12))
ALL_MATERIALS = ("transfer_letter", "source_material", "evidence", "other")

# -- identifiers -------------------------------------------------------------------------------

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def uscc_check_char(first17: str) -> str:
    """The check character of a unified social credit code (GB 32100-2015)."""
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def org_code_check_char(first8: str) -> str:
    """The check character of an organisation code (GB 11714-1997), part of a USCC."""
    total = sum(int(c, 36) * w for c, w in zip(first8, _ORG_WEIGHTS, strict=True))
    c = 11 - total % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def id_number_check_char(first17: str) -> str:
    """The check character of a citizen ID number (GB 11643-1999)."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def make_uscc(rng: random.Random, division: str) -> str:
    category = rng.choices(("91", "92", "93", "12", "52"), (70, 20, 4, 3, 3))[0]
    body = f"{rng.randrange(10**8):08d}"
    first17 = category + division + body + org_code_check_char(body)
    return first17 + uscc_check_char(first17)


def make_id_number(rng: random.Random, division: str) -> str:
    born = date(1955, 1, 1) + timedelta(days=rng.randrange(365 * 45))
    first17 = f"{division}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + id_number_check_char(first17)


# -- state ---------------------------------------------------------------------------------------


@dataclass
class Subject:
    subject_id: str
    area: str
    individual: bool
    repeat_offender: bool


@dataclass
class _State:
    approvals: dict[str, list[int]] = field(default_factory=dict)  # domain → subject indexes
    approved: dict[str, set[int]] = field(default_factory=dict)  # the same, for membership tests
    penalised: dict[str, list[int]] = field(default_factory=dict)  # domain → subject indexes


_BUSINESS_DEPTS_OF: dict[str, list[DomainSpec]] = {}
for _d in DOMAINS:
    _BUSINESS_DEPTS_OF.setdefault(_d.business_dept, []).append(_d)


class Simulator:
    """One simulated run; call :meth:`events` once."""

    OPEN = 8 * 3600 + 30 * 60
    CLOSE = 17 * 3600 + 30 * 60

    def __init__(
        self,
        *,
        days: int,
        seed: int,
        start: date = DEFAULT_START,
        scale: float = 1.0,
        calendar: WorkingDayCalendar,
        registry: DepartmentRegistry,
    ) -> None:
        if days < 1:
            raise ValueError("days must be at least 1")
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.days = days
        self.seed = seed
        self.start = start
        self.scale = scale
        self.cal = calendar
        self.registry = registry
        self.rng = random.Random(seed)
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        self._start_ts = int((datetime.combine(start, datetime.min.time(), SHANGHAI) - epoch).total_seconds())
        self._end_ts = self._start_ts + days * 86400
        self._out: list[tuple[int, int, dict[str, Any]]] = []
        self._seq = 0
        self._counters: dict[str, int] = {}
        self._subjects: list[Subject] = []
        self._state = _State()
        self._squadrons = {
            area: [d.code for d in registry.squadrons(bureau)] for area, (_, bureau) in AREAS.items()
        }
        for code in [bureau for _, bureau in AREAS.values()] + ["HZ-ZFJ", "HZ-TCB", "HZ-LXB"]:
            registry.get(code)
        for spec in DOMAINS:
            registry.get(spec.business_dept)
            for pm in spec.penalties:
                if pm.holder != E:
                    registry.get(pm.holder)
        n_subjects = max(200, int(4000 * scale))
        self._n_subjects = n_subjects
        self._area_names = list(AREA_WEIGHTS)
        self._area_cum = list(AREA_WEIGHTS.values())
        self._domain_weights = [d.weight for d in DOMAINS]
        self._bureaus = [bureau for _, bureau in AREAS.values()] + ["HZ-ZFJ"]

    # -- time helpers ------------------------------------------------------------------------

    def _day_ts(self, d: date) -> int:
        return self._start_ts + (d - self.start).days * 86400

    def _date_of(self, ts: int) -> date:
        return self.start + timedelta(days=(ts - self._start_ts) // 86400)

    def _office_time(self, d: date) -> int:
        r = self.rng
        # a morning and an afternoon peak
        if r.random() < 0.5:
            sec = r.randint(self.OPEN, 12 * 3600)
        else:
            sec = r.randint(13 * 3600 + 30 * 60, self.CLOSE)
        return self._day_ts(d) + sec

    def _after(self, ts: int, k: int) -> int:
        """A time ``k`` working days after ``ts``'s day (k = 0: later the same day)."""
        if k <= 0:
            return ts + self.rng.randint(300, 3 * 3600)
        day, _ = self.cal.nth_working_day_after(self._date_of(ts), k)
        return self._office_time(day)

    def _within(self, ts: int, limit: int) -> int:
        """A time on or before the end of the ``limit``-th working day after ``ts``."""
        weights = [max(1, limit + 1 - i) for i in range(limit + 1)]
        k = self.rng.choices(range(limit + 1), weights)[0]
        return self._after(ts, k)

    def _late(self, ts: int, limit: int, extra: int = 6) -> int:
        """A time after the ``limit``-th working day after ``ts``."""
        return self._after(ts, limit + self.rng.randint(1, extra))

    def _recorded(self, ts: int) -> int:
        return ts + self.rng.randint(20, 1800)

    # -- ids and emission ----------------------------------------------------------------------

    def _next(self, prefix: str) -> int:
        n = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = n
        return n

    def _id(self, dept: str, letters: str, ts: int) -> str:
        year = self._date_of(ts).year
        return f"{dept}-{letters}{year}-{self._next(f'{dept}{letters}{year}'):06d}"

    def _emit(
        self, type_: str, source: str, ts: int, fields: dict[str, Any], recorded: int | None = None
    ) -> None:
        rec = self._recorded(ts) if recorded is None else recorded
        if ts < self._start_ts or rec >= self._end_ts:
            return
        self._seq += 1
        obj: dict[str, Any] = {
            "type": type_,
            "event_id": str(uuid.uuid5(SIMULATOR_NAMESPACE, f"{self.seed}/{self._seq}")),
            "source_dept": source,
            "occurred_at": ts,
            "recorded_at": rec,
        }
        obj.update(fields)
        self._out.append((ts, self._seq, obj))

    def _publication(self, ts: int, late_share: float) -> int:
        """``recorded_at`` of a fact subject to a 3-WD sharing obligation (its publication)."""
        r = self.rng.random()
        if r < late_share:
            return self._after(ts, 3 + self.rng.randint(1, 8))
        if r < late_share + 0.15:  # exported in the next days' batch: on time
            return self._after(ts, self.rng.randint(1, 3))
        return self._recorded(ts)

    # -- subjects ------------------------------------------------------------------------------

    def _subject(self, index: int | None = None) -> int:
        r = self.rng
        if index is None:
            if r.random() < 0.15:
                index = r.randrange(max(1, self._n_subjects // 50))  # the repeat offenders
            else:
                index = r.randrange(self._n_subjects)
        while len(self._subjects) <= index:
            i = len(self._subjects)
            area = r.choices(self._area_names, self._area_cum)[0]
            division = AREAS[area][0]
            individual = r.random() < 0.3
            sid = make_id_number(r, division) if individual else make_uscc(r, division)
            self._subjects.append(Subject(sid, area, individual, i < self._n_subjects // 50))
        return index

    def _pick(self, pool: list[int]) -> int:
        return pool[self.rng.randrange(len(pool))]

    # -- stories -------------------------------------------------------------------------------

    def _violation(self, d: date, quiet: bool) -> None:
        r = self.rng
        spec = r.choices(DOMAINS, self._domain_weights)[0]
        pm = spec.penalties[r.randrange(len(spec.penalties))]
        # who discovers it: an enforcement unit (squadrons mostly) or the business dept
        by_enforcement = quiet or pm.holder == "HZ-GAJ" or r.random() < 0.6
        subj_index = self._choose_penalty_subject(spec, pm)
        subject = self._subjects[subj_index]
        area = subject.area
        bureau = AREAS[area][1]
        if by_enforcement:
            if r.random() < 0.03:  # found while working in a neighbouring area
                area = r.choice([a for a in AREAS if a != subject.area])
            u = r.random()
            discoverer = (
                "HZ-ZFJ" if u < 0.08 else AREAS[area][1] if u < 0.3 else r.choice(self._squadrons[area])
            )
        else:
            discoverer = spec.business_dept
        discoverer_dept = self.registry.get(discoverer)
        if pm.holder != E:
            jurisdiction = pm.holder
        elif discoverer == "HZ-ZFJ":
            jurisdiction = "HZ-ZFJ"
        elif discoverer_dept.is_business:
            jurisdiction = "HZ-ZFJ" if r.random() < 0.1 else bureau
        elif discoverer_dept.area == subject.area:
            jurisdiction = discoverer
        else:  # another area's unit: its bureau has jurisdiction
            jurisdiction = bureau
        t0 = self._office_time(d) if not quiet else self._day_ts(d) + r.randint(9 * 3600, 20 * 3600)
        urgent = quiet or r.random() < (0.5 if pm.holder == "HZ-GAJ" else 0.1)
        origin = r.choices(("inspection", "monitoring", "referral"), (75, 15, 10))[0]
        case_id = self._id(discoverer, "AJ", t0)
        self._emit(
            "ViolationDiscovered",
            discoverer,
            t0,
            {
                "case_id": case_id,
                "subject_id": subject.subject_id,
                "domain": spec.name,
                "matter_code": pm.code,
                "jurisdiction_dept": jurisdiction,
                "urgent": urgent,
                "origin": origin,
            },
        )
        if jurisdiction != discoverer:
            accepted_at = self._transfer(case_id, discoverer, jurisdiction, t0, urgent)
            if accepted_at is not None and pm.holder == E and r.random() < 0.55:
                self._penalty(
                    case_id, jurisdiction, spec, pm, subj_index, self._after(accepted_at, r.randint(3, 20))
                )
        elif discoverer_dept.is_enforcement:
            decider = discoverer_dept.county_bureau or discoverer
            t = t0
            if r.random() < 0.1:
                t = self._after(t0, r.randint(0, 2))
                self._emit(
                    "CoerciveMeasureDecided",
                    decider,
                    t,
                    {
                        "measure_id": self._id(decider, "QZ", t),
                        "case_id": case_id,
                        "subject_id": subject.subject_id,
                        "measure_kind": r.choices(("seal", "seize", "freeze", "other"), (40, 45, 5, 10))[0],
                    },
                )
            if r.random() < 0.15:
                self._determination(case_id, decider, spec.business_dept, self._after(t, r.randint(0, 3)))
            if r.random() < 0.6:
                self._penalty(case_id, decider, spec, pm, subj_index, self._after(t, r.randint(4, 25)))

    def _choose_penalty_subject(self, spec: DomainSpec, pm: PenaltyMatter) -> int:
        r = self.rng
        u = r.random()
        approved = self._state.approvals.get(spec.name)
        if approved and not pm.licensed_activity and u < 0.4:
            return self._pick(approved)
        return self._subject()

    def _transfer(
        self, case_id: str, src: str, dst: str, t0: int, urgent: bool, complaint_id: str | None = None
    ) -> int | None:
        """StopOrdered?, TransferExtensionNotified?, CaseTransferred, TransferAcknowledged.

        Returns the time of an accepting acknowledgement (None when not transferred, not
        acknowledged or rejected).
        """
        r = self.rng
        t = t0
        if urgent and r.random() < 0.85:
            t = self._after(t0, 0)
            self._emit("StopOrdered", src, t, {"case_id": case_id})
        u = r.random()
        if complaint_id is None and u < 0.07:
            ext_at = self._after(t, r.randint(0, 2))
            self._emit(
                "TransferExtensionNotified",
                src,
                ext_at,
                {
                    "case_id": case_id,
                    "to_dept": dst,
                    "reason": r.choice(("需进一步调查核实违法事实", "等待检测报告", "当事人身份待核实")),
                },
            )
            at = self._within(t0, 15) if r.random() < 0.9 else self._late(t0, 15)
            at = max(at, ext_at + 60)
        elif u < 0.81:
            at = self._within(t0, 3)
        elif u < 0.96:
            at = self._late(t0, 3)
        else:
            return None  # never transferred
        at = max(at, t + 60)
        materials = list(ALL_MATERIALS)
        if r.random() < 0.08:
            materials.remove(r.choice(ALL_MATERIALS[:3]))
        if r.random() < 0.6:
            materials.remove("other")
        fields: dict[str, Any] = {
            "case_id": case_id,
            "to_dept": dst,
            "materials": materials,
            "leader_approved": r.random() < 0.97,
            "cc_coordination_office": r.random() < 0.93,
            "complaint_id": complaint_id,
        }
        self._emit("CaseTransferred", src, at, fields)
        ack = self._answer_time(at)
        if ack is None:
            return None
        accepted = r.random() < 0.9
        reason = None if accepted else r.choice(REJECTIONS)
        self._emit(
            "TransferAcknowledged",
            dst,
            ack,
            {"case_id": case_id, "decision": "accepted" if accepted else "rejected", "reason": reason},
        )
        if not accepted:
            if complaint_id is None and reason is not None:
                self._transfer_again(case_id, src, dst, ack, reason)
            return None
        if complaint_id is not None:
            self._emit(
                "ComplaintReplied", dst, self._after(ack, r.randint(1, 10)), {"complaint_id": complaint_id}
            )
        return ack

    def _transfer_again(self, case_id: str, src: str, dst: str, rejected_at: int, reason: str) -> None:
        """A rejected transfer sent again (≈70 %), complete, 1–5 WD after the rejection: to the
        same dept with the evidence it asked for, or, when it said the case is not its
        jurisdiction, to the city enforcement bureau (HZ-ZFJ); a case another dept already
        handles is not sent again. The new receiver answers (≈85 % within 5 WD, ≈10 % late):
        each transfer is owed its own answer [协作机制 二(一)]."""
        r = self.rng
        if reason == REJECTIONS[0]:  # not the receiver's jurisdiction
            to = "HZ-ZFJ"
            if organisation(to) in (organisation(src), organisation(dst)):
                return
        elif reason == REJECTIONS[1]:  # evidence to complete
            to = dst
        else:
            return
        if r.random() >= 0.7:
            return
        at = self._after(rejected_at, r.randint(1, 5))
        fields: dict[str, Any] = {
            "case_id": case_id,
            "to_dept": to,
            "materials": list(ALL_MATERIALS),
            "leader_approved": True,
            "cc_coordination_office": True,
            "complaint_id": None,
        }
        self._emit("CaseTransferred", src, at, fields)
        ack = self._answer_time(at)
        if ack is not None:
            answer = {"case_id": case_id, "decision": "accepted", "reason": None}
            self._emit("TransferAcknowledged", to, ack, answer)

    def _answer_time(self, transferred_at: int) -> int | None:
        """When the receiver answers a transfer: ≈85 % within 5 WD, ≈10 % late, else never."""
        u = self.rng.random()
        if u < 0.85:
            return self._within(transferred_at, 5)
        if u < 0.95:
            return self._late(transferred_at, 5)
        return None

    def _penalty(
        self, case_id: str, dept: str, spec: DomainSpec, pm: PenaltyMatter, subj: int, t: int
    ) -> None:
        r = self.rng
        decider = self.registry.get(dept).county_bureau or dept
        if not self.registry.get(decider).is_enforcement:
            return
        subject = self._subjects[subj]
        kind = pm.kinds[0] if r.random() < 0.7 else r.choice(pm.kinds)
        holds_approval = subj in self._state.approved.get(spec.name, ())
        unlicensed = pm.licensed_activity and not holds_approval and r.random() < 0.8
        suspend = kind == "license_suspension" or (holds_approval and r.random() < 0.15)
        amount = None
        if kind in ("fine", "confiscation"):
            amount = float(r.choice((200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000)))
        penalty_id = self._id(decider, "CF", t)
        self._emit(
            "PenaltyDecided",
            decider,
            t,
            {
                "penalty_id": penalty_id,
                "case_id": case_id,
                "subject_id": subject.subject_id,
                "domain": spec.name,
                "matter_code": pm.code,
                "penalty_kind": kind,
                "amount_yuan": amount,
                "legal_basis": pm.legal_basis,
                "unlicensed_operation": unlicensed,
                "requires_permit_suspension": suspend,
            },
            recorded=self._publication(t, 0.08),
        )
        self._state.penalised.setdefault(spec.name, []).append(subj)

    def _approval(self, d: date) -> None:
        r = self.rng
        spec = r.choices(DOMAINS, self._domain_weights)[0]
        if not spec.approvals:
            return
        code, kind = spec.approvals[r.randrange(len(spec.approvals))]
        penalised = self._state.penalised.get(spec.name)
        approved = self._state.approvals.get(spec.name)
        u = r.random()
        if penalised and u < 0.06:
            subj = self._pick(penalised)
        elif approved and u < 0.14:
            subj = self._pick(approved)
        else:
            subj = self._subject()
        t = self._office_time(d)
        decision = r.choices(("granted", "denied", "revoked", "suspended"), (88, 6, 3, 3))[0]
        valid_until = None
        if kind == "license" and decision == "granted":
            valid_until = (d + timedelta(days=365 * r.choice((1, 3, 5)))).isoformat()
        dept = spec.business_dept
        self._emit(
            "ApprovalIssued",
            dept,
            t,
            {
                "approval_id": self._id(dept, "XK", t),
                "subject_id": self._subjects[subj].subject_id,
                "domain": spec.name,
                "matter_code": code,
                "approval_kind": kind,
                "decision": decision,
                "valid_until": valid_until,
            },
            recorded=self._publication(t, 0.08),
        )
        if decision == "granted":
            self._state.approvals.setdefault(spec.name, []).append(subj)
            self._state.approved.setdefault(spec.name, set()).add(subj)

    def _determination(self, case_id: str, src: str, dst: str, t: int) -> None:
        r = self.rng
        request_id = self._id(src, "RD", t)
        self._emit(
            "DeterminationRequested",
            src,
            t,
            {
                "request_id": request_id,
                "case_id": case_id,
                "to_dept": dst,
                "question": r.choice(
                    (
                        "违法建筑性质认定",
                        "是否取得相关许可",
                        "污染物排放是否超标",
                        "林地性质认定",
                        "产品质量是否合格",
                        "是否属于占用河道管理范围",
                    )
                ),
            },
        )
        receipt = t
        limit = 10
        last = receipt
        u = r.random()
        if u < 0.12:
            last = self._within(receipt, 8)
            self._emit(
                "DeterminationExtended",
                dst,
                last,
                {
                    "request_id": request_id,
                    "reason": "情况复杂,需现场复核",
                },
            )
            limit = 20
        elif u < 0.2:
            ref = self._within(receipt, 6)
            upper = r.choice([c for c in ("HZ-GTJ", "HZ-GHJ", "HZ-HBJ", "HZ-SLJ", "HZ-SJJ") if c != dst])
            self._emit(
                "DeterminationReferred",
                dst,
                ref,
                {
                    "request_id": request_id,
                    "to_dept": upper,
                    "reason": "需上级部门或专业机构认定",
                },
            )
            back = self._after(ref, r.randint(3, 12))
            self._emit("DeterminationReferralReturned", dst, back, {"request_id": request_id})
            paused = self.cal.working_days_between(self._date_of(ref), self._date_of(back))
            limit += paused
            last = back
        v = r.random()
        if v < 0.86:
            reply = self._within(receipt, limit)
        elif v < 0.95:
            reply = self._late(receipt, limit)
        else:
            return
        reply = max(reply, last + 60)
        self._emit(
            "DeterminationReplied",
            dst,
            reply,
            {
                "request_id": request_id,
                "conclusion": r.choice(("认定属实", "认定不属实", "部分属实", "需补充材料后复核")),
            },
        )

    def _complaint(self, d: date, quiet: bool) -> None:
        r = self.rng
        channel = r.choices([c for c, _ in COMPLAINT_CHANNELS], [w for _, w in COMPLAINT_CHANNELS])[0]
        if quiet:
            channel = "12345"
        subj = self._subject()
        subject = self._subjects[subj]
        spec = r.choices(DOMAINS, self._domain_weights)[0]
        if r.random() < 0.6:
            receiver = r.choice(self._squadrons[subject.area]) if r.random() < 0.6 else AREAS[subject.area][1]
        else:
            receiver = spec.business_dept
        t0 = self._office_time(d) if not quiet else self._day_ts(d) + r.randint(8 * 3600, 22 * 3600)
        complaint_id = self._id(receiver, "TS", t0)
        self._emit(
            "ComplaintReceived",
            receiver,
            t0,
            {
                "complaint_id": complaint_id,
                "channel": channel,
                "subject_id": subject.subject_id if r.random() < 0.7 else None,
                "summary": r.choice(
                    (
                        "夜间施工噪声扰民",
                        "店外占道经营",
                        "餐饮油烟扰民",
                        "违章搭建",
                        "无证经营",
                        "河道乱倒垃圾",
                        "户外广告牌存在安全隐患",
                        "价格未明码标价",
                    )
                ),
            },
        )
        verified = self._after(t0, r.randint(1, 4))
        finding = r.choices(("no_violation", "in_jurisdiction", "out_of_jurisdiction"), (35, 40, 25))[0]
        self._emit(
            "ComplaintVerified", receiver, verified, {"complaint_id": complaint_id, "finding": finding}
        )
        if finding == "no_violation":
            self._emit(
                "ComplaintReplied",
                receiver,
                self._after(verified, r.randint(0, 3)),
                {"complaint_id": complaint_id},
            )
        elif finding == "in_jurisdiction":
            pm = spec.penalties[r.randrange(len(spec.penalties))]
            case_id = self._id(receiver, "AJ", verified)
            self._emit(
                "ViolationDiscovered",
                receiver,
                verified + 120,
                {
                    "case_id": case_id,
                    "subject_id": subject.subject_id,
                    "domain": spec.name,
                    "matter_code": pm.code,
                    "jurisdiction_dept": receiver,
                    "urgent": False,
                    "origin": "complaint",
                },
            )
            self._emit(
                "ComplaintReplied",
                receiver,
                self._after(verified, r.randint(1, 8)),
                {"complaint_id": complaint_id},
            )
        else:
            if self.registry.get(receiver).is_enforcement:
                target = spec.business_dept
            else:
                target = AREAS[subject.area][1]
            case_id = self._id(receiver, "AJ", verified)
            self._transfer(case_id, receiver, target, verified, False, complaint_id=complaint_id)

    def _info(self, d: date) -> None:
        r = self.rng
        if r.random() < 0.5:
            src = r.choice(self._bureaus)
            dst = r.choice(DOMAINS[:-1]).business_dept
        else:
            src = r.choice(DOMAINS[:-1]).business_dept
            dst = r.choice(self._bureaus)
        t = self._office_time(d)
        share_id = self._id(src, "GX", t)
        info_kind = r.choice(INFO_KINDS)
        extended = r.random() < 0.1
        self._emit(
            "InfoFormed",
            src,
            t,
            {
                "share_id": share_id,
                "to_dept": dst,
                "info_kind": info_kind,
                "extension_reason": "资料收集整理需要时间" if extended else None,
            },
        )
        limit = 15 if extended else 5
        u = r.random()
        if u < 0.88:
            at = self._within(t, limit)
        elif u < 0.96:
            at = self._late(t, limit)
        else:
            return
        self._emit("InfoShared", src, at, {"share_id": share_id, "to_dept": dst, "info_kind": info_kind})

    def _meeting(self, d: date, kind: str) -> None:
        r = self.rng
        t = self._day_ts(d) + r.choice((9, 14)) * 3600 + r.choice((0, 30)) * 60
        if kind == "joint":
            src = "HZ-ZFJ"
            participants = ["HZ-TCB", *(x.code for x in self.registry.assessed() if x.code != "HZ-ZFJ")]
        else:
            src = r.choice(self._bureaus)
            spec = r.choice(DOMAINS[:-1])
            participants = ["HZ-TCB", spec.business_dept]
        self._emit(
            "ConsultationMeetingHeld",
            src,
            t,
            {
                "meeting_id": self._id(src, "HS", t),
                "kind": kind,
                "participants": participants,
            },
        )

    def _adjustments(self, days: list[date]) -> None:
        entries = (
            ("HZ-SLJ", "二.4", -2.0, "未参加全市河道违建联合整治行动"),
            ("HZ-GAJ", "二.8", -2.0, "重大综合执法活动未落实警力保障一起"),
        )
        for (dept, item, points, reason), d in zip(
            entries, self.rng.sample(days, min(2, len(days))), strict=False
        ):
            t = self._office_time(d)
            quarter = f"{d.year}Q{(d.month - 1) // 3 + 1}"
            self._emit(
                "AssessmentAdjusted",
                "HZ-LXB",
                t,
                {
                    "dept": dept,
                    "quarter": quarter,
                    "item": item,
                    "points": points,
                    "reason": reason,
                },
            )

    # -- the run ---------------------------------------------------------------------------------

    def _count(self, rate: float) -> int:
        x = rate * self.scale * self.rng.uniform(0.75, 1.25)
        n = int(x)
        return n + (1 if self.rng.random() < x - n else 0)

    def run(self) -> list[dict[str, Any]]:
        days = [self.start + timedelta(days=i) for i in range(self.days)]
        working = [d for d in days if self.cal.is_working_day(d)]
        for d in days:
            if self.cal.is_working_day(d):
                for _ in range(self._count(40)):
                    self._violation(d, quiet=False)
                for _ in range(self._count(35)):
                    self._approval(d)
                for _ in range(self._count(12)):
                    self._complaint(d, quiet=False)
                for _ in range(self._count(1.5)):
                    # a determination on a case opened before the window
                    src = self.rng.choice(self._bureaus)
                    spec = self.rng.choice(DOMAINS[:-1])
                    t = self._office_time(d)
                    case_id = f"{src}-AJ{d.year - (d.month < 3)}-9{self._next(src + 'old'):05d}"
                    self._determination(case_id, src, spec.business_dept, t)
                for _ in range(self._count(4)):
                    self._info(d)
                if self.rng.random() < 0.08:
                    self._meeting(d, "thematic")
            else:
                for _ in range(self._count(0.4)):
                    self._complaint(d, quiet=True)
                for _ in range(self._count(0.15)):
                    self._violation(d, quiet=True)
        if working:
            self._meeting(working[int(len(working) * 0.6)], "joint")
            self._adjustments(working)
        self._out.sort(key=lambda item: (item[0], item[1]))
        return [self._finish(obj) for _, _, obj in self._out]

    @staticmethod
    def _finish(obj: dict[str, Any]) -> dict[str, Any]:
        obj["occurred_at"] = _iso(obj["occurred_at"])
        obj["recorded_at"] = _iso(obj["recorded_at"])
        return obj


_ISO_CACHE: dict[int, str] = {}


def _iso(ts: int) -> str:
    day, sec = divmod(ts + 8 * 3600, 86400)
    prefix = _ISO_CACHE.get(day)
    if prefix is None:
        prefix = (date(1970, 1, 1) + timedelta(days=day)).isoformat()
        _ISO_CACHE[day] = prefix
    h, rem = divmod(sec, 3600)
    m, s = divmod(rem, 60)
    return f"{prefix}T{h:02d}:{m:02d}:{s:02d}+08:00"


def simulate(
    *,
    days: int,
    seed: int,
    calendar: WorkingDayCalendar,
    registry: DepartmentRegistry,
    start: date = DEFAULT_START,
    scale: float = 1.0,
) -> Iterator[dict[str, Any]]:
    """The canonical-JSON events of ``days`` simulated days from ``start``, sorted by occurred_at."""
    sim = Simulator(days=days, seed=seed, start=start, scale=scale, calendar=calendar, registry=registry)
    yield from sim.run()


def write_jsonl(out: BinaryIO, events: Iterable[dict[str, Any]]) -> Counter[str]:
    """Write events as JSON Lines (one canonical-JSON object a line); the count by type."""
    counts: Counter[str] = Counter()
    dumps = orjson.dumps
    buffer: list[bytes] = []
    for obj in events:
        counts[obj["type"]] += 1
        buffer.append(dumps(obj))
        if len(buffer) >= 10_000:
            out.write(b"\n".join(buffer) + b"\n")
            buffer.clear()
    if buffer:
        out.write(b"\n".join(buffer) + b"\n")
    out.flush()
    return counts


def write_simulation(
    path: Path | str,
    *,
    days: int,
    seed: int,
    start: date | str = DEFAULT_START,
    scale: float = 1.0,
    calendar: WorkingDayCalendar | None = None,
    registry: DepartmentRegistry | None = None,
) -> int:
    """Simulate into a JSON Lines file; the number of events written.

    The calendar defaults to the project's (``hzbus.calendar_source.load_calendar``, with the
    override file of the environment) and the registry to ``departments.csv``.
    """
    if calendar is None:
        from hzbus.calendar_source import load_calendar

        calendar = load_calendar()
    if registry is None:
        from domain.departments import load_registry

        registry = load_registry()
    first = date.fromisoformat(start) if isinstance(start, str) else start
    events = simulate(days=days, seed=seed, start=first, scale=scale, calendar=calendar, registry=registry)
    with Path(path).open("wb") as out:
        return sum(write_jsonl(out, events).values())
