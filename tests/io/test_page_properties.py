"""Whatever a page body holds, reading and writing it raises nothing but ``ErpNetError`` (hypothesis).

``tests/client/test_properties.py`` covers the generic page decoder; the extraction decodes pages
2 and on with the typed ``PageCodec`` and writes them on its fast path (or the exact path when a
value needs it), so the same property is checked here for that whole chain: the body through
``transport.decode_json`` with the codec (as the transport calls it) and the pager, the Ids
through the deduper, the records into every format. Columns of every kind, values of any JSON type, numbers
far outside any precision: a server's answer may be wrong, never a crash.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from airflow_provider_erpnet.client import ErpNetError, ODataQuery
from airflow_provider_erpnet.client.jsonutil import loads
from airflow_provider_erpnet.client.odata import iter_pages
from airflow_provider_erpnet.client.transport import decode_json
from airflow_provider_erpnet.io import Column, OutputWriter
from airflow_provider_erpnet.io.dedupe import Deduper
from airflow_provider_erpnet.io.pagecodec import PageCodec

PROPERTY = settings(
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
API = "http://127.0.0.1:8080/api/domain/odata/"
COLUMNS = [
    Column("Id", "string", nullable=False, source_type="Edm.Guid"),
    Column("Name", "string"),
    Column("Active", "bool"),
    Column("Lines", "int32"),
    Column("Serial", "int64"),
    Column("Value", "decimal", precision=18, scale=2, source_type="Edm.Decimal"),
    Column("Rate", "decimal", source_type="Edm.Decimal"),
    Column("DocumentDate", "date"),
    Column("CreationTime", "timestamp"),
    Column("TotalAmount", "amount", precision=18, scale=2, source_type="Erp.Amount"),
    Column("Quantity", "quantity", precision=18, scale=3, source_type="Erp.Quantity"),
    Column("Notes", "multilang", source_type="Erp.MultilanguageString"),
    Column("Customer", "reference"),
    Column("State", "enum"),
    Column("Extra", "json"),
]
FORMATS = ["jsonl", "csv", "parquet"]

# Raw JSON number texts, spliced in unquoted: what json.dumps cannot produce.
NUMBERS = ["1e400000000", "-1e-400000000", "0E-400000000", "12.3456", "9" * 40, "1e309", "-0.0", "2e-5"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(
        [
            "2020-05-08",
            "2020-05-08T07:11:12Z",
            "2020-05-08T07:11:12.1234567+02:00",
            "0001-01-01T00:00:00Z",
            "9999-12-31",
            "2020-02-30",
            "00000000-0000-0000-0000-000000000001",
            "\ud800",
        ]
    ),
    st.sampled_from(NUMBERS).map(lambda text: _Raw(text)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["Value", "Currency", "Unit", "@odata.id", "EN", "BG", "x"]), inner, max_size=3
        ),
    ),
    max_leaves=8,
)


def _decimals(places: int) -> st.SearchStrategy[_Raw]:
    return st.decimals(allow_nan=False, allow_infinity=False, places=places).map(lambda d: _Raw(str(d)))


def _timestamp(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


_texts = st.text(max_size=12)
# What each kind's values look like from an honest server (an occasional hostile value mixed in
# by ``rows``), so rows get far enough to reach every conversion and writer.
_HONEST = {
    "string": _texts,
    "bool": st.booleans(),
    "int32": st.integers(-(2**31), 2**31 - 1),
    "int64": st.integers(-(2**63), 2**63 - 1),
    "decimal": _decimals(2),
    "date": st.dates().map(dt.date.isoformat),
    "timestamp": st.datetimes(
        timezones=st.sampled_from([dt.timezone.utc, dt.timezone(dt.timedelta(hours=2))])
    ).map(_timestamp),
    "amount": st.fixed_dictionaries(
        {"Value": st.one_of(st.none(), _decimals(2)), "Currency": st.one_of(st.none(), _texts)}
    ),
    "quantity": st.fixed_dictionaries(
        {"Value": st.one_of(st.none(), _decimals(3)), "Unit": st.one_of(st.none(), _texts)}
    ),
    "multilang": st.dictionaries(st.sampled_from(["EN", "BG", "@odata.type"]), _texts, max_size=2),
    "reference": st.fixed_dictionaries({"@odata.id": _texts}),
    "enum": _texts,
    "json": values,
}


honest_rows = st.fixed_dictionaries(
    {"Id": st.uuids().map(str)},
    optional={c.name: st.one_of(st.none(), _HONEST[c.kind]) for c in COLUMNS if c.name != "Id"},
)
# An honest row, or one with a single column replaced by anything at all.
rows = st.one_of(
    honest_rows,
    st.builds(
        lambda row, name, bad: {**row, name: bad},
        honest_rows,
        st.sampled_from([c.name for c in COLUMNS]),
        values,
    ),
)
records = st.lists(rows, max_size=4)


bodies = st.one_of(
    st.binary(max_size=500),
    st.builds(
        lambda rows, link: {"value": rows, **link}, records, st.sampled_from([{}, {"@odata.nextLink": 5}])
    ),
    values.map(lambda value: {"value": value}),
)


class _Raw:
    """A JSON number written as its text (``1e400000000`` has no float)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _encode(body: Any) -> bytes:
    """The body's JSON, with each ``_Raw`` number spliced in as written."""
    if isinstance(body, bytes):
        return body
    raws: list[str] = []

    def default(value: Any) -> str:
        raws.append(value.text)
        return f"\0raw{len(raws) - 1}\0"

    text = json.dumps(body, default=default)
    for index, raw in enumerate(raws):
        text = text.replace(f'"\\u0000raw{index}\\u0000"', raw)
    return text.encode("utf-8", "surrogatepass")


def _read_and_write(body: bytes, directory: Path, fast: bool) -> None:
    """The extraction's chain for one answer: pager, deduper, a writer of each format."""
    decode = PageCodec(COLUMNS).decode if fast else None

    def fetch_json(url: str, params: Any) -> Any:
        return decode_json(body, url, decode=decode)

    for number, page in enumerate(iter_pages(fetch_json, API, ODataQuery("Things", page_size=4), expected=4)):
        Deduper().observe(page.records)
        for fmt in FORMATS:
            with OutputWriter(directory / f"page-{number}.{fmt}", None, COLUMNS) as out:
                out.write_page(page.records)
                out.commit()


@pytest.mark.parametrize("fast", [True, False], ids=["page codec", "generic decoder"])
@PROPERTY
@given(body=bodies)
@example(body={"value": [{"Id": "a", "Value": _Raw("1e400000000")}]})
@example(body={"value": [{"Id": "a", "TotalAmount": {"Value": _Raw("-1e-400000000"), "Currency": "EUR"}}]})
@example(
    body={
        "value": [
            {"Id": "a", "DocumentDate": "2020-02-30", "CreationTime": "2020-05-08T07:11:12.1234567+02:00"}
        ]
    }
)
@example(body={"value": [{"Id": "a", "Lines": 2**40, "Serial": _Raw("9" * 40)}]})
@example(body={"value": [{"Id": "a", "Notes": {"EN": 1}, "Customer": {"@odata.id": 5}, "Name": "\ud800"}]})
@example(body={"value": [{"Id": None}, {"Id": 5}, {}]})
def test_any_page_is_read_and_written_or_refused_with_an_erpnet_error(
    body: Any, fast: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    directory = tmp_path_factory.mktemp("page")
    with contextlib.suppress(ErpNetError):
        _read_and_write(_encode(body), directory, fast)


def test_the_raw_numbers_reach_the_decoder_as_written() -> None:
    """The strategy's spliced numbers are real JSON numbers, not strings (else the property is weaker)."""
    assert loads(_encode({"value": [{"Value": _Raw("1e400000000")}]})) == {
        "value": [{"Value": loads(b"1e400000000")}]
    }
