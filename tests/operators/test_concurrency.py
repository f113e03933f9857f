"""``max_concurrency``: Id ranges of one extraction read at once, into the output one stream writes.

Against the sandbox over HTTP. That the streams really overlap is shown without timing: the
readers of the first ranges wait at a barrier after their first page, which only works if all
of them are reading at the same moment.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_erpnet.client import ErpNetClient, Page
from airflow_provider_erpnet.client.errors import (
    ErpNetConfigError,
    ErpNetIncompleteError,
    ErpNetTransportError,
)
from airflow_provider_erpnet.io import Manifest, iter_records
from airflow_provider_erpnet.io.spool import spool_directory
from airflow_provider_erpnet.operators import concurrency
from airflow_provider_erpnet.operators.extraction import ExtractionRequest, run_extraction
from airflow_provider_erpnet.operators.odata import ErpNetODataOperator
from airflow_provider_erpnet.sandbox import Sandbox
from tests.client.conftest import settings_for
from tests.operators.test_odata_operator import _context

CUSTOMERS = "Crm_Sales_Customers"


class _Streams(ErpNetClient):
    """Records every range read; ``after_first_page(number, page)`` runs in its reader's thread."""

    def __init__(self, sandbox: Sandbox, after_first_page: Any = None) -> None:
        super().__init__(settings_for(sandbox))
        self.sandbox, self.after_first_page = sandbox, after_first_page
        self.filters: list[str] = []
        self._lock = threading.Lock()

    def iter_pages(self, entity_set: str, **options: Any) -> Iterator[Page]:
        pages = super().iter_pages(entity_set, **options)
        ranged = any(bound in (options.get("filter") or "") for bound in ("Id ge ", "Id le "))
        if options.get("select") == "Id" or not ranged:
            return pages  # planning samples, or one stream
        with self._lock:
            self.filters.append(options["filter"])
            stream = len(self.filters)
        return self._watched(pages, stream)

    def _watched(self, pages: Iterator[Page], stream: int) -> Iterator[Page]:
        for number, page in enumerate(pages):
            yield page
            if number == 0 and self.after_first_page is not None:
                self.after_first_page(stream, page)


def _extract(client: ErpNetClient, target: Path, **options: Any) -> Manifest:
    request = ExtractionRequest(CUSTOMERS, select="default,CreationTime", page_size=100, **options)
    return run_extraction(client, request, target)


def test_partitions_read_at_once_write_what_one_stream_writes(
    erpnet_sandbox_factory, tmp_path: Path, caplog
) -> None:
    sandbox = erpnet_sandbox_factory(scale=3000)
    caplog.set_level(logging.INFO)
    with ErpNetClient(settings_for(sandbox)) as client:
        one = _extract(client, tmp_path / "one.jsonl")
    barrier = threading.Barrier(4, timeout=60)
    with _Streams(sandbox, lambda stream, page: barrier.wait() if stream <= 4 else None) as client:
        four = _extract(client, tmp_path / "four.jsonl", max_concurrency=4)
    assert len(client.filters) == 15, "30 pages: 15 ranges of 2 pages (at most 4 per reader), each read once"
    assert "15 partition(s) by Id of 3000 rows" in caplog.text
    assert (tmp_path / "four.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    assert four.rows == four.server_count == one.rows == 3000
    assert four.query == one.query, "the manifest describes the extraction, not its ranges"
    assert [row["Id"] for row in iter_records(four)] == [row["Id"] for row in sandbox.dataset.rows(CUSTOMERS)]


def test_bodies_waiting_for_their_turn_go_to_a_private_spool(
    erpnet_sandbox_factory, tmp_path: Path, monkeypatch
) -> None:
    sandbox = erpnet_sandbox_factory(scale=2000)
    monkeypatch.setattr(concurrency, "MEMORY_BUDGET", 0)  # every body waits on disk
    spools: list[Path] = []

    @contextlib.contextmanager
    def recorded() -> Iterator[Path]:
        with spool_directory() as path:
            spools.append(path)
            yield path

    monkeypatch.setattr(concurrency, "spool_directory", recorded)
    with ErpNetClient(settings_for(sandbox)) as client:
        one = _extract(client, tmp_path / "one.csv")
        three = _extract(client, tmp_path / "three.csv", max_concurrency=3)
    assert (tmp_path / "three.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    assert three.rows == one.rows == 2000
    assert len(spools) == 1 and not spools[0].exists(), "one spool, removed after the read"


def test_rows_created_behind_a_partition_make_it_read_again(
    erpnet_sandbox_factory, tmp_path: Path, caplog
) -> None:
    sandbox = erpnet_sandbox_factory(scale=3000)
    caplog.set_level(logging.WARNING)
    created: list[str] = []
    created_elsewhere: list[str] = []

    def create_behind(stream: int, page: Page) -> None:
        """In the first stream to read a page: rows until one lands among that page's Ids."""
        ids = page.records.column("Id")
        for _ in range(1000):
            if created:
                return
            new = sandbox.create(CUSTOMERS, 1)[0]
            (created if ids[0] < new < ids[-1] else created_elsewhere).append(new)

    with _Streams(sandbox, create_behind) as client:
        manifest = _extract(client, tmp_path / "c.parquet", max_concurrency=4)
    assert created, "no row landed behind the first page read"
    assert "count went from 3000 to" in caplog.text and "attempt 2 of 3" in caplog.text
    total = 3000 + len(created) + len(created_elsewhere)
    assert manifest.rows == manifest.server_count == total
    ids = [row["Id"] for row in iter_records(manifest)]
    assert ids == [row["Id"] for row in sandbox.dataset.rows(CUSTOMERS)]
    assert set(created + created_elsewhere) <= set(ids)


def test_a_partition_that_loses_rows_fails_and_commits_nothing(
    erpnet_sandbox_factory, tmp_path: Path, monkeypatch
) -> None:
    sandbox = erpnet_sandbox_factory(scale=2000)
    real = concurrency._skim

    def losing(body: bytes) -> Any:  # the last record of every full page vanishes in transit
        page = real(body)
        if len(page.value) == 100:
            page.value = concurrency._Skim(page.value[:-1], body)
        return page

    monkeypatch.setattr(concurrency, "_skim", losing)
    with (
        ErpNetClient(settings_for(sandbox)) as client,
        pytest.raises(ErpNetIncompleteError, match=r"part-00\d-of-008 .* as when planned: rows were lost"),
    ):
        _extract(client, tmp_path / "c.jsonl", max_concurrency=2)
    assert list(tmp_path.iterdir()) == []


def test_an_error_in_one_stream_stops_the_others_and_commits_nothing(
    erpnet_sandbox_factory, tmp_path: Path
) -> None:
    sandbox = erpnet_sandbox_factory(scale=3000)

    def fail_in_third(stream: int, page: Page) -> None:
        if stream == 3:
            raise ErpNetConfigError("stream 3 broke")

    with _Streams(sandbox, fail_in_third) as client, pytest.raises(ErpNetConfigError, match="stream 3 broke"):
        _extract(client, tmp_path / "c.jsonl", max_concurrency=4)
    assert list(tmp_path.iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("erpnet-stream-")], "readers stopped"


def test_a_body_only_the_full_decoding_refuses_is_an_erpnet_error(
    erpnet_sandbox_factory, tmp_path: Path
) -> None:
    """Paging skims a body for its Ids and next link; the records are decoded later, in turn. A
    value the skim skips (here invalid UTF-8 in a text) must fail there as in one stream (issue 8)."""
    sandbox = erpnet_sandbox_factory(scale=3000)

    class _Corrupting(_Streams):
        def _watched(self, pages: Iterator[Page], stream: int) -> Iterator[Page]:
            for page in super()._watched(pages, stream):
                if stream == 2:
                    body = re.sub(
                        rb'("(?!Id")[A-Za-z]+":")', lambda m: m[1] + b"\xff", page.records.body, count=1
                    )
                    assert body != page.records.body
                    page = Page(page.number, concurrency._Skim(list(page.records), body), page.next_link)
                yield page

    with _Corrupting(sandbox) as client, pytest.raises(ErpNetTransportError, match="api_url"):
        _extract(client, tmp_path / "c.jsonl", max_concurrency=4)
    assert list(tmp_path.iterdir()) == []


def test_few_pages_or_another_order_read_one_stream(erpnet_sandbox_factory, tmp_path: Path) -> None:
    sandbox = erpnet_sandbox_factory(scale=1000)
    with _Streams(sandbox) as client:
        small = run_extraction(client, ExtractionRequest(CUSTOMERS, max_concurrency=8), tmp_path / "s.csv")
        ordered = _extract(client, tmp_path / "ordered.jsonl", max_concurrency=8, orderby="Number")
        assert client.filters == [], "1000 rows in pages of 1000, or an order other than Id: one stream"
        spread = _extract(client, tmp_path / "spread.jsonl", max_concurrency=8)
    assert len(client.filters) == 5, "1000 rows in pages of 100: 5 streams of 2 pages, not 8"
    assert small.rows == ordered.rows == spread.rows == 1000


@pytest.mark.parametrize("value", [0, 11, True, 2.0, "4"])
def test_max_concurrency_is_checked_when_the_dag_is_parsed(value: Any) -> None:
    with pytest.raises(ErpNetConfigError, match=r"max_concurrency must be a whole number 1\.\.10"):
        ErpNetODataOperator(
            task_id="t", entity_set=CUSTOMERS, output_path="/tmp/x.jsonl", max_concurrency=value
        )


def test_the_operator_passes_max_concurrency_on(erpnet_sandbox_factory, monkeypatch, tmp_path: Path) -> None:
    sandbox = erpnet_sandbox_factory(scale=2500)
    monkeypatch.setenv("AIRFLOW_CONN_ERPNET_DEFAULT", sandbox.connection_json())
    operator = ErpNetODataOperator(
        task_id="extract",
        entity_set=CUSTOMERS,
        output_path=str(tmp_path / "c.parquet"),
        page_size=250,
        max_concurrency=4,
    )
    manifest = operator.execute(_context())
    assert manifest["rows"] == manifest["server_count"] == 2500
    ids = [row["Id"] for row in iter_records(manifest)]
    assert ids == [row["Id"] for row in sandbox.dataset.rows(CUSTOMERS)]
