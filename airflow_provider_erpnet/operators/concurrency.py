"""``max_concurrency``: the partitions of one extraction read at once, inside one task.

ERP.net answers a page in hundreds of milliseconds, so one stream of pages spends most of its
time waiting. Several streams over disjoint ranges wait together:

* **The plan** splits the extraction's own filter into ranges of ``Id`` balanced by ``$count``
  (``client.partitions``; rows cannot leave an Id range, and a row created meanwhile falls into
  exactly one). Only ``Id``: its ranges in plan order are the order one stream reads, so the
  output is the file a sequential read writes, row for row, and the direct path's Id-order check
  holds. A set of fewer than ``MIN_PAGES_PER_PARTITION`` pages per range, or a server that
  refuses ranges of Id, is read in one stream.
* **``max_concurrency`` reader threads** take the ranges one after the other in plan order, each
  fetching its range's pages (socket reads release the GIL) and skimming each body for what
  paging needs (the Ids and the next link). The bodies go to the writer range by range, in plan
  order, and are decoded there, once, by the extraction's codec. The writer can only take the
  first unfinished range's pages as they arrive, so there are ``RANGES_PER_STREAM`` ranges per
  reader: the first range is short, and the writer soon has pages waiting instead of waiting.
* **Memory** does not grow with the rows: bodies waiting for their turn stay in memory up to
  ``MEMORY_BUDGET`` bytes in all, and beyond that go to a file in a private spool directory
  (``io.spool``), read back in turn. Readers never wait for the writer, so a slow first
  partition does not hold the others up.
* **Checks**: when a partition's pages are read, its reader counts the range again. Rows read
  other than that count fail the extraction (``ErpNetIncompleteError``), unless the count moved
  since planning (rows created or deleted in the range meanwhile: ``PartitionCountChanged``, and
  the extraction reads again, as one stream does when its ``$count`` moves). The total is then
  compared with the set's ``$count`` as for one stream.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from airflow_provider_erpnet.client.client import ErpNetClient
from airflow_provider_erpnet.client.errors import ErpNetConfigError, ErpNetIncompleteError
from airflow_provider_erpnet.client.jsonutil import loads, strip_bom
from airflow_provider_erpnet.client.partitions import Partition
from airflow_provider_erpnet.client.transport import decode_json
from airflow_provider_erpnet.io.progress import Progress
from airflow_provider_erpnet.io.spool import spool_directory
from airflow_provider_erpnet.operators.windows import and_filters

log = logging.getLogger(__name__)

# requests keeps 10 connections per host; more streams would open and drop connections each page.
MAX_CONCURRENCY = 10
# A stream of fewer pages does not repay the plan's $count probes (a few round trips).
MIN_PAGES_PER_PARTITION = 2
# Ranges per reader thread: shorter ranges keep the writer's wait for the first one short.
RANGES_PER_STREAM = 4
# Page bodies waiting for their turn in memory, all partitions together; the rest wait on disk.
MEMORY_BUDGET = 16 * 2**20  # a couple of pages per stream; readers ahead of that spill
JOIN_TIMEOUT = 30.0  # seconds close() waits for a reader still inside a request


class PartitionCountChanged(ErpNetIncompleteError):
    """A partition's rows differ from its ``$count``, which moved while it was read: read again."""

    def __init__(self, message: str, *, before: int | None, after: int, rows: int) -> None:
        super().__init__(message)
        self.before, self.after, self.rows = before, after, rows


def check_max_concurrency(value: Any) -> int:
    """``value`` if it is a valid ``max_concurrency``; raises naming the range otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise ErpNetConfigError(
            f"max_concurrency must be a whole number 1..{MAX_CONCURRENCY} (1 reads one stream of "
            f"pages), got {value!r}."
        )
    return value


def plan_streams(
    client: ErpNetClient,
    entity_set: str,
    filter: str | None,
    *,
    max_concurrency: int,
    page_size: int,
    logger: logging.Logger | logging.LoggerAdapter = log,
) -> list[Partition] | None:
    """Id ranges for ``max_concurrency`` readers, or None to read one stream (too few pages, or
    no Id ranges)."""
    if max_concurrency < 2:
        return None
    pages = client.count(entity_set, filter=filter) // page_size
    ranges = min(max_concurrency * RANGES_PER_STREAM, pages // MIN_PAGES_PER_PARTITION)
    if ranges < 2:
        return None
    try:
        return client.plan_partitions(entity_set, ranges, filter=filter, by="Id")
    except ErpNetConfigError as refused:
        logger.warning("%s: reading in one stream instead of %d ranges: %s", entity_set, ranges, refused)
        return None


def partitioned_pages(
    client: ErpNetClient,
    entity_set: str,
    options: Mapping[str, Any],
    plan: list[Partition],
    *,
    streams: int,
    check_count: bool | str,
    decode: Callable[[bytes], Any],
    progress: Progress,
    logger: logging.Logger | logging.LoggerAdapter = log,
) -> Generator[list[Any], None, None]:
    """The records of every page of ``plan``'s partitions, partition by partition, ``streams`` read at once.

    ``options`` are ``ErpNetClient.iter_pages``'s (the plan was made for its ``filter``);
    ``decode`` turns a page body into the extraction's records (called in this generator's thread).
    """
    sources = [_pages_of(client, entity_set, options, part, check_count, logger) for part in plan]
    url = f"{client.api_url}{entity_set}"
    with closing(_Turns(sources, streams)) as turns:
        for body in turns:
            # As the transport decodes: the skim let through what it skipped (invalid UTF-8, say).
            page = decode_json(body, url, decode=decode)
            records = page["value"] if isinstance(page, dict) else page.value
            progress.page(len(records))
            yield records


def _pages_of(
    client: ErpNetClient,
    entity_set: str,
    options: Mapping[str, Any],
    partition: Partition,
    check_count: bool | str,
    logger: logging.Logger | logging.LoggerAdapter,
) -> Generator[bytes, None, None]:
    """One partition's page bodies; when they are read, its rows checked against its ``$count``."""
    range_filter = and_filters(options.get("filter"), partition.filter)
    # Paging is bounded by the set's count: rows created in a small range can outgrow its own margin.
    pages = client.iter_pages(
        entity_set, **{**options, "filter": range_filter}, decode=_skim, expected_rows=partition.total
    )
    rows = 0
    with closing(pages):
        for page in pages:
            rows += len(page.records)
            yield page.records.body
    if check_count is not False:
        _check_partition(client.count(entity_set, filter=range_filter), rows, partition, check_count, logger)


def _check_partition(
    after: int,
    rows: int,
    partition: Partition,
    mode: bool | str,
    logger: logging.Logger | logging.LoggerAdapter,
) -> None:
    if rows == after:
        return
    message = (
        f"{partition.entity_set}: {partition.label} ({partition.filter}) read {rows} rows but the server "
        f"counts {after} for it"
    )
    if mode == "warn":
        logger.warning("%s. Committing anyway because check_count='warn'.", message)
        return
    if after != partition.count:
        raise PartitionCountChanged(
            f"{message}, {partition.count} when planned: rows were created or deleted in it while it was "
            "read. Nothing was committed; retry.",
            before=partition.count,
            after=after,
            rows=rows,
        )
    raise ErpNetIncompleteError(
        f"{message}, as when planned: rows were lost in transit. Nothing was committed; retry, or read "
        "in one stream (max_concurrency=1)."
    )


class _IdOnly(msgspec.Struct):
    Id: Any = None


class _Skimmed(msgspec.Struct):
    value: list[_IdOnly]
    next_link: str | None = msgspec.field(name="@odata.nextLink", default=None)


_SKIM = msgspec.json.Decoder(_Skimmed)


class _Skim(list):  # type: ignore[type-arg]
    """A page's Ids, which is all paging looks at, and the body they came in."""

    def __init__(self, ids: list[Any], body: bytes) -> None:
        super().__init__(ids)
        self.body = body

    def column(self, name: str) -> list[Any]:
        if name != "Id":
            raise KeyError(name)
        return list(self)


def _skim(body: bytes) -> Any:
    """What paging needs from a body (Ids, next link); the records are decoded later, in turn."""
    try:
        page = _SKIM.decode(strip_bom(body))
    except msgspec.ValidationError:
        return loads(body)  # not a collection of entities: paging's checks say what is wrong with it
    page.value = _Skim([record.Id for record in page.value], body)  # type: ignore[assignment]
    return page


@dataclass
class _Queue:
    """One partition's bodies in arrival order: bytes in memory, or (offset, length) in its spill file."""

    entries: deque[bytes | tuple[int, int]] = field(default_factory=deque)
    done: bool = False
    spill: int | None = None  # file descriptor
    spilled: int = 0  # bytes written to the spill file


class _Turns:
    """Bodies of several sources, read by ``readers`` threads in order, handed out source by source."""

    def __init__(self, sources: list[Generator[bytes, None, None]], readers: int) -> None:
        self._sources = sources
        self._next = 0  # the source the next free reader takes
        self._queues = [_Queue() for _ in sources]
        self._budget = MEMORY_BUDGET
        self._held = 0  # bytes of the bodies in memory
        self._head = 0
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._spool = ExitStack()
        self._spool_dir: Path | None = None
        self._threads = [
            threading.Thread(target=self._work, name=f"erpnet-stream-{number}", daemon=True)
            for number in range(min(readers, len(sources)))
        ]
        for thread in self._threads:
            thread.start()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        with self._cond:
            while True:
                if self._error is not None:
                    error, self._error = self._error, None
                    self._stop.set()
                    raise error
                queue = self._queues[self._head]
                if queue.entries:
                    entry = queue.entries.popleft()
                    break
                if queue.done:
                    if self._head + 1 == len(self._queues):
                        raise StopIteration
                    self._head += 1
                    continue
                self._cond.wait()
            if isinstance(entry, bytes):
                self._held -= len(entry)
                return entry
        offset, length = entry
        assert queue.spill is not None
        return _read_at(queue.spill, offset, length)

    def close(self) -> None:
        """Stop the readers after the request each is in, and remove what they spilled."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT)
        if any(thread.is_alive() for thread in self._threads):
            log.warning(
                "A partition reader is still waiting for an answer after %.0f s; it ends when that "
                "request does, without reading further.",
                JOIN_TIMEOUT,
            )
        for queue in self._queues:
            if queue.spill is not None:
                os.close(queue.spill)
                queue.spill = None
        self._spool.close()

    def _work(self) -> None:
        """Read sources in order until none is left or the reading stopped."""
        while not self._stop.is_set():
            with self._cond:
                index = self._next
                if index == len(self._sources):
                    return
                self._next += 1
            self._read(index, self._sources[index])

    def _read(self, index: int, source: Generator[bytes, None, None]) -> None:
        try:
            for body in source:
                if self._stop.is_set():
                    return
                self._put(index, body)
            with self._cond:
                self._queues[index].done = True
                self._cond.notify_all()
        except BaseException as error:  # handed to the consumer, who raises it
            with self._cond:
                if self._error is None and not self._stop.is_set():
                    self._error = error
                self._stop.set()
                self._cond.notify_all()
        finally:
            source.close()

    def _put(self, index: int, body: bytes) -> None:
        queue = self._queues[index]
        with self._cond:
            if self._held + len(body) <= self._budget:
                self._held += len(body)
                queue.entries.append(body)
                self._cond.notify_all()
                return
        if queue.spill is None:
            queue.spill = os.open(self._spill_path(index), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        offset = queue.spilled
        _write_at(queue.spill, body, offset)
        queue.spilled += len(body)
        with self._cond:
            queue.entries.append((offset, len(body)))
            self._cond.notify_all()

    def _spill_path(self, index: int) -> Path:
        with self._cond:
            if self._spool_dir is None:
                self._spool_dir = self._spool.enter_context(spool_directory())
            return self._spool_dir / f"partition-{index}.bodies"


def _write_at(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _read_at(fd: int, offset: int, length: int) -> bytes:
    chunks = []
    while length:
        chunk = os.pread(fd, length, offset)
        if not chunk:
            raise OSError(f"the spill file ended {length} bytes early")
        chunks.append(chunk)
        offset, length = offset + len(chunk), length - len(chunk)
    return b"".join(chunks)
