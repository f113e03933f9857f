"""How fast the sandbox serves pages, so that tests and offline DAG runs know what to expect.

Starts the CLI in a subprocess (large dataset), gets a token, follows ``@odata.nextLink`` over one
keep-alive session for N pages of ``$top`` rows, and prints server-side pages/s and MB/s next to
what ``json.loads`` of the same bodies costs the client. Next links are found with a byte search so
that the fetch loop measures the server and the transfer, not client-side JSON decoding. The pages
are fetched twice: the first pass builds each row's JSON, the second serves it from the Domain
API's row cache, which isolates the HTTP layer's own cost. A third pass reads a fresh part of the
set the way a client does, decoding each page (exact decimals, as ``ErpNetClient`` does) before
asking for the next: it compares the Domain API's own time per page (its ``Server-Timing``
header) with the client's decoding time, read-ahead included.

    .venv/bin/python benchmarks/sandbox_speed.py --scale 1000000 --pages 200
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import time

import requests

from airflow_provider_erpnet.client import jsonutil

NEXT_LINK = re.compile(rb'"@odata\.nextLink"\s*:\s*"([^"]+)"')
SERVER_TIMING = re.compile(r"dur=([0-9.]+)")


def start_sandbox(scale: int, seed: int, warm: list[str]) -> tuple[subprocess.Popen, str, float]:
    """The CLI on a free port; returns the process, its base URL and seconds until it was ready."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "airflow_provider_erpnet.sandbox", "--port", "0", "--scale", str(scale)]
    command += [f"--warm={view}" for view in warm]
    process = subprocess.Popen([*command, "--seed", str(seed)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    base_url = None
    for line in process.stdout:
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        base_url = base_url or (found.group(0) if found else None)
        if "Stop with Ctrl+C" in line:
            return process, str(base_url), time.perf_counter() - started
    raise RuntimeError(f"the sandbox CLI exited with code {process.wait()} before it was ready")


def fetch_pages(session: requests.Session, url: str, pages: int) -> tuple[list[bytes], list[float]]:
    """Bodies of up to ``pages`` pages following next links, and the wall time of each request."""
    bodies: list[bytes] = []
    durations: list[float] = []
    next_url: str | None = url
    while next_url and len(bodies) < pages:
        began = time.perf_counter()
        response = session.get(next_url, timeout=120)
        response.raise_for_status()
        body = response.content
        durations.append(time.perf_counter() - began)
        bodies.append(body)
        found = NEXT_LINK.search(body)
        next_url = json.loads(b'"' + found.group(1) + b'"') if found else None
    return bodies, durations


def read_like_a_client(session: requests.Session, url: str, pages: int) -> tuple[list[float], list[float]]:
    """Per page: the Domain API's own milliseconds (Server-Timing) and the client's decode time."""
    server_ms: list[float] = []
    client_ms: list[float] = []
    next_url: str | None = url
    while next_url and len(server_ms) < pages:
        response = session.get(next_url, timeout=120)
        response.raise_for_status()
        server_ms.append(float(SERVER_TIMING.search(response.headers["Server-Timing"]).group(1)))
        began = time.perf_counter()
        page = jsonutil.loads(response.content)
        client_ms.append((time.perf_counter() - began) * 1000)
        next_url = page.get("@odata.nextLink")
    return server_ms, client_ms


def rate(count: float, seconds: float) -> str:
    return f"{count / seconds:,.1f}" if seconds > 0 else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--entity-set", default="Crm_Sales_Customers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--warm", action="store_true", help="let the sandbox build every row of the set before it is ready"
    )
    args = parser.parse_args(argv)

    process, base_url, startup = start_sandbox(args.scale, args.seed, [args.entity_set] if args.warm else [])
    try:
        with requests.Session() as session:
            token = session.post(
                f"{base_url}/id/connect/token",
                data={
                    "client_id": "my.trusted.app/first",
                    "client_secret": "sandbox-secret",
                    "grant_type": "client_credentials",
                    "scope": "read",
                },
                timeout=30,
            ).json()["access_token"]
            session.headers["Authorization"] = f"Bearer {token}"
            url = f"{base_url}/api/domain/odata/{args.entity_set}?$top={args.page_size}"
            bodies, durations = fetch_pages(session, url, args.pages)
            _, warm = fetch_pages(session, url, args.pages)
            fresh = f"{url}&$skip={args.pages * args.page_size}"
            server_ms, client_ms = read_like_a_client(session, fresh, args.pages)
            stats = session.get(f"{base_url}/admin/stats", timeout=30).json()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)

    began = time.perf_counter()
    rows = sum(len(json.loads(body)["value"]) for body in bodies)
    parse_seconds = time.perf_counter() - began
    fetch_seconds = sum(durations)
    megabytes = sum(len(body) for body in bodies) / 1e6
    head, tail = durations[:20], durations[-20:]
    warmed = f", every {args.entity_set} row built" if args.warm else ""
    print(f"sandbox scale {args.scale:,} started (dataset ready, listening{warmed}) in {startup:.2f} s")
    print(f"{args.entity_set}: {len(bodies)} pages, {rows:,} rows, {megabytes:,.1f} MB, keep-alive session")
    print(
        f"  first pass:  {fetch_seconds:.2f} s -> {rate(len(bodies), fetch_seconds)} pages/s, "
        f"{rate(megabytes, fetch_seconds)} MB/s, {rate(rows, fetch_seconds)} rows/s"
    )
    print(
        f"  second pass (cached rows): {sum(warm):.2f} s -> {rate(len(warm), sum(warm))} pages/s, "
        f"{rate(megabytes, sum(warm))} MB/s"
    )
    print(
        f"  first {len(head)} pages {rate(len(head), sum(head))} pages/s, "
        f"last {len(tail)} pages {rate(len(tail), sum(tail))} pages/s (deep paging cost)"
    )
    print(
        f"  client json.loads of the same bodies: {parse_seconds:.2f} s -> "
        f"{rate(len(bodies), parse_seconds)} pages/s, {rate(megabytes, parse_seconds)} MB/s"
    )
    server_avg, client_avg = sum(server_ms) / len(server_ms), sum(client_ms) / len(client_ms)
    print(
        f"  reading {len(server_ms)} fresh pages like a client: Domain API {server_avg:.2f} ms/page "
        f"(Server-Timing, read-ahead on), client decode {client_avg:.2f} ms/page, "
        f"ratio {server_avg / client_avg:.0%}"
    )
    print(f"  server counted {stats['api_requests']} API requests, statuses {stats['api_by_status']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
