"""Checks on the output location that run before the first page is read, over real HTTP."""

from __future__ import annotations

import json
import os

from airflow_provider_erpnet.sandbox import DEFAULT_CLIENT_ID, DEFAULT_SECRET
from tests.unix_users import python_as_other_user, shared_directory

EXTRACT = """
import json, sys
from airflow_provider_erpnet.client import ErpNetClient, ErpNetSettings
from airflow_provider_erpnet.operators.extraction import ExtractionRequest, run_extraction

url, client_id, secret, target = sys.argv[1:5]
settings = ErpNetSettings(instance_url=url, client_id=client_id, client_secret=secret, disk_cache=False)
try:
    with ErpNetClient(settings) as client:
        run_extraction(client, ExtractionRequest("Crm_Sales_Customers", page_size=100), target)
except BaseException as error:
    print(json.dumps({"type": type(error).__name__, "message": str(error)}))
"""


def test_a_read_only_output_directory_fails_before_the_first_page(erpnet_sandbox) -> None:
    """The task's user may read the directory but not write it: a configuration error, no page read."""
    with shared_directory() as directory:
        target = directory / "customers.jsonl"
        erpnet_sandbox.reset_stats()
        result = python_as_other_user(
            EXTRACT, erpnet_sandbox.base_url, DEFAULT_CLIENT_ID, DEFAULT_SECRET, str(target)
        )
        assert os.listdir(directory) == []
    assert result.returncode == 0, result.stderr[-3000:]
    failure = json.loads(result.stdout)
    assert failure["type"] == "ErpNetConfigError", failure
    assert f"Cannot write to the output directory '{directory}'" in failure["message"]
    assert "output_path" in failure["message"]
    assert erpnet_sandbox.stats()["api_requests"] == 1  # $metadata only: no $count, no page


def test_an_output_directory_out_of_reach_fails_before_the_first_page(erpnet_sandbox) -> None:
    with shared_directory() as directory:
        (directory / "private").mkdir(mode=0o700)
        target = directory / "private" / "exports" / "customers.jsonl"
        erpnet_sandbox.reset_stats()
        result = python_as_other_user(
            EXTRACT, erpnet_sandbox.base_url, DEFAULT_CLIENT_ID, DEFAULT_SECRET, str(target)
        )
    failure = json.loads(result.stdout)
    assert failure["type"] == "ErpNetConfigError", failure
    assert f"Cannot reach the output target '{target}': Permission denied" in failure["message"]
    assert erpnet_sandbox.stats()["api_requests"] == 1  # $metadata only
