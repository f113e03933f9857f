"""Airflow operators for ERP.net; ``ErpNetODataOperator`` is imported on first use.

The lazy import keeps ``operators.extraction`` and ``operators.windows`` (no Airflow import)
cheap to load for scripts and benchmarks.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ErpNetODataOperator"]


def __getattr__(name: str) -> Any:
    if name == "ErpNetODataOperator":
        from airflow_provider_erpnet.operators.odata import ErpNetODataOperator

        return ErpNetODataOperator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
