"""Command line: ``erpnet-sandbox`` / ``python -m airflow_provider_erpnet.sandbox``.

Serves a sandbox on 127.0.0.1 until SIGINT or SIGTERM, after printing what a user needs to point
Airflow or curl at it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET, Sandbox, TrustedApp
from airflow_provider_erpnet.sandbox.data import EARLIEST_END
from airflow_provider_erpnet.sandbox.faults import check_count, check_rate
from airflow_provider_erpnet.sandbox.model import QueryError

# Larger than Sandbox's own default (1,000, what the tests use): a developer's first incremental DAG
# should find rows in recent hourly windows.
DEFAULT_SCALE = 20_000


def _checked(
    check: Callable[[str, Any], Any],
    convert: Callable[[str], Any],
    minimum: int = 0,
    maximum: int | None = None,
) -> Callable[[str], Any]:
    """An argparse ``type``: convert, apply a faults.py check and bounds; failures read as argparse errors."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not {_KIND_NAMES[convert]}") from exc
        try:
            check("the value", value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise argparse.ArgumentTypeError(f"the value must be at least {minimum}{upper}, got {value}")
        return value

    return parse


_KIND_NAMES: dict[Callable[[str], Any], str] = {int: "a whole number", float: "a number"}


def _data_end(text: str) -> datetime | None:
    """``now`` (None: the sandbox takes the current time) or an ISO 8601 date-time with a zone."""
    if text == "now":
        return None
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not 'now' or a date-time with a zone such as 2026-06-30T23:59:59Z"
        )
    if moment < EARLIEST_END:
        raise argparse.ArgumentTypeError(f"the data cannot end before {EARLIEST_END.isoformat()}")
    return moment


_rate = _checked(check_rate, float)
_count = _checked(check_count, int)
_positive = _checked(check_count, int, 1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="erpnet-sandbox",
        description="Local ERP.net sandbox: identity server, Domain API (OData v4) over generated data, "
        "fault injection. Listens on 127.0.0.1 only.",
    )
    parser.add_argument(
        "--port", type=_checked(check_count, int, 0, 65535), default=8765, help="TCP port; 0 = any free port"
    )
    parser.add_argument(
        "--scale",
        type=_positive,
        default=DEFAULT_SCALE,
        help="rows of Crm_Sales_Customers; other sets are sized from it (half as many sales orders); "
        f"the default {DEFAULT_SCALE:,} puts orders and customers into every hour of the last week",
    )
    parser.add_argument(
        "--data-end",
        type=_data_end,
        default=None,
        metavar="now|ISO",
        help="the latest generated update stamp: 'now' (default), or e.g. 2026-06-30T23:59:59Z, the fixed "
        "end the test suite uses",
    )
    parser.add_argument("--seed", type=_count, default=0, help="seed for generated data and fault draws")
    parser.add_argument(
        "--token-lifetime", type=_positive, default=3600, help="access token lifetime, seconds"
    )
    parser.add_argument("--latency-ms", type=_count, default=0, help="delay before each Domain API answer")
    parser.add_argument("--rate-429", type=_rate, default=0.0, help="probability of 429 Too Many Requests")
    parser.add_argument("--retry-after", type=_count, default=1, help="Retry-After seconds sent with 429")
    parser.add_argument("--rate-503", type=_rate, default=0.0, help="probability of 503 Service Unavailable")
    parser.add_argument(
        "--rate-drop", type=_rate, default=0.0, help="probability of closing without an answer"
    )
    parser.add_argument("--rate-truncate", type=_rate, default=0.0, help="probability of a truncated body")
    parser.add_argument("--no-next-links", action="store_true", help="behave like servers before 26.2")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="answer like a standard OData v4 server, not ERP.net: '+' in a query is a plus sign, "
        "$select knows no 'default', dates are written 2020-01-01 (not 2020-01-01Z)",
    )
    parser.add_argument(
        "--warm",
        action="append",
        default=[],
        metavar="SET[:SELECT]",
        help="before announcing readiness, build every row of SET as $select=SELECT returns it "
        "(repeatable), so no row is built inside a request: for benchmarks on large sets",
    )
    parser.add_argument(
        "--top-level-errors",
        action="store_true",
        help='errors as {"code", "message", ...} without {"error": ...}',
    )
    parser.add_argument(
        "--apps", type=Path, help="JSON file: a list of extra trusted apps (ERP.net attribute names)"
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a certificate from a throwaway CA; its path is printed (the connection's "
        "ca_bundle)",
    )
    parser.add_argument("--verbose", action="store_true", help="log one line per request to stderr")
    return parser


def load_apps(path: Path) -> list[TrustedApp]:
    """Extra trusted apps from a JSON list of objects with ERP.net attribute names (see docs/sandbox.md)."""
    items = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(items, list):
        raise ValueError("the file must hold a JSON list of trusted app objects")
    return [TrustedApp.from_json(item) for item in items]


def banner(sandbox: Sandbox, faults: dict[str, Any]) -> str:
    active = ", ".join(f"{name}={value}" for name, value in faults.items() if value) or "none"
    data_end = f"{sandbox.dataset.end:%Y-%m-%dT%H:%M:%SZ}"
    dialect = "standard OData v4 (--strict)" if sandbox.settings()["strict"] else "ERP.net"
    curl = " ".join(
        [
            "curl -s -X POST",
            *([f"--cacert {shlex.quote(sandbox.ca_bundle)}"] if sandbox.base_url.startswith("https") else []),
            shlex.quote(f"{sandbox.identity_url}/connect/token"),
            *(
                f"-d {shlex.quote(f'{name}={value}')}"
                for name, value in (
                    ("client_id", DEFAULT_CLIENT_ID),
                    ("client_secret", DEFAULT_SECRET),
                    ("grant_type", "client_credentials"),
                    ("scope", "read"),
                )
            ),
        ]
    )
    return "\n".join(
        [
            f"ERP.net sandbox running at {sandbox.base_url}",
            f"  identity server: {sandbox.identity_url}",
            f"  Domain API:      {sandbox.api_url}",
            f"  client id:       {DEFAULT_CLIENT_ID}",
            f"  client secret:   {DEFAULT_SECRET}  (public sandbox secret)",
            f"  faults:          {active}",
            f"  data:            {sandbox.dataset.scale:,} customers, last updates at {data_end}",
            f"  OData dialect:   {dialect}",
            *([f"  CA bundle:       {sandbox.ca_bundle}"] if sandbox.base_url.startswith("https") else []),
            "Airflow connection:",
            f"  export AIRFLOW_CONN_ERPNET_DEFAULT={shlex.quote(sandbox.connection_json())}",
            "Token request (the vendor's sample):",
            f"  {curl}",
            "Stop with Ctrl+C.",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        apps = load_apps(args.apps) if args.apps else None
    except (OSError, ValueError) as exc:
        parser.error(f"--apps {args.apps}: {exc}")
    sandbox = Sandbox(
        port=args.port,
        scale=args.scale,
        seed=args.seed,
        data_end=args.data_end,
        token_lifetime=args.token_lifetime,
        latency_ms=args.latency_ms,
        rate_429=args.rate_429,
        retry_after=args.retry_after,
        rate_503=args.rate_503,
        rate_drop=args.rate_drop,
        rate_truncate=args.rate_truncate,
        next_links=not args.no_next_links,
        error_envelope=not args.top_level_errors,
        strict=args.strict,
        apps=apps,
        verbose=args.verbose,
        tls=args.tls,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        sandbox.start()
    except OSError as exc:
        parser.exit(
            1,
            f"erpnet-sandbox: cannot listen on 127.0.0.1:{args.port} ({exc.strerror}); "
            "pick another --port or 0 for any free port\n",
        )
    try:
        for view in args.warm:
            entity_set, _, select = view.partition(":")
            began = time.perf_counter()
            try:
                rows = sandbox.warm(entity_set, select or None)
            except QueryError as exc:
                sandbox.stop()
                parser.exit(2, f"erpnet-sandbox: --warm {view}: {exc.message}\n")
            print(f"warmed {view}: {rows:,} rows in {time.perf_counter() - began:.1f} s", flush=True)
        fault_names = ("latency_ms", "rate_429", "rate_503", "rate_drop", "rate_truncate")
        print(banner(sandbox, {name: sandbox.settings()[name] for name in fault_names}), flush=True)
        while not stop.wait(1.0):
            continue
    finally:
        sandbox.stop()
    print("ERP.net sandbox stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
