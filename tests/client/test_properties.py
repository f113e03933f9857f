"""Properties that must hold for every input (hypothesis), not only for the examples we thought of.

- No value through ``literal()`` breaks out of its literal: the sandbox's own $filter parser reads
  ``X eq <literal> and Id eq 1`` as exactly that comparison, then the untouched ``Id eq 1``.
- The EDMX parser, the error-body parser, the page decoder and the destination check never raise
  anything but ``ErpNetError`` (or return), whatever bytes or text a server sends.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import string
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from urllib3.util import parse_url

from airflow_provider_erpnet.client import ErpNetError, ODataQuery, literal, parse_metadata
from airflow_provider_erpnet.client.odata import iter_pages
from airflow_provider_erpnet.client.redact import one_line
from airflow_provider_erpnet.client.transport import decode_json, error_fields
from airflow_provider_erpnet.client.urls import Destination, origin, sent_origin
from airflow_provider_erpnet.sandbox.filters import And, Compare, Literal, Name, parse

PROPERTY = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
API = "http://127.0.0.1:8080/api/domain/odata/"
TAIL = Compare(Name("Id"), "eq", Literal("number", 1, "1"))

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False),
    st.uuids(),
    st.dates(min_value=dt.date(1000, 1, 1)),
    st.datetimes(min_value=dt.datetime(1000, 1, 2), timezones=st.just(dt.timezone.utc)),
)


@PROPERTY
@given(st.text())
def test_a_string_never_breaks_out_of_its_literal(text: str) -> None:
    quoted = literal(text)
    assert parse(f"Name eq {quoted} and Id eq 1") == And(
        Compare(Name("Name"), "eq", Literal("string", text, quoted)), TAIL
    )


@PROPERTY
@given(values)
def test_every_literal_is_one_token(value: Any) -> None:
    tree = parse(f"Value eq {literal(value)} and Id eq 1")
    assert isinstance(tree, And) and tree.right == TAIL
    assert isinstance(tree.left, Compare) and tree.left.left == Name("Value")
    assert isinstance(tree.left.right, Literal) and tree.left.right.text == literal(value)


# Structured inputs reach deeper than random bytes: XML made of EDMX's own vocabulary.
_TAGS = ["Edmx", "DataServices", "Schema", "EntityType", "ComplexType", "EnumType", "Member", "Key",
         "PropertyRef", "Property", "NavigationProperty", "EntityContainer", "EntitySet"]  # fmt: skip
_ATTRIBUTES = ["Name", "Type", "BaseType", "Namespace", "Alias", "EntityType", "Nullable", "Precision",
               "Scale", "MaxLength", "OpenType"]  # fmt: skip
_NAMESPACES = {
    "Edmx": "http://docs.oasis-open.org/odata/ns/edmx",
    "DataServices": "http://docs.oasis-open.org/odata/ns/edmx",
}
_EDM = "http://docs.oasis-open.org/odata/ns/edm"
_attribute_values = st.one_of(
    st.sampled_from(
        ["Erp.T", "Erp.A", "T", "A", "Collection(Erp.T)", "Edm.Decimal", "18", "²", "-1", "true", "Erp"]
    ),
    st.text(max_size=8),
)


def _element(children: st.SearchStrategy[list[str]]) -> st.SearchStrategy[str]:
    def build(tag: str, attributes: dict[str, str], inner: list[str]) -> str:
        namespace = _NAMESPACES.get(tag, _EDM)
        attrs = "".join(f' {name}="{_escape(value)}"' for name, value in attributes.items())
        return f'<{tag} xmlns="{namespace}"{attrs}>{"".join(inner)}</{tag}>'

    return st.builds(
        build,
        st.sampled_from(_TAGS),
        st.dictionaries(st.sampled_from(_ATTRIBUTES), _attribute_values, max_size=4),
        children,
    )


def _escape(text: str) -> str:
    return (
        "".join(c for c in text if c.isprintable())
        .replace("&", "&amp;")
        .replace('"', "&quot;")
        .replace("<", "&lt;")
    )


edmx_documents = st.recursive(
    st.just([]), lambda children: st.lists(_element(children), max_size=4), max_leaves=30
).map(
    lambda children: (
        '<Edmx xmlns="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0"><DataServices>'
        f'<Schema xmlns="{_EDM}" Namespace="Erp">{"".join(_flatten(children))}</Schema></DataServices></Edmx>'
    ).encode()
)


def _flatten(children: Any) -> list[str]:
    return [child for child in children if isinstance(child, str)] if isinstance(children, list) else []


@PROPERTY
@given(st.one_of(st.binary(max_size=2000), edmx_documents))
def test_the_edmx_parser_raises_only_erpnet_errors(document: bytes) -> None:
    with contextlib.suppress(ErpNetError):
        parse_metadata(document)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
error_bodies = st.one_of(
    st.binary(max_size=2000),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries(
        {"error": st.fixed_dictionaries({"code": json_values, "message": json_values, "type": json_values})}
    ).map(lambda value: json.dumps(value).encode()),
)


@PROPERTY
@given(error_bodies)
@example(b'{"error": ' + b"[" * 5000 + b"]" * 5000 + b"}")
@example(b'{"error": {"message": "' + b"\\u0000" * 100 + b'"}}')
def test_the_error_body_parser_returns_one_line_texts_for_any_bytes(body: bytes) -> None:
    for field in error_fields(body):
        assert field is None or (isinstance(field, str) and field == one_line(field) and len(field) <= 1000)


pages = st.one_of(
    st.binary(max_size=2000),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries(
        {"value": st.one_of(json_values, st.lists(json_values, max_size=3))},
        optional={
            "@odata.nextLink": st.one_of(
                st.text(max_size=30), json_values, st.just(f"{API}Things?$skiptoken=2")
            )
        },
    ).map(lambda value: json.dumps(value).encode()),
)


@PROPERTY
@given(pages)
@example(b'{"value": [' + b"[" * 5000 + b"]" * 5000 + b"]}")
@example(b'{"value": [1, "two", null]}')
@example(b'{"value": [], "@odata.nextLink": "http://[::1"}')
def test_the_page_decoder_raises_only_erpnet_errors(body: bytes) -> None:
    def fetch_json(url: str, params: Any) -> Any:
        return decode_json(body, url)

    with contextlib.suppress(ErpNetError):
        for page in iter_pages(fetch_json, API, ODataQuery("Things", page_size=2), expected=10):
            assert all(isinstance(record, dict) for record in page.records)


url_text = st.one_of(
    st.text(alphabet=string.printable + "\\@:/[]%é", max_size=60).map(lambda tail: "http://" + tail),
    st.builds(
        lambda user, host, path: f"http://{user}127.0.0.1:8080{host}{path}",
        st.sampled_from(["", "me@", "127.0.0.1:9@", "a:b@"]),
        st.sampled_from(["", "\\@127.0.0.1:9", "@evil", ":80", "%2F", "\\", "#@evil"]),
        st.text(alphabet=string.printable + "\\@é", max_size=30),
    ),
)


@PROPERTY
@given(url_text)
def test_a_url_the_destination_lets_through_goes_to_its_origin(url: str) -> None:
    guard = Destination(
        API, setting="api_url", service="Domain API", carries="the token", allow_plain_http=False
    )
    try:
        refusal = guard.refusal(url)
    except ErpNetError:
        return
    if refusal is None:
        assert origin(url) == sent_origin(url) == guard.origin
        parsed = parse_url(url)
        assert (parsed.host, parsed.port or 80) == ("127.0.0.1", 8080)


def test_decimals_keep_their_digits() -> None:
    assert literal(Decimal("1e-30")) == "0.000000000000000000000000000001"
