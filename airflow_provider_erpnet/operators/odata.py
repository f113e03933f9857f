"""``ErpNetODataOperator``: an ERP.net entity set -> typed files (manifest in XCom) or XCom records.

The operator only translates Airflow's world (templated fields, the data interval, connections,
Asset outlets) into an ``ExtractionRequest``; the extraction itself is ``run_extraction``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jinja2
from airflow.sdk import Asset, BaseOperator, Context, ObjectStoragePath

from airflow_provider_erpnet.changes.schema import OnSchemaChange, schema_change_mode
from airflow_provider_erpnet.client.errors import ErpNetConfigError
from airflow_provider_erpnet.client.odata import MAX_PAGE_SIZE
from airflow_provider_erpnet.client.partitions import Partition, as_partition
from airflow_provider_erpnet.hooks.erpnet import ErpNetHook
from airflow_provider_erpnet.io import FORMATS, Manifest
from airflow_provider_erpnet.io.output import local_path
from airflow_provider_erpnet.operators.change_windows import TriggeringChanges, wire_change_assets
from airflow_provider_erpnet.operators.concurrency import check_max_concurrency
from airflow_provider_erpnet.operators.extraction import (
    CheckCount,
    ExtractionRequest,
    check_count_mode,
    extract_records,
    run_extraction,
)
from airflow_provider_erpnet.operators.lineage import ExtractionLineage, operator_lineage
from airflow_provider_erpnet.operators.partitioned import part_target
from airflow_provider_erpnet.operators.windows import check_overlap, window_from_context

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

ASSET_SCHEME = "erpnet"


def erpnet_asset(erpnet_conn_id: str, entity_set: str) -> Asset:
    """The Asset an extraction of ``entity_set`` through ``erpnet_conn_id`` updates by default.

    Output paths are usually templated (``{{ ds }}``) and only known at run time, while Assets are
    fixed when the DAG is parsed, so the default Asset names the source, ``erpnet://<conn>/<set>``;
    each event carries the written paths in its ``extra``.
    """
    return Asset(f"{ASSET_SCHEME}://{erpnet_conn_id}/{entity_set}")


class ErpNetODataOperator(BaseOperator):
    """Extract one ERP.net entity set (OData v4 Domain API) to typed files or to XCom.

    With ``output_path``, pages stream into a JSON Lines, CSV or Parquet file (format from the
    suffix, or ``output_format``) that appears only when complete, and the task returns the
    manifest (``Manifest.to_dict()``: paths, rows, bytes, column schema, query, window, server
    count, duplicates removed, duration). Without it, the task returns the records themselves
    (decimals as exact strings), refusing more than ``max_xcom_records``.

    :param entity_set: e.g. ``Crm_Sales_Customers`` (templated).
    :param erpnet_conn_id: an ``erpnet`` connection.
    :param filter: OData ``$filter`` (templated); ANDed with the incremental window.
    :param select: ``$select`` (templated); ``Id`` and ``incremental_column`` are always added.
    :param expand: ``$expand`` (templated), e.g. ``Lines``; expanded values become JSON columns.
    :param orderby: ``$orderby`` (templated). Leave it unset for keyset paging by Id, the fastest
        and the only order in which no row can repeat.
    :param page_size: ``$top`` per page, 1..1000.
    :param output_path: local path, ``file://`` URL or ObjectStoragePath URL
        (``s3://aws_default@bucket/erpnet/{{ ds }}/customers.parquet``) (templated).
    :param output_format: ``parquet``, ``jsonl`` or ``csv``; default from the suffix.
    :param incremental_column: read only rows with this column in the run's data interval,
        widened backwards by ``overlap`` (e.g. ``AggregateLastUpdateTimeUtc``). A run triggered by
        ``ErpNetChangesTrigger`` events of this entity set and column reads the events' window
        instead (their ``from``..``to``, overlap included); any other run of a DAG watching it (a
        manual run, or one another task's event on that Asset triggered) reads what its watcher
        would report next, from the watcher's starting point to ``run_after``. See
        docs/change-detection.md.
    :param overlap: how far each window reaches back before ``data_interval_start``.
    :param check_count: compare rows written with ``$count``: True fails on a mismatch (nothing
        is committed), ``"warn"`` logs it, False skips the count.
    :param max_rows_per_file: split the output into numbered part files of at most this many rows.
    :param max_xcom_records: without ``output_path``, the most records the task may return.
    :param asset_event_if_empty: whether an extraction that finds no rows emits its Asset events.
        By default it does not, so Asset-scheduled consumers are not woken for nothing; the (empty)
        file and the manifest are written either way.
    :param partition: one partition of ``ErpNetHook.plan_partitions`` (usually mapped:
        ``.partial(...).expand(partition=plan)``): read only its rows (its range ANDed with
        ``filter`` and the window), write them to ``output_path`` with the partition's label before
        the suffix (``customers.part-002-of-008.parquet``) and return a part manifest for
        ``ErpNetHook.gather_partitions``. See docs/partitions.md.
    :param on_schema_change: what to do when the entity type in ``$metadata`` differs from the one
        the previous manifest at ``output_path`` recorded: ``"fail"`` (default for Parquet),
        ``"warn"`` (default for JSON Lines and CSV) or ``"evolve"`` (added properties become
        columns); see docs/change-detection.md.
    :param schema_baseline: compare with this manifest instead (its XCom, or the path or URL of a
        ``_<name>.manifest.json``, templated; empty: compare with nothing): for outputs named per
        run, the previous successful run's manifest (docs/change-detection.md shows the template).
    :param max_concurrency: with ``output_path``, read up to this many ranges of Id at once inside
        this task (1..10), each its own stream of pages, into the same output in the same order as
        one stream. Worth it when the server takes long per page; a set of only a few pages, or an
        ``orderby`` other than Id, is read in one stream. See docs/partitions.md.

    Unless ``outlets`` is given, a task with ``output_path`` updates the Asset
    ``erpnet://<erpnet_conn_id>/<entity_set>`` (see ``erpnet_asset``), except an Asset its DAG is
    scheduled on and watches with ``ErpNetChangesTrigger``: that one becomes an inlet instead. A
    partition's task updates no Asset, as one part is not the whole set: declare the Asset on the
    gather task.

    Runs of every kind work: a run triggered without a logical date (``airflow dags trigger``, the
    REST API) reads the data interval its DAG's data-interval timetable infers for the moment it
    was triggered (see ``window_from_context``), and a templated field that cannot be rendered
    for a run fails the task with a message in the task's own log section rather than inside
    Airflow's collapsed "Pre Execute" group.

    With ``apache-airflow-providers-openlineage`` installed (extra ``openlineage``), each run
    reports the entity set (its ``$metadata`` schema) as input and the written files (schema, rows,
    bytes) as outputs; see ``operators/lineage.py``.
    """

    template_fields: Sequence[str] = ("entity_set", "filter", "select", "expand", "orderby", "output_path")
    ui_color = "#d9ecf2"

    def __init__(
        self,
        *,
        entity_set: str,
        erpnet_conn_id: str = ErpNetHook.default_conn_name,
        filter: str | None = None,
        select: str | Sequence[str] | None = None,
        expand: str | None = None,
        orderby: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        output_path: str | os.PathLike[str] | ObjectStoragePath | None = None,
        output_format: str | None = None,
        incremental_column: str | None = None,
        overlap: dt.timedelta = dt.timedelta(minutes=5),
        check_count: CheckCount = True,
        max_rows_per_file: int | None = None,
        max_xcom_records: int = 1000,
        asset_event_if_empty: bool = False,
        partition: Partition | Mapping[str, Any] | None = None,
        on_schema_change: OnSchemaChange | None = None,
        schema_baseline: Any = None,
        max_concurrency: int = 1,
        **kwargs: Any,
    ) -> None:
        whole_set = partition is None
        if (
            output_path is not None
            and "outlets" not in kwargs
            and whole_set
            and not templated(erpnet_conn_id, entity_set)
        ):
            kwargs["outlets"] = [erpnet_asset(erpnet_conn_id, entity_set)]
        super().__init__(**kwargs)
        _check_arguments(page_size, output_format, check_count, overlap, max_xcom_records, max_rows_per_file)
        check_max_concurrency(max_concurrency)
        if not templated(entity_set):
            wire_change_assets(self, entity_set)
        self.entity_set = entity_set
        self.erpnet_conn_id = erpnet_conn_id
        self.filter = filter
        self.select = select
        self.expand = expand
        self.orderby = orderby
        self.page_size = page_size
        self.output_path = output_path
        self.output_format = output_format
        self.incremental_column = incremental_column
        self.overlap = overlap
        self.check_count = check_count
        self.max_rows_per_file = max_rows_per_file
        self.max_xcom_records = max_xcom_records
        if on_schema_change is not None:
            schema_change_mode(on_schema_change, "")  # an unknown mode fails when the DAG is parsed
        self.on_schema_change = on_schema_change
        self.schema_baseline = schema_baseline

        self._lineage: ExtractionLineage | None = None
        self.asset_event_if_empty = asset_event_if_empty
        self._render_error: jinja2.TemplateError | None = None
        self.partition = partition
        self.max_concurrency = max_concurrency
        if isinstance(partition, (Partition, Mapping)):
            self._part(as_partition(partition))  # fail when the DAG is parsed, where possible

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        """Render as usual, but keep a rendering error for ``execute`` to raise.

        Airflow 3.3 renders templates inside the log's "Pre Execute" group, which the UI shows
        collapsed, and closes that group only just before ``execute``: an error raised here would
        sit where nobody looks. Raised from ``execute``, it is the last thing the log shows.
        """
        try:
            super().render_template_fields(context, jinja_env)
        except jinja2.TemplateError as error:
            self._render_error = error

    def execute(self, context: Context) -> dict[str, Any] | list[dict[str, Any]]:
        changes = TriggeringChanges(context, self.entity_set, self.incremental_column)
        window = (
            (
                changes.window()
                if changes
                else window_from_context(context, self.incremental_column, self.overlap)
            )
            if self.incremental_column
            else None
        )
        if self._render_error is not None:
            raise _template_error(self._render_error) from self._render_error
        partition = None if self.partition is None else self._part(as_partition(self.partition))
        if window is not None and not changes and context.get("data_interval_start") is None:
            self.log.info(
                "No data interval (run triggered without a logical date): reading [%s, %s], the "
                "interval its schedule gives a run at %s.",
                (window.start + window.overlap).isoformat(),
                window.end.isoformat(),
                context["dag_run"].run_after.isoformat(),
            )
        if window is not None and changes.pending:
            self.log.info(
                "No change event triggered this run: reading the changes its watcher would report "
                "next, [%s, %s] (overlap included).",
                window.start.isoformat(),
                window.end.isoformat(),
            )
        request = ExtractionRequest(
            entity_set=self.entity_set,
            filter=self.filter or None,
            select=self.select or None,
            expand=self.expand or None,
            orderby=self.orderby or None,
            page_size=self.page_size,
            incremental_column=self.incremental_column,
            window=window,
            check_count=self.check_count,
            partition=partition,
            max_concurrency=self.max_concurrency,
        )
        hook = ErpNetHook(self.erpnet_conn_id)
        try:
            client = hook.get_conn()
            if self.output_path is None:
                records = extract_records(client, request, max_records=self.max_xcom_records, logger=self.log)
                self._lineage = ExtractionLineage(client.api_url, self.entity_set, None, None)
                changes.acknowledge(context, self.log)
                self._drop_events_if_empty(len(records))
                return records
            output_path = self.output_path
            if partition is not None:
                output_path = part_target(output_path, self.output_format, partition)
                self.log.info("Reading %s of %s: %s.", partition.label, self.entity_set, partition.filter)
            manifest = run_extraction(
                client,
                request,
                storage_target(output_path),
                fmt=self.output_format,
                max_rows_per_file=self.max_rows_per_file,
                on_schema_change=self.on_schema_change,
                # Rendered here rather than listed in template_fields: it may also be a manifest dict.
                schema_baseline=self.render_template(self.schema_baseline, context),
                logger=self.log,
            )
            entity_type = client.metadata().entity_type(self.entity_set)  # read by the run already
            self._lineage = ExtractionLineage(client.api_url, self.entity_set, entity_type, manifest)
        finally:
            hook.close()
        changes.acknowledge(context, self.log)
        if not self._drop_events_if_empty(manifest.rows):
            describe_outlet_events(self, context, manifest, window=manifest.window)
        return manifest.to_dict()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """OpenLineage datasets of the run that just succeeded (called by the OpenLineage listener)."""
        return None if self._lineage is None else operator_lineage(self._lineage)

    def _drop_events_if_empty(self, rows: int) -> bool:
        """Without rows (and ``asset_event_if_empty`` off), take the Assets out of this try's outlets.

        Airflow emits an event for each Asset in the task's outlets when the task succeeds; the
        task object is this try's own, so the DAG's declared outlets are untouched.
        """
        assets = [outlet for outlet in self.outlets if isinstance(outlet, Asset)]
        if rows or self.asset_event_if_empty or not assets:
            return False
        self.outlets = [outlet for outlet in self.outlets if not isinstance(outlet, Asset)]
        self.log.info(
            "No Asset event for %s: the extraction found no rows (asset_event_if_empty=True emits one).",
            ", ".join(asset.uri for asset in assets),
        )
        return True

    def _part(self, partition: Partition) -> Partition:
        """The partition, if it is one of this operator's entity set and can go to a file."""
        if self.output_path is None:
            raise ErpNetConfigError(
                f"{self.task_id}: partition needs output_path; each partition writes its own part file "
                "and the gather step lists them all."
            )
        if not templated(self.entity_set) and partition.entity_set != self.entity_set:
            raise ErpNetConfigError(
                f"{self.task_id}: the partition was planned for {partition.entity_set}, not "
                f"{self.entity_set}; plan the partitions of the entity set this task extracts."
            )
        return partition


def describe_outlet_events(task: BaseOperator, context: Context, manifest: Manifest, **more: Any) -> None:
    """Attach where the rows went (and ``more``) to each Asset event, for Asset-scheduled consumers."""
    extra = {
        "entity_set": manifest.entity_set,
        "format": manifest.format,
        "rows": manifest.rows,
        "paths": [info.path for info in manifest.files],
        **more,
    }
    for outlet in task.outlets:
        if isinstance(outlet, Asset):
            context["outlet_events"][outlet].extra.update(extra)


def _template_error(error: jinja2.TemplateError) -> ErpNetConfigError:
    """The rendering error, with the fix when it is a value runs without a logical date lack."""
    hint = ""
    if isinstance(error, jinja2.UndefinedError):
        hint = (
            " Runs triggered without a logical date (airflow dags trigger, the REST API) have no "
            "ds, ts, logical_date or data_interval_start/end: use values every run has, such as "
            "{{ run_id }}, {{ dag_run.run_after }} or {{ (dag_run.logical_date or dag_run.run_after) | ds }}."
        )
    return ErpNetConfigError(f"A templated argument could not be rendered for this run: {error}.{hint}")


def storage_target(
    output_path: str | os.PathLike[str] | ObjectStoragePath,
) -> str | os.PathLike[str] | ObjectStoragePath:
    """URLs other than ``file:`` go through ObjectStoragePath, which resolves ``conn_id@bucket``."""
    if isinstance(output_path, str) and local_path(output_path) is None:
        return ObjectStoragePath(output_path)
    return output_path


def templated(*values: str) -> bool:
    """Whether any value holds Jinja (known only when the task runs)."""
    return any("{{" in value or "{%" in value for value in values)


def _check_arguments(
    page_size: int,
    output_format: str | None,
    check_count: Any,
    overlap: Any,
    max_xcom_records: int,
    max_rows_per_file: int | None,
) -> None:
    """Fail at DAG parse time for arguments no run could use."""
    check_output_arguments(page_size, output_format, check_count)
    check_overlap(overlap)
    if max_xcom_records < 0:
        raise ErpNetConfigError(f"max_xcom_records must be >= 0, got {max_xcom_records}.")
    if max_rows_per_file is not None and max_rows_per_file < 1:
        raise ErpNetConfigError(f"max_rows_per_file must be >= 1, got {max_rows_per_file}.")


def check_output_arguments(page_size: Any, output_format: str | None, check_count: Any) -> None:
    """The checks every operator that reads pages into an output shares (at DAG parse time)."""
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ErpNetConfigError(
            f"page_size must be 1..{MAX_PAGE_SIZE} (ERP.net recommends 1000), got {page_size!r}."
        )
    if output_format is not None and output_format.lower() not in FORMATS:
        raise ErpNetConfigError(
            f"output_format must be one of {', '.join(FORMATS)}, or None to take it from the "
            f"output_path suffix; got {output_format!r}."
        )
    check_count_mode(check_count)
