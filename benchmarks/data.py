"""Save pages of the warmed sandbox once, so every benchmark client reads the very same bytes.

The sandbox CLI is started at ``rows`` customers with the view warmed, the pages of
``$select=default,Id`` are fetched by following next links, and each is saved with the sandbox's
origin replaced by a placeholder (``static_server.py`` puts its own in) and its next link
rewritten to ``$skiptoken=<page index>``. Saved sets live in ``benchmarks/.data/`` (git-ignored)
and are reused while the sandbox's data generator and the options stay the same.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import requests
from static_server import API, BASE_PLACEHOLDER  # type: ignore[import-not-found]

DATA_ROOT = Path(__file__).resolve().parent / ".data"
ENTITY_SET = "Crm_Sales_Customers"
SELECT = "default,Id"
PAGE_SIZE = 1000
_NEXT_LINK = re.compile(rb'"@odata\.nextLink"\s*:\s*"[^"]*"')


def start_sandbox(scale: int, warm: str | None = None) -> tuple[subprocess.Popen[str], str]:
    """The sandbox CLI on a free port, ``warm`` (``SET:SELECT``) built before it is ready."""
    command = [sys.executable, "-m", "airflow_provider_erpnet.sandbox", "--port", "0", "--scale", str(scale)]
    if warm:
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


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def sandbox_token(session: requests.Session, base_url: str) -> str:
    from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET

    answer = session.post(
        f"{base_url}/id/connect/token",
        data={
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_SECRET,
            "grant_type": "client_credentials",
            "scope": "read",
        },
        timeout=60,
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


def saved_pages(rows: int) -> Path:
    """The directory holding ``rows`` customers as saved pages, created on first use."""
    directory = DATA_ROOT / f"{ENTITY_SET}-{rows}"
    if (directory / "info.json").exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    print(f"saving {rows:,} rows of the warmed sandbox to {directory} ...", flush=True)
    process, base_url = start_sandbox(rows, f"{ENTITY_SET}:{SELECT}")
    try:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {sandbox_token(session, base_url)}"
            metadata = session.get(f"{base_url}{API}$metadata", timeout=60)
            metadata.raise_for_status()
            (directory / "metadata.xml").write_bytes(metadata.content)
            url: str | None = f"{base_url}{API}{ENTITY_SET}?$select={SELECT}&$top={PAGE_SIZE}"
            index = total = 0
            page_rows: list[int] = []
            while url:
                answer = session.get(url, timeout=120)
                answer.raise_for_status()
                page = answer.json()
                url = page.get("@odata.nextLink")
                total += len(page["value"])
                page_rows.append(len(page["value"]))
                body = answer.content.replace(base_url.encode(), BASE_PLACEHOLDER)
                query = f"%24top={PAGE_SIZE}&%24skiptoken={index + 1}"
                link = f"{BASE_PLACEHOLDER.decode()}{API}{ENTITY_SET}?{query}"
                body = _NEXT_LINK.sub(f'"@odata.nextLink":"{link}"'.encode(), body)
                (directory / f"page-{index:05d}.json").write_bytes(body)
                index += 1
    finally:
        stop(process)
    (directory / "info.json").write_text(
        json.dumps(
            {
                "entity_set": ENTITY_SET,
                "rows": total,
                "pages": index,
                "page_rows": page_rows,
                "select": SELECT,
            }
        )
    )
    return directory
