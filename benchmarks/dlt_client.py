"""The dlt client: ``rest_api`` source -> ``filesystem`` destination as JSON Lines (gzip, dlt's default).

Runs in ``benchmarks/.venv-dlt`` (created by ``bench.py``: dlt's dependencies would clash with
Airflow's), so it imports nothing from this repository but ``measure.py``. Paging follows
``@odata.nextLink``; the static server's bearer token stands in for OAuth2 (one request either way).

    benchmarks/.venv-dlt/bin/python benchmarks/dlt_client.py CONFIG_JSON
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from measure import measure, report  # type: ignore[import-not-found]


def main() -> int:
    config = json.loads(sys.argv[1])
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    import dlt
    from dlt.sources.rest_api import rest_api_source

    api_url = f"{config['base_url']}/api/domain/odata/"
    source = rest_api_source(
        {
            "client": {
                "base_url": api_url,
                "auth": {"type": "bearer", "token": config["token"]},
                "paginator": {"type": "json_link", "next_url_path": "['@odata.nextLink']"},
            },
            "resources": [
                {
                    "name": "customers",
                    "endpoint": {
                        "path": config["entity_set"],
                        "params": {"$select": "default,Id", "$top": 1000},
                        "data_selector": "value",
                    },
                }
            ],
        }
    )
    out = Path(config["out_dir"])
    pipeline = dlt.pipeline(
        pipeline_name="bench",
        pipelines_dir=str(out / "pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=(out / "dlt").as_uri()),
        dataset_name="bench",
    )

    def work() -> int:
        pipeline.run(source, loader_file_format="jsonl")
        counts = pipeline.last_trace.last_normalize_info.row_counts
        return int(counts.get("customers", 0))

    report(measure(work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
