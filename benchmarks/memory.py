"""Peak memory of an extraction: does it grow with the number of rows?

Starts the sandbox CLI in a subprocess at ``--scale`` customers, then runs ``run_extraction`` (the
code ErpNetODataOperator runs) for the first ``--small`` customers and for all of them, each in a
fresh Python process that reports its own peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``). The
small run selects its rows with ``Id le <guid>``, so both runs page the same way through the
same server. Runs: JSON Lines, CSV and Parquet (keyset paging, the direct path), and ``staged``:
JSON Lines with ``$orderby=Number desc``, which breaks Id order, so every row goes through the
spool and the SQLite table of Ids before the output is written. ``jsonl-c8``: JSON Lines read in
8 streams (``max_concurrency=8``).

    .venv/bin/python benchmarks/memory.py                    # 10k and 1M customers
    .venv/bin/python benchmarks/memory.py --scale 200000     # quicker

Targets (issue 7), growth of peak RSS from the small to the large run: at most 20 MB for JSON
Lines and CSV, 60 MB for Parquet and for the staged path. The exit code is 1 when one is missed,
or when a run wrote a different number of rows than asked for. Figures also go to
``benchmarks/results/memory-latest.json``.
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
# run -> (output format, $orderby, most MB the peak RSS may grow from the small to the large run)
RUNS = {
    "jsonl": ("jsonl", None, 20.0),
    "csv": ("csv", None, 20.0),
    "parquet": ("parquet", None, 60.0),
    "staged": ("jsonl", "Number desc", 60.0),
    # 8 streams: the JSON Lines bound plus the 16 MB of bodies waiting in memory and one per reader
    "jsonl-c8": ("jsonl", None, 40.0),
}
MAX_CONCURRENCY = {"jsonl-c8": 8}
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "memory-latest.json"


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


def child(base_url: str, limit: str | None, run: str, out_dir: str) -> None:
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
    fmt, orderby, _ = RUNS[run]
    before = _peak_mb()
    started = time.perf_counter()
    with ErpNetClient(settings) as client:
        manifest = run_extraction(
            client,
            ExtractionRequest(
                ENTITY_SET, filter=limit, orderby=orderby, max_concurrency=MAX_CONCURRENCY.get(run, 1)
            ),
            str(Path(out_dir, f"customers.{fmt}")),
        )
    seconds = time.perf_counter() - started
    figures = {
        "run": run,
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


def run_child(base_url: str, rows: int, scale: int, run: str) -> dict[str, float]:
    limit = first_rows_filter(scale, rows) or ""
    with tempfile.TemporaryDirectory(prefix="erpnet-bench-") as out_dir:
        command = [sys.executable, __file__, "--child", base_url, limit, run, out_dir]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{run} run of {rows} rows failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1_000_000, help="customers in the sandbox (large run)")
    parser.add_argument("--small", type=int, default=10_000, help="customers in the small run")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, any of {', '.join(RUNS)}")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the figures")
    parser.add_argument("--child", nargs=4, metavar=("URL", "FILTER", "RUN", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        base_url, limit, run, out_dir = args.child
        child(base_url, limit or None, run, out_dir)
        return 0
    runs = [name.strip() for name in args.runs.split(",") if name.strip()]
    unknown = sorted(set(runs) - set(RUNS))
    if unknown:
        parser.error(f"unknown runs {unknown}; known: {', '.join(RUNS)}")

    started = time.time()
    process, base_url = start_sandbox(args.scale)
    failed = False
    report: dict[str, object] = {"scale": args.scale, "small": args.small, "runs": {}}
    try:
        print(f"sandbox at {base_url}, {args.scale:,} customers, ready in {time.time() - started:.0f} s\n")
        print("| run | rows | MB out | seconds | rows/s | peak RSS MB | growth MB | target MB |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for run in runs:
            figures = [run_child(base_url, rows, args.scale, run) for rows in (args.small, args.scale)]
            growth = figures[1]["peak_rss_mb"] - figures[0]["peak_rss_mb"]
            target = RUNS[run][2]
            within = growth <= target
            failed |= not within or any(
                f["rows"] != rows for f, rows in zip(figures, (args.small, args.scale), strict=True)
            )
            for f in figures:
                print(
                    f"| {run} | {f['rows']:,} | {f['bytes'] / 1e6:.1f} | {f['seconds']:.1f} | "
                    f"{f['rows_per_s']:,} | {f['peak_rss_mb']:.1f} | "
                    + (
                        f"{growth:+.1f} | {target:.0f} {'met' if within else 'MISSED'} |"
                        if f is figures[1]
                        else " | |"
                    )
                )
            report["runs"][run] = {"figures": figures, "growth_mb": round(growth, 1), "target_mb": target}  # type: ignore[index]
    finally:
        process.terminate()
        process.wait(timeout=30)
    report["duration_seconds"] = round(time.time() - started)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nfigures written to {args.json} ({report['duration_seconds']} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
