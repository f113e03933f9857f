"""Side-by-side speed of ERP.net readers on the same pages: rows/s, CPU s per 100k rows, peak RSS.

Saves ``--rows`` customers of the warmed sandbox as static pages once (``data.py``), serves them
from a separate process (``static_server.py``) and runs every registered client
(``clients.py``) in a fresh process, ``--repeats`` times in rotation, at each ``--latencies``
(milliseconds the server waits before each page; runs with latency read ``--latency-pages``
pages). Prints the medians and the issue-7 targets as ratios of the same run, and writes JSON.

    .venv/bin/python benchmarks/bench.py                         # what `make bench` runs
    .venv/bin/python benchmarks/bench.py --clients lean,ours-jsonl --latencies 0 --repeats 5

The dlt client runs in ``benchmarks/.venv-dlt``, created here on first use (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from clients import CLIENTS, Client, Config  # noqa: E402
from data import saved_pages  # noqa: E402
from static_server import TOKEN  # noqa: E402

DLT_VENV = HERE / ".venv-dlt"
DLT_REQUIREMENT = "dlt>=1.0"
DEFAULT_JSON = HERE / "results" / "bench-latest.json"

# (numerator, denominator, at least): issue 7's targets, checked on the zero-latency medians.
TARGETS = [
    ("ours-jsonl", "lean", 1.3),
    ("ours-jsonl", "naive", 5.0),
    ("ours-jsonl", "dlt", 25.0),
    ("ours-jsonl", "httpoperator", 4.0),
    ("ours-csv", "ours-jsonl", 0.7),
    ("ours-parquet", "ours-jsonl", 0.7),
]
# Checked on the medians at 200 ms per page: Id ranges read at once against one stream.
LATENCY_TARGETS = [("ours-jsonl-c8", "ours-jsonl", 6.0)]


def dlt_python() -> str:
    """The dlt virtualenv's interpreter, creating the virtualenv on first use."""
    python = DLT_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {DLT_VENV} with {DLT_REQUIREMENT} (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(DLT_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", DLT_REQUIREMENT], check=True)
    return str(python)


def start_server(directory: Path, latency_ms: int, pages: int | None) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, str(HERE / "static_server.py"), str(directory), f"--latency-ms={latency_ms}"]
    if pages:
        command.append(f"--pages={pages}")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    base_url = process.stdout.readline().strip()
    if not base_url.startswith("http://"):
        raise RuntimeError(f"the static server did not start (exit code {process.wait()})")
    return process, base_url


def run_client(client: Client, config: Config) -> dict[str, float]:
    """One run in a fresh process; its last stdout line is the figures."""
    with tempfile.TemporaryDirectory(prefix=f"erpnet-bench-{client.name}-") as out_dir:
        payload = json.dumps({**asdict(config), "out_dir": out_dir})
        if client.python == "dlt":
            command = [dlt_python(), str(HERE / "dlt_client.py"), payload]
        else:
            command = [sys.executable, str(HERE / "clients.py"), client.name, payload]
        env = {**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING", "PYTHONPATH": str(HERE)}
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{client.name} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def median_figures(runs: list[dict[str, float]]) -> dict[str, float]:
    """Medians of each figure; rows/s from the median seconds."""
    seconds = statistics.median(run["seconds"] for run in runs)
    rows = runs[0]["rows"]
    return {
        "rows": rows,
        "runs": len(runs),
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds),
        "cpu_s_per_100k": round(statistics.median(run["cpu_s_per_100k"] for run in runs), 3),
        "peak_rss_mb": round(statistics.median(run["peak_rss_mb"] for run in runs), 1),
    }


def print_table(latency: int, results: dict[str, dict[str, float]]) -> None:
    print(f"\n### latency {latency} ms per page\n")
    print("| client | rows | work rows/s | CPU s per 100k rows | peak RSS MB |")
    print("|---|---:|---:|---:|---:|")
    for name, figures in sorted(results.items(), key=lambda item: -item[1]["rows_per_s"]):
        print(
            f"| {CLIENTS[name].label} | {figures['rows']:,} | {figures['rows_per_s']:,} | "
            f"{figures['cpu_s_per_100k']:.2f} | {figures['peak_rss_mb']:.0f} |"
        )


def check_targets(
    results: dict[str, dict[str, float]], latency: int, targets: list[tuple[str, str, float]]
) -> list[dict[str, object]]:
    checks = []
    print(f"\n### targets (latency {latency} ms, ratios of median rows/s in this run)\n")
    for numerator, denominator, target in targets:
        if numerator not in results or denominator not in results:
            continue
        ratio = results[numerator]["rows_per_s"] / results[denominator]["rows_per_s"]
        met = ratio >= target
        checks.append(
            {"of": numerator, "over": denominator, "ratio": round(ratio, 2), "target": target, "met": met}
        )
        verdict = "met" if met else f"MISSED by {(1 - ratio / target):.0%}"
        print(f"- {numerator} / {denominator}: {ratio:.2f}x (target >= {target}x): {verdict}")
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="customers saved from the sandbox")
    parser.add_argument("--latencies", default="0,200", help="comma-separated ms per page")
    parser.add_argument("--latency-pages", type=int, default=40, help="pages read when latency > 0")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", default=",".join(CLIENTS), help=f"any of {', '.join(CLIENTS)}")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the figures")
    args = parser.parse_args()

    names = [name.strip() for name in args.clients.split(",") if name.strip()]
    unknown = sorted(set(names) - set(CLIENTS))
    if unknown:
        parser.error(f"unknown clients {unknown}; known: {', '.join(CLIENTS)}")
    directory = saved_pages(args.rows)
    info = json.loads((directory / "info.json").read_text())
    started = time.time()
    report: dict[str, object] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "rows_saved": info["rows"],
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "latencies": {},
    }
    for latency in (int(value) for value in args.latencies.split(",")):
        pages = args.latency_pages if latency else info["pages"]
        chosen = [
            CLIENTS[n] for n in names if CLIENTS[n].latencies is None or latency in CLIENTS[n].latencies
        ]
        server, base_url = start_server(directory, latency, pages)
        runs: dict[str, list[dict[str, float]]] = {client.name: [] for client in chosen}
        try:
            rows = sum(info["page_rows"][:pages])
            config = Config(base_url, info["entity_set"], rows, pages, "", TOKEN)
            for repeat in range(args.repeats):
                for client in chosen:
                    figures = run_client(client, config)
                    if figures["rows"] != rows:
                        raise RuntimeError(f"{client.name} delivered {figures['rows']} rows, expected {rows}")
                    runs[client.name].append(figures)
                    print(
                        f"latency {latency} ms, run {repeat + 1}/{args.repeats}, {client.name}: "
                        f"{figures['rows_per_s']:,} rows/s",
                        flush=True,
                    )
        finally:
            server.terminate()
            server.wait(timeout=30)
        results = {name: median_figures(client_runs) for name, client_runs in runs.items()}
        print_table(latency, results)
        entry: dict[str, object] = {"pages": pages, "results": results, "runs": runs}
        if latency in (0, 200):
            entry["targets"] = check_targets(results, latency, TARGETS if latency == 0 else LATENCY_TARGETS)
        report["latencies"][str(latency)] = entry  # type: ignore[index]
    report["load_average_after"] = os.getloadavg()
    report["duration_seconds"] = round(time.time() - started)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
