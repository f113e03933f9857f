"""``ErpNetReconcileOperator``: find the rows deleted in ERP.net since the last reconciliation.

A thin adapter over ``changes.reconcile.run_reconciliation`` (see it for how the snapshot and the
tombstones are committed, and why nothing is lost when a run fails half way).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from airflow.sdk import Asset, BaseOperator, Context, ObjectStoragePath

from airflow_provider_erpnet.changes.reconcile import ReconcileRequest, run_reconciliation
from airflow_provider_erpnet.client.odata import MAX_PAGE_SIZE
from airflow_provider_erpnet.hooks.erpnet import ErpNetHook
from airflow_provider_erpnet.operators.extraction import CheckCount
from airflow_provider_erpnet.operators.odata import (
    ASSET_SCHEME,
    check_output_arguments,
    describe_outlet_events,
    storage_target,
    templated,
)


def erpnet_deletions_asset(erpnet_conn_id: str, entity_set: str) -> Asset:
    """The Asset a reconciliation of ``entity_set`` updates: ``erpnet://<conn>/<set>/deletions``."""
    return Asset(f"{ASSET_SCHEME}://{erpnet_conn_id}/{entity_set}/deletions")


class ErpNetReconcileOperator(BaseOperator):
    """Write the Ids deleted from ``entity_set`` since the previous run as tombstones.

    Reads every Id (``$select=Id``, keyset paging: one request per 1,000 rows), compares them with
    the sorted Id snapshot the previous successful run left at ``snapshot_path``, writes each Id
    that disappeared with the time it was detected (``Id``, ``detected_at``) to ``output_path``,
    then replaces the snapshot. The first run only takes the snapshot (no tombstones). Rows created
    and deleted between two runs are never seen. Returns the tombstones' manifest; its
    ``reconciliation`` section counts Ids before and now, deleted and added.

    :param entity_set: e.g. ``Crm_Sales_Customers`` (templated).
    :param snapshot_path: file path or URL of the snapshot kept between runs, one per entity set
        and connection, e.g. ``s3://aws_default@lake/erpnet/customers/_ids.snapshot`` (templated).
    :param output_path: where this run's tombstones go, any output format, e.g.
        ``s3://aws_default@lake/erpnet/customers/deleted/{{ ds }}.parquet`` (templated).
    :param output_format: ``parquet``, ``jsonl`` or ``csv``; default from the suffix.
    :param check_count: compare the Ids read with ``$count``: True fails on a mismatch (nothing is
        committed: a lost page would otherwise look like deleted rows), ``"warn"`` logs, False skips.
    :param page_size: Ids per request, 1..1000.

    Unless ``outlets`` is given, the task updates ``erpnet://<conn>/<entity_set>/deletions``.
    Runs of one ``snapshot_path`` must not overlap (``max_active_runs=1`` or one task per DAG).
    """

    template_fields: Sequence[str] = ("entity_set", "snapshot_path", "output_path")
    ui_color = "#f2dfd9"

    def __init__(
        self,
        *,
        entity_set: str,
        snapshot_path: str | os.PathLike[str] | ObjectStoragePath,
        output_path: str | os.PathLike[str] | ObjectStoragePath,
        erpnet_conn_id: str = ErpNetHook.default_conn_name,
        output_format: str | None = None,
        check_count: CheckCount = True,
        page_size: int = MAX_PAGE_SIZE,
        **kwargs: Any,
    ) -> None:
        if "outlets" not in kwargs and not templated(erpnet_conn_id, entity_set):
            kwargs["outlets"] = [erpnet_deletions_asset(erpnet_conn_id, entity_set)]
        super().__init__(**kwargs)
        check_output_arguments(page_size, output_format, check_count)
        self.entity_set = entity_set
        self.snapshot_path = snapshot_path
        self.output_path = output_path
        self.erpnet_conn_id = erpnet_conn_id
        self.output_format = output_format
        self.check_count = check_count
        self.page_size = page_size

    def execute(self, context: Context) -> dict[str, Any]:
        request = ReconcileRequest(self.entity_set, page_size=self.page_size, check_count=self.check_count)
        hook = ErpNetHook(self.erpnet_conn_id)
        try:
            manifest = run_reconciliation(
                hook.get_conn(),
                request,
                storage_target(self.snapshot_path),
                storage_target(self.output_path),
                fmt=self.output_format,
                logger=self.log,
            )
        finally:
            hook.close()
        describe_outlet_events(self, context, manifest, reconciliation=manifest.reconciliation)
        return manifest.to_dict()
