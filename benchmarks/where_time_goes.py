"""Where one client's time goes: py-spy samples of the extraction's threads, by category.

Runs one client of ``clients.py`` (``ours-jsonl`` by default) against the saved static pages
under ``py-spy record --gil --native`` and prints the share of each category of the samples
taken while the extraction (the timed work, and the page reader thread) held the GIL. Every
Python step of an extraction needs the GIL, so these shares are what bounds its speed; C
functions (msgspec, the garbage collector, Arrow) are seen through ``--native``.

    .venv/bin/python benchmarks/where_time_goes.py                    # ours-jsonl, 200,000 rows
    .venv/bin/python benchmarks/where_time_goes.py ours-csv --raw /tmp/csv.txt   # keep the samples too

py-spy needs ptrace rights over its child (as root, or with kernel.yama.ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench import start_server  # noqa: E402
from clients import CLIENTS, Config  # noqa: E402
from data import saved_pages  # noqa: E402
from static_server import TOKEN  # noqa: E402

Frames = list[str]


def _within(*names: str) -> Callable[[Frames], bool]:
    return lambda frames: any(name in frame for frame in frames for name in names)


# First match wins, so a sample counts once: the collector before whatever set it off.
CATEGORIES: list[tuple[str, Callable[[Frames], bool]]] = [
    ("cyclic garbage collector", _within("gc_collect_main")),
    ("decode page bodies (msgspec into record structs)", _within("PageCodec.decode")),
    ("HTTP: request, bounded body read, retry policy, URL checks", _within("Transport._request")),
    ("column checks and fixes (PageCodec.prepare)", _within("PageCodec.prepare")),
    ("encode JSON Lines", _within("PageCodec.jsonl")),
    ("encode CSV", _within("PageCodec.csv")),
    ("encode Arrow batches, write Parquet", _within("arrow_batch", "ParquetWriter")),
    ("file writes", _within("_PartFile.write")),
    ("Id order and dedupe", _within("Deduper")),
    ("paging guards (Ids of each page, next link checks)", _within("PageGuard", "Pager.")),
    ("hand-over between reader and writer threads", _within("Queue.", "Prefetcher.__next__")),
    (
        "connection, $metadata, imports on first use",
        _within("get_conn", "ErpNetClient.metadata", "_find_and_load"),
    ),
    ("freeing records", lambda frames: any("dealloc" in frame for frame in frames[-3:])),
]
EXTRACTION = ("work (clients.py", "Prefetcher._read")


def shares(raw: Path) -> tuple[int, list[tuple[str, float]]]:
    """(samples of the extraction, [(category, share)]) from a py-spy raw file."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        frames = stack.split(";")
        if not any(marker in frame for frame in frames for marker in EXTRACTION):
            continue
        total += int(number)
        name = next((name for name, test in CATEGORIES if test(frames)), "other")
        counts[name] += int(number)
    return total, [(name, count / total) for name, count in counts.most_common()] if total else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("client", nargs="?", default="ours-jsonl", help=f"one of {', '.join(CLIENTS)}")
    parser.add_argument("--rows", type=int, default=200_000, help="customers saved from the sandbox")
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw samples in this file")
    args = parser.parse_args()
    if args.client not in CLIENTS or CLIENTS[args.client].python != "project":
        parser.error(f"profile one of {', '.join(n for n, c in CLIENTS.items() if c.python == 'project')}")
    directory = saved_pages(args.rows)
    info = json.loads((directory / "info.json").read_text())
    server, base_url = start_server(directory, 0, info["pages"])
    try:
        with tempfile.TemporaryDirectory(prefix="erpnet-profile-") as scratch:
            raw = args.raw or Path(scratch, "samples.txt")
            config = Config(base_url, info["entity_set"], info["rows"], info["pages"], scratch, TOKEN)
            spy = Path(sys.executable).with_name("py-spy")
            command = [str(spy), "record", "--gil", "--native", "-r", "250", "-f", "raw", "-o", str(raw)]
            command += [
                "--",
                sys.executable,
                str(HERE / "clients.py"),
                args.client,
                json.dumps(asdict(config)),
            ]
            env = {**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING", "PYTHONPATH": str(HERE)}
            subprocess.run(command, check=True, env=env, capture_output=True)
            total, found = shares(raw)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\n{args.client}: {total} samples while the extraction held the GIL\n")
    print("| where | share |\n|---|---:|")
    for name, share in found:
        print(f"| {name} | {share:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
