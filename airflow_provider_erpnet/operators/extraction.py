"""One OData extraction, from query to committed files and manifest, without Airflow.

``ErpNetODataOperator`` is a thin adapter over ``run_extraction`` (files) and ``extract_records``
(XCom); scripts and benchmarks call them directly with an ``ErpNetClient``.

Two paths lead to the output, chosen so the common case costs nothing:

* **direct**: pages go straight into the final ``OutputWriter`` (temporary file beside the target,
  moved into place on commit). Used when Ids are expected in order (keyset paging, or ``$orderby``
  starting with ``Id``), which is when no duplicate can occur. If the Ids nevertheless arrive out of
  order, the attempt is abandoned before anything is committed and the extraction restarts once on
  the staged path (one extra read, logged as a warning).
* **staged**: used for any other ``$orderby``. Pages are spooled to a local JSON Lines file (exact
  round trip of every value), superseded copies are found on disk (``io.dedupe.SpooledDeduper``),
  and the kept rows are copied into the final writer. Costs local disk for one copy of the output;
  memory does not grow with the rows.

Completeness: after the rows are written, ``$count`` is asked for the same filter and compared
with the rows kept; see ``check_completeness``. When they differ and ``$count`` also moved since
the read began (rows created or deleted meanwhile, e.g. behind the keyset position), nothing is
committed and the query is read again, at most ``READ_ATTEMPTS`` reads in all; a difference with
an unchanged count is a loss and fails at once.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal

from airflow_provider_erpnet.changes.schema import (
    OnSchemaChange,
    check_drift,
    load_baseline,
    schema_change_mode,
)
from airflow_provider_erpnet.client.client import ErpNetClient
from airflow_provider_erpnet.client.dialect import DEFAULT_SELECT, Dialect
from airflow_provider_erpnet.client.errors import ErpNetConfigError, ErpNetIncompleteError
from airflow_provider_erpnet.client.jsonutil import loads
from airflow_provider_erpnet.client.literals import literal
from airflow_provider_erpnet.client.metadata import ServiceMetadata
from airflow_provider_erpnet.client.odata import MAX_PAGE_SIZE, normalise_select
from airflow_provider_erpnet.client.partitions import Partition
from airflow_provider_erpnet.client.prefetch import Prefetcher
from airflow_provider_erpnet.io import Column, FileInfo, Manifest, OutputWriter, columns_for, iter_records
from airflow_provider_erpnet.io.dedupe import Deduper, SpooledDeduper, without
from airflow_provider_erpnet.io.output import sweep_abandoned
from airflow_provider_erpnet.io.pagecodec import PageCodec
from airflow_provider_erpnet.io.progress import Progress
from airflow_provider_erpnet.io.schema import ALL_SELECT
from airflow_provider_erpnet.io.spool import spool_directory
from airflow_provider_erpnet.operators.concurrency import (
    PartitionCountChanged,
    check_max_concurrency,
    partitioned_pages,
    plan_streams,
)
from airflow_provider_erpnet.operators.windows import Window, and_filters

log = logging.getLogger(__name__)

CheckCount = bool | Literal["warn"]
KEY = "Id"
# Reads of one extraction when rows are created or deleted under it (its $count moves while the
# pages are read and the rows it got differ from the new count); one partition is quick to re-read.
READ_ATTEMPTS = 3


@dataclass(frozen=True)
class ExtractionRequest:
    """What to extract: the user's query options plus the incremental window, if any."""

    entity_set: str
    filter: str | None = None
    select: str | Sequence[str] | None = None
    expand: str | None = None
    orderby: str | None = None
    page_size: int = MAX_PAGE_SIZE
    incremental_column: str | None = None
    window: Window | None = None
    check_count: CheckCount = True
    partition: Partition | None = None  # one range of a partition plan: read only its rows
    max_concurrency: int = 1  # Id ranges read at once (operators.concurrency)

    def __post_init__(self) -> None:
        check_count_mode(self.check_count)
        check_max_concurrency(self.max_concurrency)

    @property
    def base_filter(self) -> str | None:
        """The user's filter AND the window's, each parenthesised: the whole set's rows."""
        return and_filters(self.filter, self.window.filter() if self.window else None)

    @property
    def full_filter(self) -> str | None:
        """``base_filter`` AND the partition's range."""
        return and_filters(self.base_filter, self.partition.filter if self.partition else None)

    def partition_entry(self) -> dict[str, Any] | None:
        """The manifest's ``partition``: the range read, with ``base_filter`` the gather step counts."""
        if self.partition is None:
            return None
        return {**self.partition.to_dict(), "base_filter": self.base_filter}

    @property
    def full_select(self) -> tuple[str, ...]:
        """``$select`` with ``Id`` and the incremental column added when missing."""
        return required_select(self.select, [KEY, self.incremental_column])

    def query_options(self) -> dict[str, Any]:
        """Keyword arguments for ``ErpNetClient.iter_pages``."""
        return {
            "filter": self.full_filter,
            "select": self.full_select,
            "expand": self.expand,
            "orderby": self.orderby,
            "page_size": self.page_size,
        }

    def describe(self, dialect: Dialect | None = None) -> dict[str, str]:
        """The query as sent, for the manifest (options that were not set are left out).

        With the client's ``dialect``, as rewritten for a server that refused ERP.net's forms.
        """
        sent = {"$filter": self.full_filter or "", "$select": ",".join(self.full_select)}
        if dialect is not None:
            sent = dialect.rewrite(sent)
        options = {
            "filter": sent.get("$filter"),
            "select": sent.get("$select"),
            "expand": self.expand,
            "orderby": self.orderby,
        }
        return {name: value for name, value in options.items() if value}

    def select_read(self, dialect: Dialect) -> tuple[str, ...]:
        """``full_select`` as the server answered it: ``*`` (every structural property) where a
        server that refused ``$select=default`` was asked without ``$select``."""
        if dialect.default_select or DEFAULT_SELECT not in self.full_select:
            return self.full_select
        return (ALL_SELECT,)

    @property
    def ids_in_order(self) -> bool:
        """Whether paging should deliver Ids in increasing order (no ``$orderby`` or one led by Id)."""
        if not self.orderby or not self.orderby.strip():
            return True
        first = self.orderby.split(",")[0].split()
        return first[0] == KEY and (len(first) == 1 or first[1].lower() == "asc")


def required_select(select: str | Sequence[str] | None, required: Iterable[str | None]) -> tuple[str, ...]:
    """The user's ``$select`` plus the names the extraction needs, in that order.

    ``None`` means the server's default attributes, written ``default`` in ERP.net's ``$select``.
    """
    names = list(normalise_select(select) or ("default",))
    names += [name for name in dict.fromkeys(required) if name and name not in names]
    return tuple(names)


def check_count_mode(value: Any) -> CheckCount:
    """``value`` if it is a valid ``check_count`` setting; raises naming the choices otherwise."""
    if value is True or value is False or value == "warn":
        return value
    raise ErpNetConfigError(f"check_count must be True (fail on a mismatch), 'warn' or False, got {value!r}.")


def check_completeness(entity_set: str, written: int, server_count: int | None, mode: CheckCount) -> None:
    """Compare the rows kept with the server's ``$count`` for the same filter.

    The count is taken after the rows were read, so rows created, changed or deleted while the
    extraction ran can make the two differ although nothing was lost in transit; a re-run settles
    it. ``mode``: True raises ``ErpNetIncompleteError``, ``"warn"`` logs, False skips.
    """
    if mode is False or server_count is None or written == server_count:
        return
    message = (
        f"{entity_set}: wrote {written} rows but the server counts {server_count} for the same filter "
        f"({written - server_count:+d})."
    )
    if mode == "warn":
        log.warning("%s Committing anyway because check_count='warn'.", message)
        return
    raise ErpNetIncompleteError(
        f"{message} Nothing was committed. If the data changed during the extraction, retry; to "
        "commit despite a mismatch set check_count='warn', to skip the check check_count=False."
    )


def run_extraction(
    client: ErpNetClient,
    request: ExtractionRequest,
    target: str | os.PathLike[str] | Any,
    *,
    fmt: str | None = None,
    max_rows_per_file: int | None = None,
    on_schema_change: OnSchemaChange | None = None,
    schema_baseline: Any = None,
    logger: logging.Logger | logging.LoggerAdapter = log,
) -> Manifest:
    """Stream the query into committed file(s) at ``target`` and describe them in a manifest.

    Nothing appears at ``target`` unless every page was read, deduplicated and (by default)
    matched ``$count``. Temporary files a killed earlier attempt left beside a local target are
    removed first. The entity type's fingerprint goes into the manifest and is compared with the
    previous manifest at ``target`` (or ``schema_baseline``) first; see ``changes.schema``.
    """
    started = time.monotonic()
    retries = client.transport.retries
    output = _Output(
        target, fmt, max_rows_per_file, client.metadata(), f"{client.settings.client_id}@{client.api_url}"
    )
    # Check names, target, format, pyarrow and that the directory is writable before any page is read.
    checked = output.writer(output.columns(request, request.full_select, [], logger))
    checked.abort()
    previous, source = load_baseline(target, schema_baseline, logger)
    drift = check_drift(
        output.metadata,
        request.entity_set,
        previous,
        mode=schema_change_mode(on_schema_change, checked.format),
        selected=request.full_select,
        source=source,
        logger=logger,
    )
    if drift.extra_select:
        request = replace(request, select=(*request.full_select, *drift.extra_select))
    output = replace(output, schema=drift.section)
    remove_stale_temps(target, fmt, before=time.time(), logger=logger)
    expected = _checked_count(client, request)
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            written = _extract_ordered(client, request, output, expected, logger, started)
            break
        except _CountChanged as changed:
            if attempt == READ_ATTEMPTS:
                raise changed.error from None
            logger.warning(
                "%s: the server's count went from %d to %d while %d rows were read (rows were created "
                "or deleted meanwhile); nothing was committed, reading again (attempt %d of %d).",
                request.entity_set,
                changed.before,
                changed.after,
                changed.written,
                attempt + 1,
                READ_ATTEMPTS,
            )
            expected = changed.after
    manifest = written.manifest
    written.progress.finish(
        rows=manifest.rows,
        nbytes=manifest.bytes,
        retries=client.transport.retries - retries,
        duplicates=manifest.duplicates_removed,
        window=_bounds(request.window),
    )
    return manifest


def extract_records(
    client: ErpNetClient,
    request: ExtractionRequest,
    *,
    max_records: int,
    logger: logging.Logger | logging.LoggerAdapter = log,
) -> list[dict[str, Any]]:
    """Read the query into memory, deduplicated and JSON-safe (``Decimal`` -> exact ``str``).

    Meant for small lookups passed through XCom: more than ``max_records`` rows raise before they
    pile up in memory or in the metadata database.
    """
    retries = client.transport.retries
    expected = _checked_count(client, request)
    if expected is not None and expected > max_records:
        raise _too_many(request.entity_set, max_records, f"the server counts {expected}")
    progress = Progress(logger, request.entity_set, expected=expected)
    deduper = Deduper(request.incremental_column)
    records: list[dict[str, Any]] = []
    with closing(_pages(client, request, progress, expected)) as pages:
        for page in pages:
            deduper.observe(page)
            records.extend(page)
            if len(records) > max_records:
                raise _too_many(request.entity_set, max_records, f"more than {max_records} arrived")
    kept = [json_safe(record) for record in without(records, deduper.resolve(records))]
    check_completeness(request.entity_set, len(kept), _checked_count(client, request), request.check_count)
    progress.finish(
        rows=len(kept),
        retries=client.transport.retries - retries,
        duplicates=len(records) - len(kept),
        window=_bounds(request.window),
    )
    return kept


def json_safe(value: Any) -> Any:
    """``Decimal`` -> its exact text, recursively; everything else the JSON decoder made stays."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    return value


def remove_stale_temps(
    target: Any, fmt: str | None, *, before: float, logger: logging.Logger | logging.LoggerAdapter = log
) -> int:
    """Delete the temporary files and locks that dead earlier runs left beside ``target``.

    A SIGKILLed attempt cannot clean up after itself; the next one does. Locally only files whose
    run's lock is free go, so a run still writing the same target keeps its own (and a warning
    says two runs share the target). On object storage nothing can be locked: files of runs that
    started before ``before`` go, and such a run, were it still alive, fails with a clear error.
    """
    swept = sweep_abandoned(target, fmt, before=before)
    if swept.removed:
        logger.info("Removed %d file(s) left beside the target by killed earlier attempts.", swept.removed)
    if swept.live_runs:
        logger.warning(
            "%d other run(s) are writing %s right now; their files are kept, and whichever commits "
            "last replaces the output. Give each task its own output_path to keep every run's rows.",
            swept.live_runs,
            target,
        )
    return swept.removed


# (source, entity set, columns) whose absence from the default selection was logged at INFO: a
# process that extracts the same set again (a worker, a scheduler loop) says it once, then at DEBUG.
_DEFAULT_SELECTION_NOTED: set[tuple[str, str, tuple[str, ...]]] = set()


@dataclass(frozen=True)
class _Output:
    """Where and how to write: the ``OutputWriter`` arguments of one extraction, and its columns.

    ``source`` names the connection (client and API) the rows come from.
    """

    target: Any
    fmt: str | None
    max_rows_per_file: int | None
    metadata: ServiceMetadata
    source: str
    schema: dict[str, Any] | None = None  # the manifest's schema section (changes.schema)

    def columns(
        self,
        request: ExtractionRequest,
        select: Sequence[str],
        first_page: list[dict[str, Any]],
        logger: logging.Logger | logging.LoggerAdapter,
    ) -> list[Column]:
        """The columns, decided on the first non-empty page (``$metadata`` alone when there is none).

        ERP.net's ``default`` selection leaves out attributes ``$metadata`` does not mark (calculated
        ones such as the sandbox's ``Turnover``), and OData sends null values as explicit nulls: a
        key absent from every record of the first page is one the server did not select, and would
        only be an all-null column. Every key the server sent that ``$metadata`` knows is a column.
        """
        rule = columns_for(self.metadata, request.entity_set, select, request.expand)
        if not first_page:
            return rule
        sent = set().union(*first_page)
        columns = columns_for(self.metadata, request.entity_set, select, request.expand, sent=sent)
        left_out = [column.name for column in rule if column not in columns]
        noted = (self.source, request.entity_set, tuple(left_out))
        if left_out and DEFAULT_SELECT in select:
            logger.log(
                logging.DEBUG if noted in _DEFAULT_SELECTION_NOTED else logging.INFO,
                "%s: the server's default selection does not include %s, so neither does the output; "
                "name them in select to get them, e.g. select='default,%s'.",
                request.entity_set,
                ", ".join(left_out),
                left_out[0],
            )
            _DEFAULT_SELECTION_NOTED.add(noted)
        return columns

    def writer(self, columns: list[Column]) -> OutputWriter:
        return OutputWriter(self.target, self.fmt, columns, max_rows_per_file=self.max_rows_per_file)


@dataclass(frozen=True)
class _Written:
    """What one attempt committed, and its progress."""

    manifest: Manifest
    progress: Progress


def _extract_ordered(
    client: ErpNetClient,
    request: ExtractionRequest,
    output: _Output,
    expected: int | None,
    logger: logging.Logger | logging.LoggerAdapter,
    started: float,
) -> _Written:
    """One read on the direct path, or on the staged path if Ids turn out not to be in order."""
    try:
        staged = not request.ids_in_order
        return _extract_once(client, request, output, expected, logger, staged=staged, started=started)
    except _OrderBroken as broken:
        logger.warning(
            "%s: Ids arrived out of order at row %d although paging should keep them ordered; "
            "nothing was committed, reading again through a local spool to remove duplicates.",
            request.entity_set,
            broken.row,
        )
        return _extract_once(client, request, output, expected, logger, staged=True, started=started)


def _extract_once(
    client: ErpNetClient,
    request: ExtractionRequest,
    output: _Output,
    expected: int | None,
    logger: logging.Logger | logging.LoggerAdapter,
    *,
    staged: bool,
    started: float,
) -> _Written:
    """Read every page, write, check, commit; raises ``_OrderBroken`` on the direct path only."""
    progress = Progress(logger, request.entity_set, expected=expected)
    deduper = Deduper(request.incremental_column)
    decoding = _Decoding()
    plan = None
    if not staged:  # Id ranges read at once (max_concurrency), or None for one stream
        plan = plan_streams(
            client,
            request.entity_set,
            request.full_filter,
            max_concurrency=request.max_concurrency,
            page_size=request.page_size,
            logger=logger,
        )
    pages = (
        _pages(client, request, progress, expected, decoding.decode)
        if plan is None
        else partitioned_pages(
            client,
            request.entity_set,
            request.query_options(),
            plan,
            streams=request.max_concurrency,
            check_count=request.check_count,
            decode=decoding.decode,
            progress=progress,
            logger=logger,
        )
    )
    ahead: Prefetcher[list[dict[str, Any]]] | None = None
    try:
        first = next((records for records in pages if records), [])
        columns = output.columns(request, request.select_read(client.dialect), first, logger)
        decoding.codec = PageCodec(columns)
        # Pages 2 and on are fetched and decoded in a reader thread while this one writes.
        ahead = Prefetcher(pages)
        with output.writer(columns) as writer:
            all_pages = itertools.chain([first], ahead)
            if staged:
                read = _write_staged(all_pages, writer, columns, request)
            else:
                _write_direct(all_pages, deduper, writer)
                read = deduper.rows
            server_count = _checked_count(client, request)
            try:
                check_completeness(request.entity_set, writer.rows, server_count, request.check_count)
            except ErpNetIncompleteError as error:
                if server_count != expected:  # the data changed under the read: a new read may match
                    raise _CountChanged(error, expected, server_count, writer.rows) from None
                raise

            def describe(files: list[FileInfo]) -> Manifest:
                return writer.manifest_of(
                    files,
                    request.entity_set,
                    query=request.describe(client.dialect),
                    window=request.window.to_dict() if request.window else None,
                    server_count=server_count,
                    duplicates_removed=read - writer.rows,
                    duration_seconds=round(time.monotonic() - started, 3),
                    schema=output.schema,
                    partition=request.partition_entry(),
                )

            writer.commit(describe)
    except PartitionCountChanged as changed:  # one partition's count moved: read again, as for the set's
        raise _CountChanged(changed, expected, _checked_count(client, request), progress.rows) from None
    finally:
        if ahead is not None:
            ahead.close()
        else:
            pages.close()
    return _Written(writer.manifest, progress)


class _CountChanged(Exception):
    """Internal: rows and ``$count`` differ, and ``$count`` moved during the read; read again."""

    def __init__(
        self, error: ErpNetIncompleteError, before: int | None, after: int | None, written: int
    ) -> None:
        super().__init__(str(error))
        self.error, self.before, self.after, self.written = error, before, after, written


class _OrderBroken(Exception):
    """Internal: Ids came out of order on the direct path; restart staged."""

    def __init__(self, row: int) -> None:
        super().__init__(row)
        self.row = row


class _Decoding:
    """Page bodies -> records: generic dicts until the columns are known, then the page codec's."""

    def __init__(self) -> None:
        self.codec: PageCodec | None = None

    def decode(self, body: bytes) -> Any:
        return loads(body) if self.codec is None else self.codec.decode(body)


def _pages(
    client: ErpNetClient,
    request: ExtractionRequest,
    progress: Progress,
    expected: int | None,
    decode: Callable[[bytes], Any] | None = None,
) -> Generator[list[dict[str, Any]], None, None]:
    """The query's pages; ``expected`` ($count, when known) bounds how far paging may run."""
    options = request.query_options()
    for page in client.iter_pages(request.entity_set, **options, decode=decode, expected_rows=expected):
        progress.page(len(page.records))
        yield page.records


def _write_direct(pages: Iterable[list[dict[str, Any]]], deduper: Deduper, output: OutputWriter) -> None:
    for records in pages:
        deduper.observe(records)
        if not deduper.ordered:
            raise _OrderBroken(deduper.ordered_rows or 0)
        output.write_page(records)


def _write_staged(
    pages: Iterable[list[dict[str, Any]]],
    output: OutputWriter,
    columns: list[Column],
    request: ExtractionRequest,
) -> int:
    """Spool every row, then copy the latest copy of each to the output; returns the rows read.

    The spool and the table of Ids (``SpooledDeduper``) are files in a private directory, so
    memory does not grow with the rows, however many of them arrive out of Id order.
    """
    with (
        spool_directory() as spool_dir,
        SpooledDeduper(spool_dir / "ids.sqlite", request.incremental_column) as deduper,
    ):
        with OutputWriter(spool_dir / "rows.jsonl", "jsonl", columns, private=True) as spool:
            for records in pages:
                deduper.observe(records)
                spool.write_page(records)
            files = spool.commit()
        spooled = Manifest(request.entity_set, "jsonl", files, spool.rows, 0, columns)
        kept = without(iter_records(spooled), deduper.superseded())
        while chunk := list(itertools.islice(kept, request.page_size)):
            output.write_page(chunk)
        return deduper.rows


def _bounds(window: Window | None) -> tuple[str, str] | None:
    """The window's ends as the filter writes them, for the summary line."""
    return None if window is None else (literal(window.start), literal(window.end))


def _checked_count(client: ErpNetClient, request: ExtractionRequest) -> int | None:
    """``$count`` for the request's filter, or None when ``check_count`` is off."""
    if request.check_count is False:
        return None
    return client.count(request.entity_set, filter=request.full_filter)


def _too_many(entity_set: str, limit: int, found: str) -> ErpNetConfigError:
    return ErpNetConfigError(
        f"{entity_set}: {found}, over max_xcom_records={limit}. XCom lives in the metadata database and "
        "is not meant for bulk rows: set output_path to write files and pass their manifest instead, "
        "narrow the filter, or raise max_xcom_records."
    )
