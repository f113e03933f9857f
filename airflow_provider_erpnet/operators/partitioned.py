"""What a partitioned extraction needs beyond one extraction: part file names and the gather step.

A plan (``client.partitions``) splits one entity set into ranges; each range is extracted like any
query, usually by its own mapped Airflow task, into its own file(s) with a part manifest. The
gather step then checks that the parts are the whole plan, each once, and that together they
account for the set's ``$count``, and returns one manifest listing every part's files, which
downstream readers (``iter_records``, ``read_table``) read like a single extraction's.

Rows created after planning fall into exactly one partition (the ranges cover every value). A
part compares its rows with its own ``$count`` when it is read; a row created in a partition
after that is not in this output. The gather step counts each partition again: rows that arrived
in (or left) partitions after they were read are reported per part and left for the next run,
while counts that no longer add up to the set's mean a row fits no partition, which fails.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import PurePath
from typing import Any

from airflow_provider_erpnet.client.errors import ErpNetConfigError, ErpNetIncompleteError
from airflow_provider_erpnet.client.partitions import Partition, as_partition, check_plan
from airflow_provider_erpnet.io import Manifest
from airflow_provider_erpnet.io.manifest import as_manifest
from airflow_provider_erpnet.io.writers import resolve_format
from airflow_provider_erpnet.operators.extraction import CheckCount, check_count_mode
from airflow_provider_erpnet.operators.windows import and_filters

log = logging.getLogger(__name__)

# Counting every partition and the set is not one atomic read: rows created meanwhile can move
# the set's count between the two. Try again this many times before calling a mismatch a gap.
RECOUNT_ATTEMPTS = 3


def part_target(target: str | os.PathLike[str] | Any, fmt: str | None, partition: Partition) -> Any:
    """``target`` with the partition's label before the suffix: ``customers.part-002-of-008.parquet``.

    Every partition of one plan gets its own file beside the others, so parallel parts never
    write (or clean up) the same path. Strings (paths and URLs) stay strings; path objects such
    as ``ObjectStoragePath`` get ``with_name``.
    """
    if isinstance(target, str):
        head, _, name = target.rpartition("/")
        return f"{head}/{_labelled(name, fmt, partition)}" if head else _labelled(name, fmt, partition)
    if isinstance(target, PurePath) or hasattr(target, "with_name"):
        return target.with_name(_labelled(target.name, fmt, partition))
    return part_target(os.fspath(target), fmt, partition)


def _labelled(name: str, fmt: str | None, partition: Partition) -> str:
    layout = resolve_format(name, fmt)
    return f"{layout.stem}.{partition.label}{layout.suffix}"


def gather_parts(
    count: Callable[..., int],
    manifests: Iterable[Manifest | Mapping[str, Any]],
    *,
    check_count: CheckCount = True,
    logger: logging.Logger | logging.LoggerAdapter = log,
) -> Manifest:
    """One manifest for the parts of one plan, checked against the server's ``$count``.

    ``count(entity_set, filter=...)`` is ``ErpNetClient.count``.

    Raises ``ErpNetIncompleteError`` when a partition is missing or repeated, when a part wrote
    other than its own ``$count`` (a part extracted with ``check_count='warn'``), or when the
    partitions' counts no longer add up to the set's. ``check_count='warn'`` logs those count
    mismatches instead, False skips every count.
    """
    check_count_mode(check_count)
    parts = sorted((_part(m) for m in manifests), key=lambda part: part[1].index)
    check_plan([partition for _, partition in parts])
    first, partition = parts[0]
    base = partition.base_filter
    _check_alike(parts)
    rows = sum(manifest.rows for manifest, _ in parts)
    summaries = [_summary(manifest, partition) for manifest, partition in parts]
    server_count = None
    if check_count is not False:
        _check_parts(parts, check_count, logger)
        server_count = count(first.entity_set, filter=base)
        if server_count != rows:
            server_count = _recount(count, parts, summaries, server_count, check_count, logger)
    gathered = Manifest(
        entity_set=first.entity_set,
        format=first.format,
        files=[info for manifest, _ in parts for info in manifest.files],
        rows=rows,
        bytes=sum(manifest.bytes for manifest, _ in parts),
        columns=first.columns,
        query=_without_partition(first.query, base),
        window=first.window,
        server_count=server_count,
        duplicates_removed=sum(manifest.duplicates_removed for manifest, _ in parts),
        duration_seconds=max(manifest.duration_seconds for manifest, _ in parts),
        parts=summaries,
    )
    logger.info(
        "%s: gathered %d parts by %s, %d rows in %d file(s); the server counts %s.",
        gathered.entity_set,
        len(parts),
        partition.column,
        rows,
        len(gathered.files),
        "(not checked)" if server_count is None else server_count,
    )
    return gathered


def _without_partition(query: Mapping[str, str], base: str | None) -> dict[str, str]:
    """A part's query as the whole extraction's: its filter without the partition's range."""
    options = {name: value for name, value in query.items() if name != "filter"}
    return {"filter": base, **options} if base else options


def _part(value: Manifest | Mapping[str, Any]) -> tuple[Manifest, Partition]:
    manifest = as_manifest(value)  # type: ignore[arg-type]
    if manifest.partition is None:
        raise ErpNetConfigError(
            f"A manifest of {manifest.entity_set} without a partition was passed to the gather step; "
            "gather the output of ErpNetODataOperator.partial(...).expand(partition=...)."
        )
    return manifest, as_partition(manifest.partition)


def _check_alike(parts: list[tuple[Manifest, Partition]]) -> None:
    """Parts of one output agree on the set, the format, the columns and the base filter."""
    first, partition = parts[0]
    for manifest, other in parts[1:]:
        differs = [
            what
            for what, same in (
                ("entity set", manifest.entity_set == first.entity_set),
                ("format", manifest.format == first.format),
                ("filter", other.base_filter == partition.base_filter),
                ("columns", manifest.columns == first.columns),
            )
            if not same
        ]
        if differs:
            raise ErpNetConfigError(
                f"{other.label} differs from {partition.label} in its {', '.join(differs)}; the parts of "
                "one output come from one operator.partial(...) (with select naming the columns, as "
                "select=None takes the columns of each part's first page)."
            )


def _summary(manifest: Manifest, partition: Partition) -> dict[str, Any]:
    return {
        "index": partition.index,
        "label": partition.label,
        "filter": partition.filter,
        "rows": manifest.rows,
        "server_count": manifest.server_count,
        "files": [info.path for info in manifest.files],
        "duration_seconds": manifest.duration_seconds,
    }


def _check_parts(parts: list[tuple[Manifest, Partition]], mode: CheckCount, logger: Any) -> None:
    """Each part must have written exactly what the server counted for it when it was read."""
    unverified = [
        f"{partition.label} wrote {manifest.rows} rows, the server counted {manifest.server_count}"
        for manifest, partition in parts
        if manifest.server_count != manifest.rows
    ]
    if not unverified:
        return
    message = f"{parts[0][0].entity_set}: " + "; ".join(unverified) + "."
    if mode == "warn":
        logger.warning("%s Gathering anyway because check_count='warn'.", message)
        return
    raise ErpNetIncompleteError(
        f"{message} Those parts were not checked against $count (check_count='warn' or False); "
        "extract them again with check_count=True, or gather with check_count='warn'."
    )


def _recount(
    count: Callable[..., int],
    parts: list[tuple[Manifest, Partition]],
    summaries: list[dict[str, Any]],
    server_count: int,
    mode: CheckCount,
    logger: Any,
) -> int:
    """Count each partition and the set again; explain the difference or raise."""
    entity_set, base = parts[0][0].entity_set, parts[0][1].base_filter
    for _ in range(RECOUNT_ATTEMPTS):
        counts = [count(entity_set, filter=and_filters(base, partition.filter)) for _, partition in parts]
        after = count(entity_set, filter=base)
        if min(server_count, after) <= sum(counts) <= max(server_count, after):
            after = sum(counts)  # the set's count at one moment between, consistent with the parts'
            break
        server_count = after
    else:
        message = (
            f"{entity_set}: the {len(parts)} partitions count {sum(counts)} rows together but the set "
            f"{after}, so some rows belong to no partition (or to two) and may be missing from the output."
        )
        if mode != "warn":
            raise ErpNetIncompleteError(f"{message} Plan the partitions again and re-run the extraction.")
        logger.warning("%s Gathering anyway because check_count='warn'.", message)
    changed = []
    for summary, (manifest, partition), now in zip(summaries, parts, counts, strict=True):
        summary["count_at_gather"] = now
        if now != manifest.rows:
            changed.append(f"{partition.label} {now - manifest.rows:+d}")
    if changed:
        logger.warning(
            "%s: rows were created or deleted in partitions after they were read (%s); this output "
            "has the rows as each part read them, the next run reads the rest.",
            entity_set,
            ", ".join(changed),
        )
    return after
