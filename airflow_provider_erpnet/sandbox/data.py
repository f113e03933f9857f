"""Deterministic synthetic data for the sandbox: every row is a pure function of (seed, set, index).

Nothing is materialised up front, so `Dataset(1_000_000)` is instant; rows are generated when
asked for, in the exact shape the Domain API serialises them (decimals as `Decimal`, dates as the
wire strings, references as `{"@odata.id": ...}`). Ids are GUIDs whose first eight hex digits are
the row index, so Id order is row order and keyset paging needs no index. See docs/sandbox-data.md.

Time stamps are laid out backwards from an anchor, `end`: `FIXED_END` (2026-06-30T23:59:59Z) by
default, which the test suite relies on; the sandbox passes the current time, so that recent
windows hold rows. Moving the anchor shifts every generated stamp by the same whole seconds; the
deliberate edge-case instants (clock changes, the new year) stay where they are, so the anchor
may not precede the latest of them.
"""

from __future__ import annotations

import calendar
import threading
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from itertools import accumulate
from typing import Any

from . import model as m

_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_DAY = 86_400


def _mix(x: int) -> int:
    """splitmix64's finaliser: a cheap bijective scramble of a 64-bit integer."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _epoch(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))


# AggregateLastUpdateTimeUtc: most rows uniform over one year, one in five in its last week
# (as laid out from FIXED_END; another `end` shifts them).
WINDOW_START = _epoch(2025, 7, 1)
WINDOW_END = _epoch(2026, 6, 30, 23, 59, 59)
FIXED_END = datetime(2026, 6, 30, 23, 59, 59, tzinfo=timezone.utc)
EARLIEST_END = datetime(2026, 3, 29, 1, tzinfo=timezone.utc)
RECENT_START = _epoch(2026, 6, 24)
BOUNDARY_INSTANTS = (
    _epoch(2025, 10, 26, 1),  # EU clocks go back (CEST -> CET)
    _epoch(2026, 3, 29, 1),  # EU clocks go forward (CET -> CEST)
    _epoch(2025, 12, 31, 23, 59, 59),
    _epoch(2026, 1, 1),
)
DELIVERY_BOUNDARIES = (
    *BOUNDARY_INSTANTS,
    _epoch(2025, 10, 26, 0, 59, 59),
    _epoch(2026, 3, 29, 0, 59, 59),
)
MAX_AMOUNT = Decimal("9999999999999999.99")
MAX_WEIGHT = Decimal("999999999999999.999")

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@cache
def _day(days: int) -> str:
    return date.fromordinal(_EPOCH_ORDINAL + days).isoformat()


_HOURS_MINUTES = tuple(f"{minute // 60:02d}:{minute % 60:02d}" for minute in range(1440))
_SECONDS = tuple(f"{second:02d}" for second in range(60))


def iso_datetime(seconds: int) -> str:
    """Epoch seconds as the wire form ERP.net uses: `2026-01-05T13:45:12Z`."""
    days, rem = divmod(seconds, _DAY)
    return f"{_day(days)}T{_HOURS_MINUTES[rem // 60]}:{_SECONDS[rem % 60]}Z"


def _iso_date(seconds: int) -> str:
    return _day(seconds // _DAY)


def _midnight(seconds: int) -> int:
    return seconds - seconds % _DAY


def _cents(value: int) -> Decimal:
    return Decimal(value).scaleb(-2)


def _thousandths(value: int) -> Decimal:
    return Decimal(value).scaleb(-3)


def _ml(en: str, bg: str | None = None) -> dict[str, str]:
    return {"EN": en} if bg is None else {"EN": en, "BG": bg}


# Values chosen to break naive clients: quoting, escaping, encodings, whitespace, emptiness.
AWKWARD_TEXTS = (
    "O'Brien & Sons",
    'The "Quoted" Company',
    "Иванов и синове ООД",
    "Café ☕ & Bäckerei",
    "Rocket 🚀 Supplies 👩‍💻",
    "",
    "Back\\slash \\n literal",
    "Tab\tSeparated",
    "  leading and trailing spaces  ",
    "It''s doubled",
    "100% <b>bold</b> & ?query=1#frag",
    "Ελληνικά Αθήνα",
    "北京贸易有限公司",
    "Zero\u200bwidth",
    "e\u0301 combining accent",
)
AWKWARD_NOTES = (
    "First line\nSecond line",
    "Windows\r\nline end",
    "C:\\orders\\2026\\",
    'She said "deliver by 5"',
    "Don't ring the bell",
    "Доставка до склад № 3",
    "🚚 Express 🚀",
    "   ",
    "Unicode \u2028 line separator",
    "Tab\tand\\backslash",
)
AWKWARD_PRODUCT_NAMES = (
    _ml('Bolt 1/2" "heavy"', "Болт 1/2\" 'тежък'"),
    _ml("", ""),
    _ml("Rocket 🚀 fuel", "Ракетно 🚀 гориво"),
    _ml("C:\\path\\to\\part", "Път\\към\\част"),
    _ml("Multi\nline name"),
    _ml("O'Reilly's wrench", "Ключ на О'Райли"),  # noqa: RUF001 (Cyrillic O on purpose)
)
AWKWARD_LAST_NAMES = (
    _ml("D'Artagnan", "Д'Артанян"),
    _ml('Johnson "JJ"', "Джонсън"),
    _ml(""),
    _ml("Smile 😀", "Усмивка 😀"),
    _ml("Back\\slash"),
)
_FIRST_NAMES = (
    ("Ivan", "Иван"),
    ("Maria", "Мария"),
    ("Georgi", "Георги"),
    ("Elena", "Елена"),
    ("Dimitar", "Димитър"),
    ("Petya", "Петя"),
    ("Nikolay", "Николай"),
    ("Yana", "Яна"),
    ("John", "Джон"),
    ("Anna", "Ана"),
    ("Zoë", "Зоя"),
    ("Łukasz", "Лукаш"),
)
_LAST_NAMES = (
    ("Petrov", "Петров"),
    ("Ivanova", "Иванова"),
    ("Georgiev", "Георгиев"),
    ("Dimitrova", "Димитрова"),
    ("Smith", "Смит"),
    ("O'Neil", "О'Нийл"),  # noqa: RUF001
    ("Müller", "Мюлер"),
    ("Nguyễn", "Нгуен"),
    ("Todorov", "Тодоров"),
    ("Stoyanova", "Стоянова"),
)
_COMPANY_STEMS = (
    ("Alpha", "Алфа"),
    ("Nova", "Нова"),
    ("Vector", "Вектор"),
    ("Orbit", "Орбит"),
    ("Balkan", "Балкан"),
    ("Rila", "Рила"),
    ("Danube", "Дунав"),
    ("Pirin", "Пирин"),
    ("Summit", "Съмит"),
    ("Evergreen", "Евъргрийн"),
)
_COMPANY_FORMS = (
    ("Trading Ltd", "Трейдинг ООД"),
    ("Foods JSC", "Фуудс АД"),
    ("Logistics", "Логистикс"),
    ("Systems", "Системс"),
    ("Textiles EOOD", "Текстил ЕООД"),
    ("Energy", "Енерджи"),
)
_PRODUCT_ADJECTIVES = (
    ("Steel", "Стоманен"),
    ("Brass", "Месингов"),
    ("Plastic", "Пластмасов"),
    ("Heavy", "Тежък"),
    ("Compact", "Компактен"),
    ("Premium", "Премиум"),
    ("Eco", "Еко"),
    ("Industrial", "Индустриален"),
)
_PRODUCT_NOUNS = (
    ("bolt", "болт"),
    ("hammer", "чук"),
    ("cable", "кабел"),
    ("valve", "клапан"),
    ("paint", "боя"),
    ("hose", "маркуч"),
    ("helmet", "каска"),
    ("folder", "папка"),
    ("coffee", "кафе"),
    ("drill", "бормашина"),
)
_PRODUCT_SIZES = ("S", "M", "L", "XL", "10 mm", "25 mm", "1 kg", "5 L")
_DELIVERY_NOTES = (
    "Deliver to the main warehouse",
    "Call before delivery",
    "Partial delivery allowed",
    "Invoice monthly",
)
_STATES_BY_WEIGHT = (
    ("New",) * 2
    + ("Adjustment",)
    + ("Planned",)
    + ("FirmPlanned",)
    + ("Released",) * 8
    + ("Completed",) * 5
    + ("Closed",) * 2
)
_PAYMENT_TERMS = (0, 7, 14, 30, 45, 60, 90)

# Code lists: (Code, English name, Bulgarian name).
LOOKUPS: dict[str, tuple[tuple[str, str, str], ...]] = {
    m.CURRENCIES: (
        ("EUR", "Euro", "Евро"),
        ("USD", "US Dollar", "Щатски долар"),
        ("BGN", "Bulgarian Lev", "Български лев"),
        ("GBP", "Pound Sterling", "Британска лира"),
        ("CHF", "Swiss Franc", "Швейцарски франк"),
        ("JPY", "Japanese Yen", "Японска йена"),
    ),
    m.ENTERPRISE_COMPANIES: (
        ("E1", "Enterprise One Ltd", "Ентърпрайз Уан ООД"),
        ("E1-DE", "Enterprise One GmbH", "Ентърпрайз Уан ГмбХ"),
        ("E1-US", "Enterprise One Inc.", "Ентърпрайз Уан Инк."),
    ),
    m.SALES_PERSONS: (
        ("SP01", "Maria Koleva", "Мария Колева"),
        ("SP02", "Peter Hristov", "Петър Христов"),
        ("SP03", "Jane O'Connor", "Джейн О'Конър"),  # noqa: RUF001
        ("SP04", "Stefan Vasilev", "Стефан Василев"),
        ("SP05", "Gergana Ilieva", "Гергана Илиева"),
        ("SP06", "Tom Becker", "Том Бекер"),
        ("SP07", "Radka Nikolova", "Радка Николова"),
        ("SP08", "Alex Kim", "Алекс Ким"),
    ),
    m.PRODUCT_GROUPS: (
        ("FAST", "Fasteners", "Крепежи"),
        ("TOOL", "Tools", "Инструменти"),
        ("ELEC", "Electrical", "Електро"),
        ("PLUM", "Plumbing", "ВиК"),
        ("PAINT", "Paint", "Бои"),
        ("GARD", "Garden", "Градина"),
        ("SAFE", "Safety", "Безопасност"),
        ("OFF", "Office", "Офис"),
        ("FOOD", "Food & Drink", "Храни и напитки"),
        ("SERV", "Services", "Услуги"),
    ),
    m.MEASUREMENT_UNITS: (
        ("PCS", "Pieces", "Брой"),
        ("KG", "Kilogram", "Килограм"),
        ("L", "Litre", "Литър"),
        ("M", "Metre", "Метър"),
        ("BOX", "Box", "Кутия"),
        ("H", "Hour", "Час"),
    ),
}

Field = Callable[[int, int], Any]  # (row key, row hash) -> wire value


class _Table:
    """One entity set's generator. A row's *key* names it (the row index for all sets except
    order lines); `fields` maps each property, in model order, to a function of (key, hash).
    Fields draw from their own bit range of the 128-bit row hash: `(h >> shift) % n`."""

    def __init__(self, ds: Dataset, name: str, count: int) -> None:
        self.ds = ds
        self.name = name
        self.entity = m.ENTITY_SETS[name]
        self.generated = count  # rows made by the generator: keys 0 .. generated - 1
        self.code = zlib.crc32(name.encode()) & 0xFFFF
        self._salt = _mix((ds.seed * _GOLDEN + zlib.crc32(name.encode())) & _M64)
        self._id_salt = _mix(self._salt ^ _GOLDEN)
        self._code_hex = f"{self.code:04x}"
        self._ref_prefix = f"{name}("
        self._last_stamps: tuple[int, tuple[int | None, int, int]] = (-1, (None, 0, 0))
        self.fields: dict[str, Field] = {}
        # Touched rows: key -> the values that replace generated ones. Replaced, never mutated,
        # so readers need no lock; `revision` counts touches so that caches can tell stale data.
        self.touched: dict[int, dict[str, Any]] = {}
        self.revision = 0
        # Created rows (`Dataset.create`): keys from `generated` on, with Ids anywhere in Id order,
        # so `order` then lists every key in Id order (None: key == position). Also replaced,
        # never mutated.
        self.created_ids: dict[int, str] = {}
        self.order: array[int] | None = None

    @property
    def count(self) -> int:
        return self.generated if self.order is None else len(self.order)

    def key_at(self, pos: int) -> int:
        return pos if self.order is None else self.order[pos]

    def row_keys(self) -> Iterable[int]:
        return range(self.count) if self.order is None else self.order

    def rand(self, key: int) -> int:
        """128 pseudo-random bits for one row; fields slice them instead of hashing again."""
        a = _mix(self._salt ^ key)
        return a | (_mix(a ^ _GOLDEN) << 64)

    def id_of_key(self, key: int) -> str:
        if key >= self.generated:
            return self.created_ids[key]
        return self._guid(key, None, key)

    def created_id(self, key: int) -> str:
        """The Id of created row `key`: it sorts next to a random generated row, as a new random
        GUID lands anywhere among a real table's Ids (not after all of them)."""
        return self._guid(_mix(self._salt ^ key) % self.generated, None, key)

    def _guid(self, first: int, third: int | None, key: int) -> str:
        """Lowercase GUID, version 4 layout: `first` leads so that Id order is key order."""
        r = _mix(self._id_salt ^ key)
        if third is None:
            third = (r >> 36) & 0xFFF
        return "%08x-%s-%04x-%04x-%012x" % (  # noqa: UP031 (measurably faster than an f-string)
            first,
            self._code_hex,
            0x4000 | third,
            0x8000 | ((r >> 48) & 0x3FFF),
            r & 0xFFFFFFFFFFFF,
        )

    def ref(self, key: int) -> dict[str, str]:
        return {"@odata.id": self._ref_prefix + self.id_of_key(key) + ")"}

    def record(self, key: int, names: Iterable[str], annotate: bool = False) -> dict[str, Any]:
        h, fields = self.rand(key), self.fields
        if annotate:
            row: dict[str, Any] = {"@odata.id": self._ref_prefix + self.id_of_key(key) + ")"}
            for name in names:
                row[name] = fields[name](key, h)
        else:
            row = {name: fields[name](key, h) for name in names}
        patch = self.touched.get(key)
        if patch is not None:
            for name, value in patch.items():
                if name in row:
                    row[name] = value
        return row

    # Fields shared by most sets.
    def _id(self, k: int, h: int) -> str:
        return self.id_of_key(k)

    def _object_version(self, k: int, h: int) -> int:
        return 1 + (h >> 100) % 40

    def _stamps(self, k: int, h: int) -> tuple[int | None, int, int]:
        """(CreationTime, UpdateTime, AggregateLastUpdateTimeUtc), in that order in time."""
        last_key, stamps = self._last_stamps  # three fields of one row ask in a row
        if last_key != k:
            stamps = self._make_stamps(k, h)
            self._last_stamps = (k, stamps)
        return stamps

    def _make_stamps(self, k: int, h: int) -> tuple[int | None, int, int]:
        if k % 97 == 11:
            last = BOUNDARY_INSTANTS[(k // 97) % len(BOUNDARY_INSTANTS)]
        elif (h >> 3) % 5 == 0:
            last = RECENT_START + (h >> 8) % (WINDOW_END - RECENT_START + 1) + self.ds.shift
        else:
            last = WINDOW_START + (h >> 8) % (WINDOW_END - WINDOW_START + 1) + self.ds.shift
        update = last if k % 3 == 0 else last - (h >> 40) % (30 * _DAY)
        creation = None if k % 61 == 60 else update - (h >> 66) % (3 * 365 * _DAY)
        return creation, update, last

    def _creation_time(self, k: int, h: int) -> str | None:
        creation = self._stamps(k, h)[0]
        return None if creation is None else iso_datetime(creation)

    def _update_time(self, k: int, h: int) -> str:
        return iso_datetime(self._stamps(k, h)[1])

    def _last_update(self, k: int, h: int) -> str:
        return iso_datetime(self._stamps(k, h)[2])

    def _tracking_fields(self) -> dict[str, Field]:
        names = {p.name for p in self.entity.properties}
        fields: dict[str, Field] = {"CreationTime": self._creation_time}
        if "UpdateTime" in names:
            fields["UpdateTime"] = self._update_time
        fields["AggregateLastUpdateTimeUtc"] = self._last_update
        return fields

    def _set_fields(self, fields: dict[str, Field]) -> None:
        """Install fields in model order; a mismatch with the model is a programming error."""
        expected = [p.name for p in self.entity.properties if p.kind is not m.Kind.CHILDREN]
        if sorted(fields) != sorted(expected):
            raise AssertionError(f"{self.name}: fields {sorted(fields)} != model {sorted(expected)}")
        self.fields = {name: fields[name] for name in expected}


class _Lookup(_Table):
    def __init__(self, ds: Dataset, name: str) -> None:
        self.entries = LOOKUPS[name]
        super().__init__(ds, name, len(self.entries))
        self._ids = tuple(self._guid(key, None, key) for key in range(self.count))
        self._refs = tuple(self._ref_prefix + id_ + ")" for id_ in self._ids)
        self._set_fields(
            {
                "Id": self._id,
                "ObjectVersion": self._object_version,
                "DisplayText": lambda k, h: self.entries[k][1],
                "Code": self.code_of,
                "Name": lambda k, h: _ml(self.entries[k][1], self.entries[k][2]),
                "AggregateLastUpdateTimeUtc": self._last_update,
            }
        )

    def code_of(self, k: int, h: int = 0) -> str:
        return self.entries[k][0]

    def id_of_key(self, key: int) -> str:
        return self._ids[key]

    def ref(self, key: int) -> dict[str, str]:
        return {"@odata.id": self._refs[key]}


class _Persons(_Table):
    """Persons share their Id with their party (parties hold persons first, then companies)."""

    def __init__(self, ds: Dataset, count: int) -> None:
        super().__init__(ds, m.PERSONS, count)
        self._set_fields(
            {
                "Id": self._id,
                "ObjectVersion": self._object_version,
                "DisplayText": self.display,
                "FirstName": self._first_name,
                "LastName": self._last_name,
                "BirthDate": self._birth_date,
                **self._tracking_fields(),
                "Party": lambda k, h: self.ds.tables[m.PARTIES].ref(k),
            }
        )

    def id_of_key(self, key: int) -> str:
        return self.ds.tables[m.PARTIES].id_of_key(key)

    def _first_name(self, k: int, h: int) -> dict[str, str]:
        en, bg = _FIRST_NAMES[(h >> 10) % len(_FIRST_NAMES)]
        return _ml("Ana 🌸", "Ана 🌸") if k % 16 == 9 else _ml(en, bg)

    def _last_name(self, k: int, h: int) -> dict[str, str]:
        if k % 8 == 6:
            return dict(AWKWARD_LAST_NAMES[(k // 8) % len(AWKWARD_LAST_NAMES)])
        en, bg = _LAST_NAMES[(h >> 20) % len(_LAST_NAMES)]
        return _ml(en, bg)

    def full_name(self, k: int, h: int) -> dict[str, str]:
        first, last = self._first_name(k, h), self._last_name(k, h)
        return {lang: f"{first.get(lang, '')} {text}".strip() for lang, text in last.items()}

    def display(self, k: int, h: int) -> str:
        return f"{self._first_name(k, h)['EN']} {self._last_name(k, h)['EN']}".strip()

    def _birth_date(self, k: int, h: int) -> str | None:
        if k % 25 == 4:
            return _SPECIAL_BIRTH_DATES[(k // 25) % len(_SPECIAL_BIRTH_DATES)]
        if (h >> 30) % 4 == 0:
            return None
        return _day(_BIRTH_DAYS_START + (h >> 34) % 20_000)


class _Companies(_Table):
    def __init__(self, ds: Dataset, count: int, first_party: int) -> None:
        super().__init__(ds, m.COMPANIES, count)
        self.first_party = first_party
        self._set_fields(
            {
                "Id": self._id,
                "ObjectVersion": self._object_version,
                "DisplayText": self.display,
                "RegistrationNumber": lambda k, h: None if (h >> 12) % 5 == 0 else f"{200000000 + k:09d}",
                "VATNumber": lambda k, h: None if (h >> 14) % 3 == 0 else f"BG{200000000 + k:09d}",
                **self._tracking_fields(),
                "Party": lambda k, h: self.ds.tables[m.PARTIES].ref(self.first_party + k),
            }
        )

    def id_of_key(self, key: int) -> str:
        return self.ds.tables[m.PARTIES].id_of_key(self.first_party + key)

    def company_name(self, k: int, h: int) -> dict[str, str]:
        stem = _COMPANY_STEMS[(h >> 10) % len(_COMPANY_STEMS)]
        form = _COMPANY_FORMS[(h >> 20) % len(_COMPANY_FORMS)]
        return _ml(f"{stem[0]} {form[0]}", f"{stem[1]} {form[1]}")

    def display(self, k: int, h: int) -> str:
        return self.company_name(k, h)["EN"]


class _Parties(_Table):
    """Persons (keys 0..P-1) then companies (keys P..): each party row is its person or company."""

    def __init__(self, ds: Dataset, persons: _Persons, companies: _Companies) -> None:
        super().__init__(ds, m.PARTIES, persons.count + companies.count)
        self.persons, self.companies = persons, companies
        shared = ("ObjectVersion", "DisplayText", "CreationTime", "UpdateTime", "AggregateLastUpdateTimeUtc")
        self._set_fields(
            {
                "Id": self._id,
                **{name: self._delegate(name) for name in shared},
                "PartyName": self._party_name,
                "PartyType": lambda k, h: "Person" if k < persons.generated else "Company",
            }
        )

    def _source(self, key: int) -> tuple[_Table, int]:
        if key < self.persons.generated:
            return self.persons, key
        return self.companies, key - self.persons.generated

    def _delegate(self, name: str) -> Field:
        def field(k: int, h: int) -> Any:
            table, key = self._source(k)
            return table.fields[name](key, h)

        return field

    def _party_name(self, k: int, h: int) -> dict[str, str]:
        if k < self.persons.generated:
            return self.persons.full_name(k, h)
        return self.companies.company_name(k - self.persons.generated, h)

    def rand(self, key: int) -> int:
        table, source_key = self._source(key)
        return table.rand(source_key)

    def display(self, key: int) -> str:
        table, source_key = self._source(key)
        return table.fields["DisplayText"](source_key, table.rand(source_key))


def _days(d: date) -> int:
    return d.toordinal() - _EPOCH_ORDINAL


_SPECIAL_FROM_DAYS = {9: _days(date(2025, 12, 31)), 10: _days(date(2026, 1, 1)), 30: _days(date(2024, 2, 29))}
_FROM_DAYS_START = _days(date(2015, 1, 1))
_BIRTH_DAYS_START = _days(date(1950, 1, 1))
_SPECIAL_BIRTH_DATES = ("2000-02-29", "1970-01-01", "1999-12-31", "2000-01-01")
_SPECIAL_DOCUMENT_DATES = {9: _epoch(2025, 12, 31), 10: _epoch(2026, 1, 1)}
_SPECIAL_QUANTITIES = {3: Decimal("0.001"), 4: Decimal("1234567.891")}
_ODD_PART_NUMBERS = {7: "P'{:06d}", 17: 'P"{:06d}', 27: "P\\{:06d}"}
_CENT = Decimal("0.01")


class _Customers(_Table):
    def __init__(self, ds: Dataset, count: int) -> None:
        super().__init__(ds, m.CUSTOMERS, count)
        self._set_fields(
            {
                "Id": self._id,
                "ObjectVersion": self._object_version,
                "DisplayText": self._display,
                "Active": lambda k, h: (h >> 6) % 10 != 0,
                "Number": self._number,
                "CreditLimit": self._credit_limit,
                "FromDate": lambda k, h: _day(self._from_day(k, h)),
                "ThruDate": self._thru_date,
                "GracePeriodDays": lambda k, h: None if (h >> 24) % 10 < 3 else (h >> 28) % 15,
                "DefaultPaymentTermDays": lambda k, h: _PAYMENT_TERMS[(h >> 32) % len(_PAYMENT_TERMS)],
                **self._tracking_fields(),
                "Turnover": self._turnover,
                "Party": lambda k, h: self.ds.tables[m.PARTIES].ref(self._party(k, h)),
                "EnterpriseCompany": lambda k, h: self._lookup_ref(m.ENTERPRISE_COMPANIES, h, 72),
                "DefaultCurrency": lambda k, h: self._lookup_ref(m.CURRENCIES, h, 76),
                "SalesPerson": lambda k, h: self._lookup_ref(m.SALES_PERSONS, h, 80, null_in=4),
            }
        )

    def _party(self, k: int, h: int) -> int:
        return (h >> 36) % (self.ds.tables[m.PARTIES].generated)

    def _display(self, k: int, h: int) -> str:
        if k % 8 == 5:
            return AWKWARD_TEXTS[(k // 8) % len(AWKWARD_TEXTS)]
        return self.ds.tables[m.PARTIES].display(self._party(k, h))

    def _number(self, k: int, h: int) -> str:
        if k % 50 == 21:
            return f"CUST-{k + 1:011d}"  # exactly the 16-character maximum
        if k % 50 == 33:
            return f"O'{k + 1:07d}"
        return f"C{k + 1:07d}"

    def currency_key(self, h: int) -> int | None:
        return self._lookup_key(m.CURRENCIES, h, 76)

    def _lookup_key(self, name: str, h: int, shift: int, null_in: int = 10) -> int | None:
        if (h >> shift) % null_in == 0:
            return None
        return (h >> (shift + 4)) % self.ds.tables[name].generated

    def _lookup_ref(self, name: str, h: int, shift: int, null_in: int = 10) -> dict[str, str] | None:
        key = self._lookup_key(name, h, shift, null_in)
        return None if key is None else self.ds.tables[name].ref(key)

    def _credit_limit(self, k: int, h: int) -> dict[str, Any]:
        if k % 50 == 17:
            value = MAX_AMOUNT
        elif k % 50 == 3:
            value = _cents(0)
        else:
            value = _cents((h >> 44) % 10_000_000)
        currency = self.currency_key(h)
        return {"Value": value, "Currency": self.ds.currency_code(0 if currency is None else currency)}

    def _from_day(self, k: int, h: int) -> int:
        special = _SPECIAL_FROM_DAYS.get(k % 50)
        return special if special is not None else _FROM_DAYS_START + (h >> 48) % 4000

    def _thru_date(self, k: int, h: int) -> str | None:
        if (h >> 60) % 5 < 3:
            return None
        return _day(self._from_day(k, h) + 365 * (1 + (h >> 63) % 3))

    def _turnover(self, k: int, h: int) -> Decimal | None:
        if k % 50 == 27:
            return MAX_AMOUNT
        if k % 50 == 28:
            return -MAX_AMOUNT
        if (h >> 84) % 5 == 0:
            return None
        return _cents((h >> 88) % 2_000_000_000 - 100_000_000)


class _Products(_Table):
    def __init__(self, ds: Dataset, count: int) -> None:
        super().__init__(ds, m.PRODUCTS, count)
        self._set_fields(
            {
                "Id": self._id,
                "ObjectVersion": self._object_version,
                "DisplayText": lambda k, h: (
                    f"{self._part_number(k, h)} {self.product_name(k, h).get('EN', '')}"
                ),
                "PartNumber": self._part_number,
                "Name": self.product_name,
                "ShortName": self._short_name,
                "Description": self._description,
                "Active": lambda k, h: (h >> 6) % 12 != 0,
                "StandardPricePerLot": self._price,
                "GrossWeight": self._weight,
                **self._tracking_fields(),
                "ProductGroup": lambda k, h: self.ds.tables[m.PRODUCT_GROUPS].ref(self._group(h)),
                "MeasurementUnit": lambda k, h: self.ds.tables[m.MEASUREMENT_UNITS].ref(self.unit_key(h)),
            }
        )

    def _group(self, h: int) -> int:
        return (h >> 72) % len(LOOKUPS[m.PRODUCT_GROUPS])

    def unit_key(self, h: int) -> int:
        return (h >> 76) % len(LOOKUPS[m.MEASUREMENT_UNITS])

    def _part_number(self, k: int, h: int) -> str:
        return _ODD_PART_NUMBERS.get(k % 40, "P-{:06d}").format(k + 1)

    def _words(self, h: int) -> tuple[tuple[str, str], tuple[str, str], str]:
        adjective = _PRODUCT_ADJECTIVES[(h >> 10) % len(_PRODUCT_ADJECTIVES)]
        noun = _PRODUCT_NOUNS[(h >> 14) % len(_PRODUCT_NOUNS)]
        return adjective, noun, _PRODUCT_SIZES[(h >> 18) % len(_PRODUCT_SIZES)]

    def product_name(self, k: int, h: int) -> dict[str, str]:
        if k % 8 == 3:
            return dict(AWKWARD_PRODUCT_NAMES[(k // 8) % len(AWKWARD_PRODUCT_NAMES)])
        adjective, noun, size = self._words(h)
        return _ml(f"{adjective[0]} {noun[0]} {size}", f"{adjective[1]} {noun[1]} {size}")

    def _short_name(self, k: int, h: int) -> dict[str, str] | None:
        if (h >> 22) % 2 == 0:
            return None
        _, noun, _ = self._words(h)
        return _ml(noun[0].capitalize(), noun[1].capitalize())

    def _description(self, k: int, h: int) -> dict[str, str] | None:
        if k % 53 == 4:
            return {}
        if (h >> 24) % 5 < 2:
            return None
        adjective, noun, size = self._words(h)
        en = f"{adjective[0]} {noun[0]}, size {size}. Stock item."
        bg = f"{adjective[1]} {noun[1]}, размер {size}. Складова наличност."
        # Language codes arrive in either case from real instances.
        return {"en": en, "bg": bg} if k % 7 == 2 else _ml(en, bg)

    def _price(self, k: int, h: int) -> dict[str, Any] | None:
        if k % 50 == 17:
            return {"Value": MAX_AMOUNT, "Currency": "EUR"}
        if (h >> 28) % 10 == 0:
            return None
        return {"Value": _cents((h >> 32) % 1_000_000), "Currency": "EUR" if (h >> 52) % 2 else "BGN"}

    def _weight(self, k: int, h: int) -> Decimal | None:
        if k % 50 == 19:
            return MAX_WEIGHT
        if (h >> 56) % 5 == 0:
            return None
        return _thousandths((h >> 60) % 100_000)


class _SalesOrders(_Table):
    def __init__(self, ds: Dataset, count: int) -> None:
        super().__init__(ds, m.SALES_ORDERS, count)
        self._line_salt = _mix(self._salt ^ 0x11AE5)
        self._set_fields(
            {
                "Id": self._id,
                "ObjectVersion": self._object_version,
                "DisplayText": lambda k, h: f"SO {k + 1:08d}",
                "DocumentNo": lambda k, h: f"{k + 1:08d}",
                "DocumentDate": lambda k, h: iso_datetime(self._document_date(k, h)),
                "State": lambda k, h: _STATES_BY_WEIGHT[(h >> 10) % len(_STATES_BY_WEIGHT)],
                "Void": lambda k, h: (h >> 16) % 20 == 0,
                "PaymentDueDate": self._payment_due,
                "RequiredDeliveryDate": self._delivery,
                "Notes": self._notes,
                **self._tracking_fields(),
                "Customer": lambda k, h: self.ds.tables[m.CUSTOMERS].ref(self._customer(h)),
                "DocumentCurrency": lambda k, h: self.ds.tables[m.CURRENCIES].ref(self.currency_key(h)),
            }
        )

    def line_count(self, k: int) -> int:
        return 1 + _mix(self._line_salt ^ k) % 5

    def _customer(self, h: int) -> int:
        return (h >> 20) % (self.ds.tables[m.CUSTOMERS].generated)

    def currency_key(self, h: int) -> int:
        customers = self.ds.tables[m.CUSTOMERS]
        assert isinstance(customers, _Customers)
        customer = self._customer(h)
        key = customers.currency_key(customers.rand(customer))
        return 0 if key is None else key

    def _document_date(self, k: int, h: int) -> int:
        special = _SPECIAL_DOCUMENT_DATES.get(k % 50)
        if special is not None:
            return special
        return _midnight(self._stamps(k, h)[2]) - _DAY * ((h >> 56) % 60)

    def _payment_due(self, k: int, h: int) -> str | None:
        if (h >> 62) % 10 < 3:
            return None
        return iso_datetime(self._document_date(k, h) + 30 * _DAY)

    def _delivery(self, k: int, h: int) -> str | None:
        if k % 6 == 1:
            return iso_datetime(DELIVERY_BOUNDARIES[(k // 6) % len(DELIVERY_BOUNDARIES)])
        if (h >> 66) % 5 == 0:
            return None
        return iso_datetime(self._document_date(k, h) + 3600 * (24 + (h >> 70) % (24 * 14)))

    def _notes(self, k: int, h: int) -> str | None:
        slot = k % 8
        if slot in (0, 4):
            return None
        if slot == 1:
            return AWKWARD_NOTES[(k // 8) % len(AWKWARD_NOTES)]
        if slot == 2:
            return ""
        return _DELIVERY_NOTES[(h >> 80) % len(_DELIVERY_NOTES)]


class _OrderLines(_Table):
    """Lines of order o have keys o*8+1 .. o*8+n; positions need a prefix sum of line counts."""

    def __init__(self, ds: Dataset, orders: _SalesOrders) -> None:
        super().__init__(ds, m.SALES_ORDER_LINES, 0)
        self.orders = orders
        self._starts: array[int] | None = None
        self._lock = threading.Lock()
        self._last_currency: tuple[int, str] = (-1, "")
        self._last_product: tuple[int, tuple[int, int]] = (-1, (0, 0))
        self._set_fields(
            {
                "Id": self._id,
                "ObjectVersion": self._object_version,
                "LineNo": lambda k, h: 10 * (k & 7),
                "Quantity": self._quantity,
                "UnitPrice": self._unit_price,
                "LineAmount": self._line_amount,
                "ProductDescription": self._description,
                "SalesOrder": lambda k, h: self.orders.ref(k >> 3),
                "Product": lambda k, h: self.ds.tables[m.PRODUCTS].ref(self._product(h)),
            }
        )

    @property
    def starts(self) -> array[int]:
        """starts[o] = position of order o's first line; built on first use (O(orders))."""
        if self._starts is None:
            with self._lock:
                if self._starts is None:
                    counts = (self.orders.line_count(o) for o in range(self.orders.generated))
                    self._starts = array("q", accumulate(counts, initial=0))
        return self._starts

    @property
    def count(self) -> int:
        return self.starts[-1] if self.order is None else len(self.order)

    def key_at(self, pos: int) -> int:
        if self.order is not None:  # lines of deleted orders are gone
            return self.order[pos]
        order = bisect_right(self.starts, pos) - 1
        return order * 8 + pos - self.starts[order] + 1

    def row_keys(self) -> Iterable[int]:
        if self.order is not None:
            return self.order
        return (key for order in range(self.orders.generated) for key in self.keys_of(order))

    def keys_of(self, order: int) -> range:
        return range(order * 8 + 1, order * 8 + 1 + self.orders.line_count(order))

    def id_of_key(self, key: int) -> str:
        return self._guid(key >> 3, key & 7, key)

    def _product(self, h: int) -> int:
        return (h >> 10) % (self.ds.tables[m.PRODUCTS].generated)

    def _product_row(self, k: int, h: int) -> tuple[int, int]:
        """(key, hash) of the line's product; two fields of one line ask for it."""
        last_key, product = self._last_product
        if last_key != k:
            key = self._product(h)
            product = (key, self.ds.tables[m.PRODUCTS].rand(key))
            self._last_product = (k, product)
        return product

    def _quantity_value(self, k: int, h: int) -> Decimal:
        special = _SPECIAL_QUANTITIES.get((k >> 3) % 40)
        return special if special is not None else _thousandths(1 + (h >> 30) % 100_000)

    def _quantity(self, k: int, h: int) -> dict[str, Any]:
        products = self.ds.tables[m.PRODUCTS]
        assert isinstance(products, _Products)
        unit = products.unit_key(self._product_row(k, h)[1])
        return {"Value": self._quantity_value(k, h), "Unit": LOOKUPS[m.MEASUREMENT_UNITS][unit][0]}

    def _price_value(self, h: int) -> Decimal:
        return _cents(1 + (h >> 50) % 10_000_000)

    def _currency(self, k: int) -> str:
        """The order's document currency; every line of one order asks for it twice."""
        order = k >> 3
        last_order, code = self._last_currency
        if last_order != order:
            code = self.ds.currency_code(self.orders.currency_key(self.orders.rand(order)))
            self._last_currency = (order, code)
        return code

    def _unit_price(self, k: int, h: int) -> dict[str, Any]:
        return {"Value": self._price_value(h), "Currency": self._currency(k)}

    def _line_amount(self, k: int, h: int) -> dict[str, Any]:
        amount = (self._quantity_value(k, h) * self._price_value(h)).quantize(_CENT, rounding=ROUND_HALF_UP)
        return {"Value": amount, "Currency": self._currency(k)}

    def _description(self, k: int, h: int) -> dict[str, str] | None:
        if (h >> 80) % 5 == 0:
            return None
        products = self.ds.tables[m.PRODUCTS]
        assert isinstance(products, _Products)
        return products.product_name(*self._product_row(k, h))


class TouchError(ValueError):
    """A refused `Dataset.touch`; `field` names the argument at fault (the admin endpoint reports it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class CreateError(TouchError):
    """A refused `Dataset.create`; `field` names the argument at fault, as for `TouchError`."""


class DeleteError(TouchError):
    """A refused `Dataset.delete`; `field` names the argument at fault, as for `TouchError`."""


class CustomPropertyError(TouchError):
    """A refused `Dataset.add_custom_property`; `field` names the argument at fault."""


_CUSTOM_VALUES = ("Red", "Green", "Blue", "Ярко жълто")


def _custom_values(code: str) -> Field:
    """Values of a custom property: one row in five null, the others one of four list values."""
    salt = zlib.crc32(code.encode())

    def value(key: int, h: int) -> dict[str, Any] | None:
        pick = _mix(salt ^ key) % 5
        if pick == 4:
            return None
        text = _CUSTOM_VALUES[pick]
        return {"Value": text, "ValueId": f"{pick:08x}-0000-4000-8000-{salt:012x}", "Description": _ml(text)}

    return value


CREATABLE = (m.CUSTOMERS, m.PRODUCTS)


def _stamp(at: datetime, error: type[TouchError]) -> str:
    """`at` as a wire date-time in whole UTC seconds; a naive `at` raises `error`."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise error("at", f"at must be an aware datetime (UTC), got the naive {at.isoformat()}")
    return iso_datetime(calendar.timegm(at.astimezone(timezone.utc).timetuple()))


def _key_of_id(table: _Table, ident: str) -> int | None:
    """The key of the row with Id `ident` (lower case), found by bisection in Id order."""
    pos = bisect_left(range(table.count), ident, key=lambda p: table.id_of_key(table.key_at(p)))
    if pos < table.count and table.id_of_key(table.key_at(pos)) == ident:
        return table.key_at(pos)
    return None


class _SharedLock:
    """Many holders of `shared()` at once, or one of `exclusive()`; a waiting `exclusive()` goes
    first, so a steady stream of requests cannot starve a creation."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._exclusive and not self._waiting)
            self._shared += 1
        try:
            yield
        finally:
            with self._condition:
                self._shared -= 1
                self._condition.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._condition:
            self._waiting += 1
            self._condition.wait_for(lambda: not self._exclusive and not self._shared)
            self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._condition:
                self._exclusive = False
                self._condition.notify_all()


class _Rows(Sequence[dict[str, Any]]):
    """`Dataset.rows()`: a lazy, indexable view; each access generates the full record."""

    def __init__(self, ds: Dataset, name: str) -> None:
        self._ds, self._name = ds, name

    def __len__(self) -> int:
        return self._ds.count(self._name)

    def __getitem__(self, index: int | slice) -> Any:  # type: ignore[override]
        if isinstance(index, slice):
            return [self._ds.record(self._name, i) for i in range(*index.indices(len(self)))]
        size = len(self)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError(f"{self._name} has {size} rows; index {index} is out of range")
        return self._ds.record(self._name, index)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self._ds.record(self._name, i)


class Dataset:
    """All entity sets of one sandbox instance; `scale` is the number of customers, `end` the
    latest generated update stamp (an aware datetime; whole seconds count)."""

    def __init__(self, scale: int = 1000, seed: int = 0, end: datetime = FIXED_END) -> None:
        if scale < 1:
            raise ValueError(f"scale must be at least 1, got {scale}")
        if end.tzinfo is None or end.utcoffset() is None:
            raise ValueError(f"end must be an aware datetime (UTC), got the naive {end.isoformat()}")
        if end < EARLIEST_END:
            raise ValueError(
                f"end must be {EARLIEST_END.isoformat()} or later (rows stand on fixed edge-case instants "
                f"up to then), got {end.isoformat()}"
            )
        self.scale = scale
        self.seed = seed % (1 << 64)
        self.end = end.astimezone(timezone.utc).replace(microsecond=0)
        self.shift = calendar.timegm(self.end.timetuple()) - WINDOW_END
        persons = _Persons(self, max(10, scale // 5))
        companies = _Companies(self, max(10, scale // 20), first_party=persons.count)
        orders = _SalesOrders(self, max(10, scale // 2))
        tables: list[_Table] = [
            _Customers(self, scale),
            _Products(self, max(20, scale // 10)),
            orders,
            _OrderLines(self, orders),
            persons,
            companies,
            _Parties(self, persons, companies),
            *(_Lookup(self, name) for name in LOOKUPS),
        ]
        self.tables: dict[str, _Table] = {t.name: t for t in tables}
        self.entity_sets: tuple[str, ...] = tuple(name for name in m.ENTITY_SETS if name in self.tables)
        # The model this instance serves: the static one plus custom properties added at runtime.
        self._entities: dict[str, m.EntitySet] = dict(m.ENTITY_SETS)
        self._touch_lock = threading.Lock()
        self._positions = _SharedLock()

    def entity(self, name: str) -> m.EntitySet:
        """The entity set as this instance serves it, or the Domain API's 404 for an unknown one."""
        found = self._entities.get(name)
        return found if found is not None else m.entity_set(name)

    def entities(self) -> tuple[m.EntitySet, ...]:
        """Every entity set as served, in model order (what `$metadata` describes)."""
        return tuple(self._entities.values())

    def add_custom_property(self, entity_set: str, code: str) -> str:
        """Add `CustomProperty_<code>` to an entity set, as an ERP.net administrator would.

        From the next request on, `$metadata` declares it (type `Erp.CustomPropertyValue`) and
        `$select` may name it; rows carry `{"Value", "ValueId", "Description"}` or null, a pure
        function of the row and the code. Nothing else changes: it is not in the default selection.
        Returns the property name; raises CustomPropertyError for an unknown set, a code that is
        not an identifier, or a property the set already has.
        """
        entity = self._entities.get(entity_set)
        if entity is None or entity_set not in self.tables:
            raise CustomPropertyError(
                "entity_set", f"unknown entity set {entity_set!r}; known: {', '.join(self._entities)}"
            )
        if not isinstance(code, str) or not code.isidentifier() or not code.isascii():
            raise CustomPropertyError("code", f"code must be letters, digits and underscores, got {code!r}")
        prop = m.custom_property(code)
        if prop.name in entity.by_name:
            raise CustomPropertyError("code", f"{entity_set} already has {prop.name}")
        table = self.tables[entity_set]
        with self._touch_lock:
            table.fields = {**table.fields, prop.name: _custom_values(code)}
            self._entities[entity_set] = m.EntitySet(
                entity.name, entity.type_name, (*entity.properties, prop)
            )
            table.revision += 1
        return prop.name

    def table(self, name: str) -> _Table:
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"unknown entity set {name!r}; known: {', '.join(self.tables)}") from None

    def count(self, entity_set: str) -> int:
        return self.table(entity_set).count

    def rows(self, entity_set: str) -> Sequence[dict[str, Any]]:
        """Full records in Id order, exactly as the API serialises them (without @odata annotations)."""
        self.table(entity_set)
        return _Rows(self, entity_set)

    def record(
        self,
        entity_set: str,
        pos: int,
        names: Iterable[str] | None = None,
        *,
        children: bool = True,
        annotate: bool = False,
    ) -> dict[str, Any]:
        """Row `pos` with the named properties (default: all) and, if asked, its child collections;
        `annotate` puts "@odata.id" first in the row and in each child, as on the wire."""
        table = self.table(entity_set)
        key = table.key_at(pos)
        row = table.record(key, table.fields if names is None else names, annotate)
        if children and table.entity.children:
            row["Lines"] = self.lines(key, annotate=annotate)
        return row

    def lines(self, order: int, *, annotate: bool = False) -> list[dict[str, Any]]:
        """Full line records of sales order `order`, in LineNo order."""
        lines = self.table(m.SALES_ORDER_LINES)
        assert isinstance(lines, _OrderLines)
        return [lines.record(key, lines.fields, annotate) for key in lines.keys_of(order)]

    def id_at(self, entity_set: str, pos: int) -> str:
        table = self.table(entity_set)
        return table.id_of_key(table.key_at(pos))

    def values(self, entity_set: str, name: str) -> Iterator[Any]:
        """One property's wire values for every row, in Id order (for filter and sort columns)."""
        table = self.table(entity_set)
        field, rand, touched = table.fields[name], table.rand, table.touched
        if not touched:
            return (field(key, rand(key)) for key in table.row_keys())
        return (
            patch[name]
            if (patch := touched.get(key)) is not None and name in patch
            else field(key, rand(key))
            for key in table.row_keys()
        )

    def revision(self, entity_set: str) -> int:
        """How many changes (touch, create, delete) `entity_set` had so far; caches of its rows key on it."""
        return self.table(entity_set).revision

    def touch(self, entity_set: str, ids: Sequence[str], at: datetime) -> int:
        """Update rows as an edit in ERP.net would, so that offline runs meet changed data.

        The rows with these Ids get `AggregateLastUpdateTimeUtc` = `at` (whole seconds, UTC),
        `UpdateTime` = `at` where the set has it and `ObjectVersion` + 1; nothing else changes
        (a touched order keeps its lines; a touched person leaves its party alone). Returns the
        number of rows changed. Raises TouchError (a ValueError) naming unknown Ids, a naive
        `at` or a set without `AggregateLastUpdateTimeUtc` (order lines: touch their order).
        """
        table = self._aggregate_root(entity_set, ids, TouchError, "touch")
        stamp = _stamp(at, TouchError)
        with self._touch_lock:
            keys = self._keys_of(table, ids, TouchError)
            if not keys:
                return 0
            touched = dict(table.touched)
            for key in keys:
                before = touched.get(key) or {
                    "ObjectVersion": table.fields["ObjectVersion"](key, table.rand(key))
                }
                patch = {"ObjectVersion": before["ObjectVersion"] + 1, "AggregateLastUpdateTimeUtc": stamp}
                if "UpdateTime" in table.fields:
                    patch["UpdateTime"] = stamp
                touched[key] = {**before, **patch}  # a created row keeps its CreationTime
            table.touched = touched  # the new values first, then the revision that announces them
            table.revision += 1
        return len(keys)

    def create(self, entity_set: str, count: int, at: datetime) -> list[str]:
        """Insert `count` new rows, as users creating records in ERP.net would during a run.

        Each new row is generated like the others (its own Number, CreditLimit, ...) and gets
        `CreationTime` = `UpdateTime` = `AggregateLastUpdateTimeUtc` = `at` (whole seconds, UTC)
        and `ObjectVersion` 1. Its Id is a fresh GUID that sorts among the existing rows, not
        after them: keyset paging and Id ranges meet new rows anywhere, as with real random GUIDs.
        Returns the new Ids in creation order. Only customers and products can be created (their
        rows reference others but nothing references them); other sets, a count below 1 or a
        naive `at` raise CreateError (a ValueError) and change nothing.
        """
        table = self.tables.get(entity_set)
        if table is None or entity_set not in CREATABLE:
            raise CreateError(
                "entity_set",
                f"the sandbox creates rows of {' and '.join(CREATABLE)} only, not {entity_set!r}",
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise CreateError("count", f"count must be a whole number of rows >= 1, got {count!r}")
        stamp = _stamp(at, CreateError)
        with self._touch_lock, self._positions.exclusive():
            first = table.generated + len(table.created_ids)
            keys = range(first, first + count)
            table.created_ids = {**table.created_ids, **{key: table.created_id(key) for key in keys}}
            order = array("q", table.row_keys())
            for key in keys:
                order.insert(bisect_left(order, table.id_of_key(key), key=table.id_of_key), key)
            stamps = {"CreationTime": stamp, "UpdateTime": stamp, "AggregateLastUpdateTimeUtc": stamp}
            table.touched = {**table.touched, **{key: {"ObjectVersion": 1, **stamps} for key in keys}}
            table.order = order
            table.revision += 1
        return [table.created_ids[key] for key in keys]

    def delete(self, entity_set: str, ids: Sequence[str]) -> int:
        """Delete rows as a user deleting them in ERP.net would; nothing else changes.

        The rows leave `order`, as created ones enter it, so every answer from the next request on
        lacks them; the other rows keep their generated values. A deleted sales order takes its
        lines with it, and a person or company its party (and the other way round), as in ERP.net;
        references to deleted rows elsewhere (an order's `Customer`) stay as they were. Returns the
        number of rows deleted from `entity_set`. Unknown or already deleted Ids, an unknown set and
        sets without `AggregateLastUpdateTimeUtc` (order lines: delete their order) raise
        DeleteError (a ValueError) and change nothing.
        """
        table = self._aggregate_root(entity_set, ids, DeleteError, "delete")
        with self._touch_lock, self._positions.exclusive():
            keys = self._keys_of(table, ids, DeleteError)
            gone: dict[str, set[int]] = {}
            for key in keys:
                for name, cascaded in self._cascade(table, key):
                    gone.setdefault(name, set()).update(cascaded)
            for name, removed in gone.items():
                target = self.tables[name]
                target.order = array("q", (key for key in target.row_keys() if key not in removed))
                target.revision += 1
        return len(keys)

    def _cascade(self, table: _Table, key: int) -> Iterator[tuple[str, Iterable[int]]]:
        """(entity set, keys) that go when row `key` of `table` is deleted."""
        yield table.name, (key,)
        if isinstance(table, _SalesOrders):
            lines = self.tables[m.SALES_ORDER_LINES]
            assert isinstance(lines, _OrderLines)
            yield lines.name, lines.keys_of(key)
        elif isinstance(table, _Parties):
            source, source_key = table._source(key)
            yield source.name, (source_key,)
        elif isinstance(table, _Persons | _Companies):
            yield m.PARTIES, (table.first_party + key if isinstance(table, _Companies) else key,)

    def _aggregate_root(
        self, entity_set: str, ids: Sequence[str], error: type[TouchError], verb: str
    ) -> _Table:
        """The table of a set whose rows `verb` may change, after the checks touch and delete share."""
        table = self.tables.get(entity_set)
        if table is None:
            raise error("entity_set", f"unknown entity set {entity_set!r}; known: {', '.join(self.tables)}")
        if "AggregateLastUpdateTimeUtc" not in table.fields:
            raise error(
                "entity_set",
                f"{entity_set} has no AggregateLastUpdateTimeUtc (not an aggregate root): {verb} its owner",
            )
        if isinstance(ids, str):
            raise error("ids", f"ids must be a list of Ids, not the single string {ids!r}")
        return table

    def _keys_of(self, table: _Table, ids: Sequence[str], error: type[TouchError]) -> list[int]:
        """Keys of the rows with these Ids (any case, a repeat once); raises naming missing ones."""
        keys, unknown = [], []
        for ident in dict.fromkeys(ident.lower() for ident in ids):
            key = _key_of_id(table, ident)
            if key is None:
                unknown.append(ident)
            else:
                keys.append(key)
        if unknown:
            raise error("ids", f"no row of {table.name} has the Id(s) {', '.join(unknown)}")
        return keys

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold off `create` while positions are in use: a request that found rows by position
        reads them by position too, and a creation in between would shift them (pages would skip
        or repeat a row). Any number of readers at once."""
        with self._positions.shared():
            yield

    def currency_code(self, key: int) -> str:
        return LOOKUPS[m.CURRENCIES][key][0]
