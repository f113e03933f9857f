"""OpenLineage datasets of an extraction: the ERP.net entity set in, the written files out.

Only the OpenLineage listener calls into this module (through the operator's
``get_openlineage_facets_on_complete``), so its imports of ``apache-airflow-providers-openlineage``
happen inside the functions, as in Airflow's own providers: without the ``openlineage`` extra
nothing here is ever imported.

Naming follows OpenLineage's conventions (namespace = the data source, name = the dataset in it):

* input: namespace ``erpnet://<Domain API host[:port]>``, name the entity set; the schema facet
  lists every member of its entity type in ``$metadata`` (type names as ERP.net writes them).
* outputs: one dataset per written file, named as Airflow's own providers name files
  (``file`` + absolute path, ``s3://bucket`` + key); the schema facet holds the columns as
  written and the output statistics facet the file's rows and bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_erpnet.client.metadata import StructuredType
from airflow_provider_erpnet.io import Column, Manifest
from airflow_provider_erpnet.io.schema import type_label

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

INPUT_SCHEME = "erpnet"


@dataclass(frozen=True)
class ExtractionLineage:
    """What one run read and wrote, captured while it ran (the client is closed afterwards)."""

    api_url: str
    entity_set: str
    entity_type: StructuredType | None  # None when $metadata was not read (records to XCom)
    manifest: Manifest | None  # None when the records went to XCom


def input_namespace(api_url: str) -> str:
    """``erpnet://host[:port]`` of the Domain API the entity set lives in."""
    return f"{INPUT_SCHEME}://{urlsplit(api_url).netloc.rpartition('@')[2]}"


def operator_lineage(lineage: ExtractionLineage) -> OperatorLineage:
    """The ``OperatorLineage`` of one extraction (needs apache-airflow-providers-openlineage)."""
    from airflow.providers.common.compat.openlineage.facet import (
        Dataset,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage

    facets = {} if lineage.entity_type is None else {"schema": _source_schema(lineage.entity_type)}
    source = Dataset(namespace=input_namespace(lineage.api_url), name=lineage.entity_set, facets=facets)
    outputs = []
    manifest = lineage.manifest
    for info in manifest.files if manifest is not None else ():
        namespace, name = output_dataset_name(info.path)
        outputs.append(
            OutputDataset(
                namespace=namespace,
                name=name,
                facets={"schema": _written_schema(manifest.columns)},
                outputFacets={
                    "outputStatistics": OutputStatisticsOutputDatasetFacet(
                        rowCount=info.rows, size=info.bytes, fileCount=1
                    )
                },
            )
        )
    return OperatorLineage(inputs=[source], outputs=outputs)


def _source_schema(entity_type: StructuredType) -> Any:
    from airflow.providers.common.compat.openlineage.facet import SchemaDatasetFacet, SchemaDatasetFacetFields

    fields = [
        SchemaDatasetFacetFields(name=p.name, type=type_label(p.type, p.collection))
        for p in entity_type.properties
    ]
    fields += [
        SchemaDatasetFacetFields(
            name=n.name,
            type=type_label(n.type, n.collection),
            description="navigation property (a reference, or child rows with $expand)",
        )
        for n in entity_type.navigations
    ]
    return SchemaDatasetFacet(fields=fields)


def _written_schema(columns: list[Column]) -> Any:
    from airflow.providers.common.compat.openlineage.facet import SchemaDatasetFacet, SchemaDatasetFacetFields

    return SchemaDatasetFacet(
        fields=[
            SchemaDatasetFacetFields(name=c.name, type=_column_type(c), description=c.source_type)
            for c in columns
        ]
    )


def _column_type(column: Column) -> str:
    if column.precision is not None and column.scale is not None:
        return f"{column.kind}({column.precision},{column.scale})"
    return column.kind


def output_dataset_name(path: str) -> tuple[str, str]:
    """(namespace, name) of a written file as Airflow's providers name it for OpenLineage.

    A local file is ``file`` + its absolute path, as the common.io provider converts a file Asset
    and as OpenLineage's naming spec writes it; an object store is ``ObjectStoragePath``'s
    namespace (``s3://bucket``) + key, as the amazon and google providers convert their Assets.
    """
    from airflow.sdk import ObjectStoragePath

    if "://" not in path:
        return "file", path
    if path.startswith("file://"):
        return "file", path.removeprefix("file://")
    target = ObjectStoragePath(path)
    return target.namespace, target.key
