"""Peak memory of the client under a gzip bomb and a huge field: bounded by max_response_mb?

A local hostile server (tests/hostile/server.py) answers one page of ``Things`` in three ways,
each read by a fresh Python process that reports its own peak RSS (``ru_maxrss``):

- ``page``: an honest last page of 999 rows (about 110 KB), the baseline;
- ``gzip-bomb``: 2 MB of gzip that expands to 2 GiB of JSON whitespace (issue 8 saw 4.27 GB RSS);
- ``huge-field``: one 300 MB string field, streamed in chunks without a length (issue 8 committed it).

Each runs with the default ``max_response_mb`` (256) and with ``--limit`` (default 16), so the
figures show the bound following the setting. Importing the client costs RSS before any byte is
read; compare each row with the ``page`` row of the same limit.

    .venv/bin/python benchmarks/hostile_memory.py
    .venv/bin/python benchmarks/hostile_memory.py --limit 64

Exit code 1 when a hostile answer was accepted, or when a peak exceeds the page's by more than the
limit plus 64 MB (the decoded bytes may be held once, plus slack for the interpreter).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.hostile.server import API, ENTITY_SET, Answer, HostileServer, gzip_bomb, thing  # noqa: E402

MIB = 1 << 20
BOMB_BYTES = 2 << 30
FIELD_BYTES = 300 * MIB
SLACK_MB = 64


def _field(size: int) -> Iterator[bytes]:
    yield b'{"value": [{"Id": "00000000-0000-0000-0000-000000000000", "Name": "'
    chunk = b"A" * MIB
    for _ in range(size // MIB):
        yield chunk
    yield b'"}]}'


def answers() -> dict[str, Callable[[], Answer]]:
    """Each case's answer, made afresh per request (the huge field is a generator)."""
    started = time.monotonic()
    bomb = gzip_bomb(b'{"value": [', b" ", BOMB_BYTES, b"]}")
    seconds = time.monotonic() - started
    print(f"built a {len(bomb) / MIB:.1f} MB gzip body of {BOMB_BYTES / MIB:.0f} MiB in {seconds:.1f} s")
    page = json.dumps({"value": [thing(n) for n in range(999)]}).encode()  # short: the last page
    return {
        "page": lambda: Answer(body=page),
        "gzip-bomb": lambda: Answer(body=bomb, headers={"Content-Encoding": "gzip"}),
        "huge-field": lambda: Answer(pieces=_field(FIELD_BYTES), framing="chunked"),
    }


def child(base_url: str, limit: float) -> None:
    """Read one page in this process; print outcome, seconds and peak RSS as one JSON line."""
    from airflow_provider_erpnet.client import ErpNetClient, ErpNetError, ErpNetSettings

    options = {"max_response_mb": limit} if limit else {}  # 0: the default
    settings = ErpNetSettings(
        instance_url=base_url,
        client_id="bench",
        client_secret="bench-secret-123",
        disk_cache=False,
        **options,
    )
    started = time.monotonic()
    try:
        with ErpNetClient(settings) as client:
            rows = sum(len(page.records) for page in client.iter_pages(ENTITY_SET))
        outcome = f"read {rows} rows"
    except ErpNetError as error:
        outcome = f"{type(error).__name__}: {str(error)[:70]}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"outcome": outcome, "seconds": time.monotonic() - started, "peak_mb": peak}))


def run(base_url: str, limit: float) -> dict[str, object]:
    command = [sys.executable, __file__, "--child", base_url, "--limit", str(limit)]
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=float, default=16.0, help="a second max_response_mb to compare with")
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.limit)
        return 0
    prepared = answers()
    current = [prepared["page"]]
    routes = {f"GET {API}{ENTITY_SET}": lambda seen: current[0]()}
    failed = False
    print(f"{'case':<12}{'max_response_mb':>16}  {'peak RSS MB':>12}{'over page':>11}{'seconds':>9}  outcome")
    with HostileServer(routes) as server:
        for limit in (0.0, args.limit):
            baseline = None
            for name, answer in prepared.items():
                current[0] = answer
                figures = run(server.url, limit)
                baseline = figures["peak_mb"] if baseline is None else baseline
                growth = figures["peak_mb"] - baseline
                cap = limit or 256.0
                if name != "page" and (str(figures["outcome"]).startswith("read") or growth > cap + SLACK_MB):
                    failed = True
                peak, seconds, outcome = figures["peak_mb"], figures["seconds"], figures["outcome"]
                print(f"{name:<12}{cap:>16g}  {peak:>12.1f}{growth:>+11.1f}{seconds:>9.2f}  {outcome}")
    print("Shared machine: compare rows of one run, not absolute figures across runs.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
