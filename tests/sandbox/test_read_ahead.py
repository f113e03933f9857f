"""Read-ahead (the next page is built while a client handles this one) and warm-up (a whole
view is built before any request).

These tests look at the row cache directly (a private detail), because the only outward effect
of both is speed, and the suite does not assert timings.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from airflow_provider_erpnet.sandbox import domain, model
from airflow_provider_erpnet.sandbox.data import Dataset
from airflow_provider_erpnet.sandbox.domain import DomainService

BASE = "http://127.0.0.1:1/api/domain/odata/"
QUERY = "%24top=1000"


def first_page_then_cached(service: DomainService, positions: range) -> list[int]:
    """Serve page 1 of customers, stop the renderer, and list which ``positions`` are cached."""
    answer = service.handle("GET", "Crm_Sales_Customers", QUERY, base_url=BASE, scopes=frozenset({"read"}))
    assert answer.status == 200
    service.close()  # joins the renderer once the page it was given is done
    projection = service._projection(model.entity_set("Crm_Sales_Customers"), domain._parse_options(QUERY))
    missing = set(service._rows.missing(projection, positions))
    return [pos for pos in positions if pos not in missing]


def test_the_next_page_is_rendered_ahead_and_no_further() -> None:
    service = DomainService(Dataset(scale=5000), read_ahead=True)
    assert first_page_then_cached(service, range(1000, 3000)) == list(range(1000, 2000))
    assert not [thread for thread in threading.enumerate() if thread.name == "erpnet-read-ahead"]


def test_without_read_ahead_only_the_served_page_is_rendered() -> None:
    service = DomainService(Dataset(scale=5000))
    assert first_page_then_cached(service, range(0, 2000)) == list(range(1000))


def test_warm_builds_every_row_of_the_view_once() -> None:
    service = DomainService(Dataset(scale=3000))
    assert service.warm("Crm_Sales_Customers", "default,Id") == 3000
    assert service.warm("Crm_Sales_Customers", "default,Id") == 0
    projection = service._projection(
        model.entity_set("Crm_Sales_Customers"), domain._parse_options("%24select=default%2CId")
    )
    assert service._rows.missing(projection, range(3000)) == []


def test_warm_names_an_unknown_set_or_property() -> None:
    service = DomainService(Dataset(scale=100))
    with pytest.raises(model.QueryError, match="Nope"):
        service.warm("Nope")
    with pytest.raises(model.QueryError, match="Nmber"):
        service.warm("Crm_Sales_Customers", "Id,Nmber")


def test_cli_warm_refuses_an_unknown_set() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow_provider_erpnet.sandbox",
            "--port",
            "0",
            "--scale",
            "10",
            "--warm",
            "Nope",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--warm Nope: Resource not found for the segment 'Nope'" in result.stderr
