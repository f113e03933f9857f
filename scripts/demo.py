"""The README's demo: a local ERP.net sandbox, a token, a first page, then a real `airflow dags test`.

Runs with nothing but this repository's virtualenv (``make demo`` creates it). The sandbox and the
Airflow home live under ``.airflow-demo/``; the sandbox is stopped when the demo ends.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOME = REPO / ".airflow-demo"
DAG_ID = "erpnet_taskflow_pipeline"
# Task log lines worth showing: the operator's summary, the manifest, sample rows, the totals.
SHOWN = ("Sample", "BGN", "CHF", "EUR", "GBP", "JPY", "USD", "DagRun Finished")
LOG_LINE = re.compile(r"^\S+ \[\w+\s*\] (?P<message>.*?)(?: \[[\w.]+\])?(?: loc=\S+)?$")


def _print_manifest(manifest: dict) -> None:
    """The manifest the extract task handed downstream through XCom, one field a line."""
    print("  manifest (XCom of extract_customers):")
    for key, value in manifest.items():
        if key == "columns":
            value = ", ".join(f"{c['name']}:{c['kind']}" for c in value)
        print(f"    {key}: {value}")


def _messages(output: str) -> list[str]:
    """The message part of Airflow's structured log lines (timestamp, logger and location cut)."""
    found = []
    for line in output.splitlines():
        match = LOG_LINE.match(line)
        if match:
            found.append(match.group("message").split(", run_start_date=")[0])
    return found


def _edge_case_note(rows: Iterable[dict]) -> str:
    """Why the totals run to 17 digits: the sandbox's deliberate maximum credit limits."""
    from airflow_provider_erpnet.sandbox.data import MAX_AMOUNT

    largest = sum(1 for row in rows if row["CreditLimit"]["Value"] == MAX_AMOUNT)
    return (
        f"  (the totals below include {largest} deliberate edge-case customers whose credit limit is the "
        f"largest Amount ERP.net stores, {MAX_AMOUNT}: the sandbox's data tests exactness, not realism)"
    )


def main() -> int:
    from airflow_provider_erpnet.client.client import ErpNetClient
    from airflow_provider_erpnet.client.settings import ErpNetSettings
    from airflow_provider_erpnet.sandbox import Sandbox

    HOME.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags_examples"),
        "AIRFLOW_VAR_ERPNET_OUTPUT_DIR": str(HOME / "output"),
        "XDG_CACHE_HOME": str(HOME / "cache"),
    }
    with Sandbox(port=0, scale=2000) as sandbox:
        print(f"ERP.net sandbox running at {sandbox.base_url}")
        settings = ErpNetSettings(
            instance_url=sandbox.base_url,
            client_id="my.trusted.app/first",
            client_secret="sandbox-secret",
            scope="read",
            disk_cache=False,
        )
        with ErpNetClient(settings) as client:
            token = client.transport.auth.token()
            print(f"token from {client.transport.auth.token_endpoint}: {token[:24]}... ({len(token)} chars)")
            page = next(client.iter_pages("Crm_Sales_Customers", select="Number,DisplayText", page_size=10))
            link = "yes" if page.next_link else "no"
            print(f"first page: {len(page.records)} customers, next link: {link}")
            for record in page.records[:5]:
                print(f"  {record['Number']}: {record['DisplayText']}")

        env["AIRFLOW_CONN_ERPNET_DEFAULT"] = sandbox.connection_json()
        airflow = str(Path(sys.executable).with_name("airflow"))
        print("airflow db migrate ...", flush=True)
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        print(f"airflow dags test {DAG_ID} ...", flush=True)
        result = subprocess.run([airflow, "dags", "test", DAG_ID], env=env, text=True, capture_output=True)
        log_file = HOME / f"{DAG_ID}.log"
        log_file.write_text(result.stdout + result.stderr)
        noted = False
        for message in _messages(result.stdout + result.stderr):
            if message.startswith("Manifest: "):
                _print_manifest(json.loads(message.removeprefix("Manifest: ")))
            elif message.startswith(SHOWN):
                if not noted and "credit limit total" in message:
                    print(_edge_case_note(sandbox.dataset.rows("Crm_Sales_Customers")))
                    noted = True
                print(f"  {message}")
        print(f"full log: {log_file}")
        outcome = "succeeded" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
        print(f"airflow dags test {DAG_ID} {outcome}")
        return result.returncode


if __name__ == "__main__":
    sys.exit(main())
