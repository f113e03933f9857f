"""Several runs writing one target at once, over real HTTP: none deletes another's live files.

Each run is its own process, started 0.3 s after the previous one, against a sandbox slow enough
that all of them are reading pages at the same time. A run removes only files whose owner is
dead (its lock is free), so every run commits; the last to commit owns the output, and the
published manifest lists exactly the files on disk.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from airflow_provider_erpnet.io import iter_records
from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET

CUSTOMERS = "Crm_Sales_Customers"
RUNS = 5
RUN = """
import json, sys
from airflow_provider_erpnet.client import ErpNetClient, ErpNetSettings
from airflow_provider_erpnet.operators.extraction import ExtractionRequest, run_extraction

url, client_id, secret, target = sys.argv[1:5]
settings = ErpNetSettings(instance_url=url, client_id=client_id, client_secret=secret, disk_cache=False)
with ErpNetClient(settings) as client:
    request = ExtractionRequest(sys.argv[5], page_size=100)
    manifest = run_extraction(client, request, target, max_rows_per_file=700)
print(json.dumps(manifest.to_dict()))
"""


def test_runs_started_together_on_one_target_all_commit(erpnet_sandbox_factory, tmp_path: Path) -> None:
    sandbox = erpnet_sandbox_factory(scale=2_000, latency_ms=100)
    target = tmp_path / "customers.csv"
    runs = []
    for _ in range(RUNS):
        command = [
            sys.executable,
            "-c",
            RUN,
            sandbox.base_url,
            DEFAULT_CLIENT_ID,
            DEFAULT_SECRET,
            str(target),
        ]
        runs.append(
            subprocess.Popen([*command, CUSTOMERS], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
        time.sleep(0.3)
    outcomes = [run.communicate(timeout=300) for run in runs]

    failures = [err[-2000:] for run, (_, err) in zip(runs, outcomes, strict=True) if run.returncode != 0]
    assert not failures, "\n---\n".join(failures)
    warned = [err for _, err in outcomes if "other run(s) are writing" in err]
    assert warned, "the runs did not overlap: the test proves nothing"
    manifests = [json.loads(out) for out, _ in outcomes]
    assert all(m["rows"] == m["server_count"] == 2_000 for m in manifests)

    from airflow_provider_erpnet.io import read_published_manifest

    published = read_published_manifest(target)
    assert published is not None
    assert published.to_dict() in manifests
    on_disk = sorted(p.name for p in tmp_path.iterdir())
    assert on_disk == sorted(["_customers.csv.manifest.json", *(Path(f.path).name for f in published.files)])
    ids = [record["Id"] for record in iter_records(published)]
    assert ids == [row["Id"] for row in sandbox.dataset.rows(CUSTOMERS)]
