"""Id reconciliation at scale: exact tombstones, and memory that does not grow with the set.

Starts the sandbox CLI in a subprocess with ``--scale`` customers (1,000,000 by default), runs
``run_reconciliation`` (the code ErpNetReconcileOperator runs) once to take the first snapshot,
deletes ``--delete`` customers chosen at random through ``POST /admin/delete``, and reconciles
again. Each reconciliation runs in a fresh Python process that reports its own peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``). Then the tombstones the second run wrote are compared,
exactly, with the Ids deleted.

    .venv/bin/python benchmarks/reconcile_million.py
    .venv/bin/python benchmarks/reconcile_million.py --scale 100000 --delete 1000   # quicker

Targets: every run's peak RSS under 150 MB; tombstones equal to the deleted Ids. The exit code is
1 when either fails. Seconds depend on the machine (and on what else runs on it); the sandbox
answers from a warmed cache, so they measure the client.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from memory import start_sandbox  # benchmarks/memory.py: the sandbox CLI on a free port

ENTITY_SET = "Crm_Sales_Customers"
TARGET_MB = 150.0


def child(base_url: str, snapshot: str, output: str) -> None:
    """One reconciliation in this process; prints its figures as one JSON line."""
    from airflow_provider_erpnet.changes.reconcile import ReconcileRequest, run_reconciliation
    from airflow_provider_erpnet.client import ErpNetClient, ErpNetSettings
    from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET

    settings = ErpNetSettings(base_url, DEFAULT_CLIENT_ID, DEFAULT_SECRET, disk_cache=False)
    began = time.perf_counter()
    with ErpNetClient(settings) as client:
        manifest = run_reconciliation(client, ReconcileRequest(ENTITY_SET), snapshot, output)
    seconds = time.perf_counter() - began
    figures = {
        **(manifest.reconciliation or {}),
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "tombstones": [info.path for info in manifest.files],
    }
    print(json.dumps(figures))


def reconcile(base_url: str, snapshot: Path, output: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", base_url, str(snapshot), str(output)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the reconciliation failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def delete(base_url: str, ids: list[str]) -> int:
    deleted = 0
    with requests.Session() as session:
        for start in range(0, len(ids), 10_000):
            answer = session.post(
                f"{base_url}/admin/delete",
                json={"entity_set": ENTITY_SET, "ids": ids[start : start + 10_000]},
                timeout=600,
            )
            answer.raise_for_status()
            deleted += answer.json()["deleted"]
    return deleted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1_000_000, help="customers in the sandbox")
    parser.add_argument("--delete", type=int, default=10_000, help="customers deleted between the runs")
    parser.add_argument("--format", default="parquet", choices=("parquet", "jsonl", "csv"))
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0

    from airflow_provider_erpnet.io import iter_records
    from airflow_provider_erpnet.sandbox.data import Dataset

    print(f"Sandbox: {args.scale:,} customers; deleting {args.delete:,} between two reconciliations.")
    dataset = Dataset(scale=args.scale)
    positions = sorted(random.Random(args.seed).sample(range(args.scale), args.delete))
    chosen = [dataset.id_at(ENTITY_SET, pos) for pos in positions]
    process, base_url = start_sandbox(args.scale, warm=f"{ENTITY_SET}:Id")
    try:
        with tempfile.TemporaryDirectory(prefix="erpnet-reconcile-") as scratch:
            work = Path(scratch)
            snapshot = work / "state" / "customers.ids"
            first = reconcile(base_url, snapshot, work / f"deleted-1.{args.format}")
            print(
                f"run 1 (first snapshot): {first['ids_now']:,} Ids in {first['seconds']} s, "
                f"{first['deleted']} tombstones, peak RSS {first['peak_rss_mb']} MB"
            )
            gone = delete(base_url, chosen)
            second = reconcile(base_url, snapshot, work / f"deleted-2.{args.format}")
            print(
                f"run 2: {second['ids_now']:,} Ids ({second['ids_before']:,} before), "
                f"{second['seconds']} s, "
                f"{second['deleted']:,} tombstones, peak RSS {second['peak_rss_mb']} MB"
            )
            manifest = json.loads((work / f"_deleted-2.{args.format}.manifest.json").read_text())
            tombstones = [record["Id"] for record in iter_records(manifest)]
    finally:
        process.terminate()
        process.wait(timeout=60)

    exact = tombstones == sorted(chosen)
    peaks = [first["peak_rss_mb"], second["peak_rss_mb"]]
    print(f"deleted in the sandbox: {gone:,}; tombstones: {len(tombstones):,}")
    print(f"tombstones == deleted Ids (exact, in Id order): {exact}")
    verdict = "ok" if max(peaks) < TARGET_MB else "OVER"
    print(f"peak RSS: {max(peaks)} MB (target < {TARGET_MB:.0f} MB): {verdict}")
    print(f"this benchmark's own process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0 if exact and gone == args.delete and max(peaks) < TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
