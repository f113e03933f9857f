"""Peak memory of an extraction: does it grow with the number of rows?

Starts the sandbox CLI in a subprocess at ``--scale`` customers, then runs ``run_extraction`` (the
code ErpNetODataOperator runs) for the first ``--small`` customers and for all of them, to Parquet
and to JSON Lines, each in a fresh Python process that reports its own peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``). The small run selects its rows with ``Id le <guid>``, so
both runs page the same way (keyset by Id) through the same server.

    .venv/bin/python benchmarks/memory.py                    # 10k and 1M customers
    .venv/bin/python benchmarks/memory.py --scale 200000     # quicker

Target: the large run's peak RSS stays within 100 MB of the small run's. The exit code is 1 when
it does not, or when a run wrote a different number of rows than asked for.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENTITY_SET = "Crm_Sales_Customers"
TARGET_MB = 100.0


def start_sandbox(scale: int, warm: str = f"{ENTITY_SET}:default,Id") -> tuple[subprocess.Popen[str], str]:
    """The sandbox CLI on a free port; returns the process and its base URL once it is serving.

    ``--warm`` builds the rows the runs ask for (``default,Id`` of customers) before the runs, so
    the rows/s printed measure the client, not the sandbox building rows.
    """
    command = [sys.executable, "-m", "airflow_provider_erpnet.sandbox", "--port", "0", "--scale", str(scale)]
    command.append(f"--warm={warm}")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    base_url = None
    for line in process.stdout:
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        base_url = base_url or (found.group(0) if found else None)
        if "Stop with Ctrl+C" in line and base_url:
            return process, base_url
    raise RuntimeError(f"the sandbox CLI exited with code {process.wait()} before it was ready")


def first_rows_filter(scale: int, rows: int) -> str | None:
    """``$filter`` selecting the first ``rows`` customers in Id order, or None for all of them."""
    from airflow_provider_erpnet.client.literals import literal
    from airflow_provider_erpnet.sandbox.data import Dataset

    return None if rows >= scale else f"Id le {literal(Dataset(scale=scale).id_at(ENTITY_SET, rows - 1))}"


def child(base_url: str, limit: str | None, fmt: str, out_dir: str) -> None:
    """One extraction in this process; prints its figures as one JSON line."""
    from airflow_provider_erpnet.client import ErpNetClient, ErpNetSettings
    from airflow_provider_erpnet.operators.extraction import ExtractionRequest, run_extraction
    from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET

    settings = ErpNetSettings(
        instance_url=base_url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_SECRET,
        disk_cache=False,
    )
    before = _peak_mb()
    started = time.perf_counter()
    with ErpNetClient(settings) as client:
        manifest = run_extraction(
            client, ExtractionRequest(ENTITY_SET, filter=limit), str(Path(out_dir, f"customers.{fmt}"))
        )
    seconds = time.perf_counter() - started
    figures = {
        "format": fmt,
        "rows": manifest.rows,
        "bytes": manifest.bytes,
        "seconds": round(seconds, 2),
        "rows_per_s": round(manifest.rows / seconds),
        "peak_rss_mb": round(_peak_mb(), 1),
        "rss_before_mb": round(before, 1),
    }
    print(json.dumps(figures))


def _peak_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run_child(base_url: str, rows: int, scale: int, fmt: str) -> dict[str, float]:
    limit = first_rows_filter(scale, rows) or ""
    with tempfile.TemporaryDirectory(prefix="erpnet-bench-") as out_dir:
        command = [sys.executable, __file__, "--child", base_url, limit, fmt, out_dir]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{fmt} run of {rows} rows failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1_000_000, help="customers in the sandbox (large run)")
    parser.add_argument("--small", type=int, default=10_000, help="customers in the small run")
    parser.add_argument("--formats", default="parquet,jsonl", help="comma-separated output formats")
    parser.add_argument(
        "--child", nargs=4, metavar=("URL", "FILTER", "FORMAT", "DIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        base_url, limit, fmt, out_dir = args.child
        child(base_url, limit or None, fmt, out_dir)
        return 0

    process, base_url = start_sandbox(args.scale)
    failed = False
    try:
        print(f"sandbox at {base_url}, {args.scale} customers")
        print(f"{'format':8} {'rows':>9} {'MB out':>8} {'seconds':>8} {'rows/s':>8} {'peak RSS MB':>12}")
        for fmt in args.formats.split(","):
            runs = [run_child(base_url, rows, args.scale, fmt) for rows in (args.small, args.scale)]
            for run, rows in zip(runs, (args.small, args.scale), strict=True):
                failed |= run["rows"] != rows
                print(
                    f"{fmt:8} {run['rows']:>9} {run['bytes'] / 1e6:>8.1f} {run['seconds']:>8.1f} "
                    f"{run['rows_per_s']:>8} {run['peak_rss_mb']:>12.1f}"
                )
            growth = runs[1]["peak_rss_mb"] - runs[0]["peak_rss_mb"]
            within = growth <= TARGET_MB
            failed |= not within
            print(
                f"{fmt}: peak RSS grew {growth:+.1f} MB from {args.small} to {args.scale} rows "
                f"({'within' if within else 'OVER'} the {TARGET_MB:.0f} MB target)"
            )
    finally:
        process.terminate()
        process.wait(timeout=30)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
