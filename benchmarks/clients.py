"""The clients ``bench.py`` compares, each run in a fresh process against the same static pages.

A client is registered with ``@register(name, label)`` on a *setup* function: the setup takes
the run's ``Config``, does its imports and preparation, and returns the *work* (a function
that reads every page, writes its output and returns the rows it delivered). Only the work is
timed. ``python`` names the interpreter: ``"project"`` (this repository's virtualenv) or
``"dlt"`` (``benchmarks/.venv-dlt``, see ``dlt_client.py``). A variant is one more registration,
e.g. another ``max_concurrency``::

    register("ours-jsonl-c4", "ours -> JSONL, max_concurrency=4", latencies=(200,))(
        partial(ours, fmt="jsonl", max_concurrency=4)
    )

    python benchmarks/clients.py NAME CONFIG_JSON   # one run; prints its figures as JSON
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from measure import measure, report  # type: ignore[import-not-found]

Work = Callable[[], int]


@dataclass(frozen=True)
class Config:
    """Where the static pages are served and where a client may write."""

    base_url: str  # static server origin, http://127.0.0.1:<port>
    entity_set: str
    rows: int  # rows the pages hold
    pages: int
    out_dir: str
    token: str  # the static server's bearer token, for clients without OAuth2
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/domain/odata/"

    @property
    def first_page_url(self) -> str:
        return f"{self.api_url}{self.entity_set}?$select=default,Id&$top=1000"

    def out(self, name: str) -> str:
        return str(Path(self.out_dir, name))


@dataclass(frozen=True)
class Client:
    name: str
    label: str
    setup: Callable[[Config], Work]
    python: str = "project"
    latencies: tuple[int, ...] | None = None  # None: every latency the benchmark runs


CLIENTS: dict[str, Client] = {}


def register(
    name: str, label: str, *, python: str = "project", latencies: tuple[int, ...] | None = None
) -> Callable[[Callable[[Config], Work]], Callable[[Config], Work]]:
    def add(setup: Callable[[Config], Work]) -> Callable[[Config], Work]:
        CLIENTS[name] = Client(name, label, setup, python, latencies)
        return setup

    return add


@register("raw", "one curl, all pages, keep-alive, to /dev/null (transfer limit)")
def raw(config: Config) -> Work:
    urls = [config.first_page_url] + [
        f"{config.api_url}{config.entity_set}?%24top=1000&%24skiptoken={index}"
        for index in range(1, config.pages)
    ]
    command = ["curl", "--silent", "--fail", "-H", f"Authorization: Bearer {config.token}"]
    for url in urls:
        command += ["-o", "/dev/null", url]

    def work() -> int:
        subprocess.run(command, check=True)
        return config.rows

    return work


@register("naive", "naive: requests + resp.json() + json.dumps per record -> JSONL")
def naive(config: Config) -> Work:
    import requests

    def work() -> int:
        rows = 0
        with requests.Session() as session, open(config.out("naive.jsonl"), "w", encoding="utf-8") as out:
            session.headers["Authorization"] = f"Bearer {config.token}"
            url: str | None = config.first_page_url
            while url:
                page = session.get(url, timeout=120).json()
                for record in page["value"]:
                    out.write(json.dumps(record) + "\n")
                    rows += 1
                url = page.get("@odata.nextLink")
        return rows

    return work


@register("lean", "lean: requests + msgspec value: list[Raw], record bytes -> JSONL")
def lean(config: Config) -> Work:
    import msgspec
    import requests

    page_type = msgspec.defstruct(
        "Page",
        [
            ("value", list[msgspec.Raw]),
            ("next_link", str | None, msgspec.field(name="@odata.nextLink", default=None)),
        ],
    )
    decoder = msgspec.json.Decoder(page_type)

    def work() -> int:
        rows = 0
        with requests.Session() as session, open(config.out("lean.jsonl"), "wb") as out:
            session.headers["Authorization"] = f"Bearer {config.token}"
            url: str | None = config.first_page_url
            while url:
                response = session.get(url, timeout=120, stream=True)
                page = decoder.decode(response.raw.read(decode_content=True))
                out.write(b"\n".join(page.value) + b"\n")
                rows += len(page.value)
                url = page.next_link
        return rows

    return work


@register("httpoperator", "Airflow HttpOperator, pagination_function, response_filter -> JSONL")
def httpoperator(config: Config) -> Work:
    from urllib.parse import urlsplit

    from airflow.providers.http.operators.http import HttpOperator

    origin = urlsplit(config.base_url)
    os.environ["AIRFLOW_CONN_BENCH_HTTP"] = json.dumps(
        {"conn_type": "http", "host": origin.hostname, "port": origin.port, "schema": "http"}
    )

    def next_page(response: Any) -> dict[str, Any] | None:
        link = response.json().get("@odata.nextLink")
        if not link:
            return None
        parts = urlsplit(link)
        return {"endpoint": f"{parts.path}?{parts.query}", "data": {}}

    def write_jsonl(responses: Any) -> int:
        rows = 0
        with open(config.out("httpoperator.jsonl"), "w", encoding="utf-8") as out:
            for response in responses:
                for record in response.json()["value"]:
                    out.write(json.dumps(record) + "\n")
                    rows += 1
        return rows

    operator = HttpOperator(
        task_id="bench",
        http_conn_id="bench_http",
        method="GET",
        endpoint=f"/api/domain/odata/{config.entity_set}",
        data={"$select": "default,Id", "$top": "1000"},
        headers={"Authorization": f"Bearer {config.token}"},
        pagination_function=next_page,
        response_filter=write_jsonl,
        log_response=False,
    )
    return partial(operator.execute, {})


def ours(config: Config, *, fmt: str, **operator_options: Any) -> Work:
    """ErpNetODataOperator.execute, as a worker runs it, through an Airflow connection."""
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from airflow_provider_erpnet.operators.odata import ErpNetODataOperator

    os.environ["AIRFLOW_CONN_ERPNET_DEFAULT"] = json.dumps(
        {
            "conn_type": "erpnet",
            "host": config.base_url,
            "login": "bench.client",
            "password": "bench-secret",
            "extra": {"scope": "read"},
        }
    )
    options = {**config.options, **operator_options}
    suffix = {"jsonl": "jsonl", "csv": "csv", "parquet": "parquet"}[fmt]
    operator = ErpNetODataOperator(
        task_id="bench", entity_set=config.entity_set, output_path=config.out(f"ours.{suffix}"), **options
    )

    def work() -> int:
        manifest = operator.execute({"outlet_events": OutletEventAccessors()})  # type: ignore[arg-type]
        return int(manifest["rows"])

    return work


register("ours-jsonl", "ours, ErpNetODataOperator -> JSONL")(partial(ours, fmt="jsonl"))
register("ours-csv", "ours, ErpNetODataOperator -> CSV")(partial(ours, fmt="csv"))
register("ours-parquet", "ours, ErpNetODataOperator -> Parquet")(partial(ours, fmt="parquet"))
for _streams in (4, 8):
    register(f"ours-jsonl-c{_streams}", f"ours -> JSONL, max_concurrency={_streams}")(
        partial(ours, fmt="jsonl", max_concurrency=_streams)
    )
register("dlt", "dlt rest_api -> filesystem JSONL (own venv)", python="dlt")(lambda config: _unused())


def _unused() -> Work:
    raise RuntimeError("the dlt client runs in its own virtualenv: benchmarks/dlt_client.py")


def main() -> int:
    name, raw_config = sys.argv[1], sys.argv[2]
    config = Config(**json.loads(raw_config))
    work = CLIENTS[name].setup(config)
    report(measure(work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
