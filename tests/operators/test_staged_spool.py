"""A staged extraction over real HTTP spools into a private directory of its own (issue 8, defect 2)."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from airflow_provider_erpnet.client import ErpNetClient, ErpNetSettings
from airflow_provider_erpnet.io import iter_records
from airflow_provider_erpnet.operators import extraction
from airflow_provider_erpnet.operators.extraction import ExtractionRequest, run_extraction
from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET

CUSTOMERS = "Crm_Sales_Customers"


def test_a_staged_extraction_spools_privately_and_leaves_nothing(
    erpnet_sandbox, tmp_path: Path, monkeypatch
) -> None:
    system_temp = tmp_path / "tmp"
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    seen: dict[str, object] = {}
    real = extraction.spool_directory

    @contextmanager
    def watched(root: Path | None = None) -> Iterator[Path]:
        with real(root) as path:
            yield path
            seen["parent"] = path.parent
            seen["directory"] = stat.S_IMODE(path.lstat().st_mode)
            seen["files"] = {p.name: stat.S_IMODE(p.lstat().st_mode) for p in path.iterdir()}

    monkeypatch.setattr(extraction, "spool_directory", watched)
    settings = ErpNetSettings(
        instance_url=erpnet_sandbox.base_url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_SECRET,
        disk_cache=False,
    )
    with ErpNetClient(settings) as client:
        request = ExtractionRequest(CUSTOMERS, orderby="Number desc")  # not by Id: the staged path
        manifest = run_extraction(client, request, tmp_path / "out" / "customers.csv")

    assert "rows.jsonl" in seen["files"]  # type: ignore[operator]
    assert set(seen["files"].values()) == {0o600}, seen["files"]  # type: ignore[union-attr]
    assert seen["directory"] == 0o700
    assert seen["parent"] == system_temp  # a fresh directory of its own, no shared parent
    assert os.listdir(system_temp) == []
    assert sorted(r["Number"] for r in iter_records(manifest)) == sorted(
        r["Number"] for r in erpnet_sandbox.dataset.rows(CUSTOMERS)
    )
