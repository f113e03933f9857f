"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

The connection form is declared here (``conn-fields``, ``ui-field-behaviour``) so the UI renders it
without importing the hook; the field list lives in ``connection_fields``. Keep this module
import-light: Airflow imports it while loading its own configuration.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_erpnet import __version__
from airflow_provider_erpnet.connection_fields import CONNECTION_FIELDS, EXTRA_FIELDS


def get_provider_info() -> dict[str, Any]:
    """Describe the package, its connection type and its modules to Airflow."""
    return {
        "package-name": "airflow-provider-erpnet",
        "name": "ERP.net",
        "description": "Extract ERP.net Domain API (OData) data with client-credentials tokens.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "ERP.net",
                "external-doc-url": "https://docs.erp.net/dev/",
                "tags": ["software"],
            }
        ],
        "hooks": [
            {"integration-name": "ERP.net", "python-modules": ["airflow_provider_erpnet.hooks.erpnet"]}
        ],
        "operators": [
            {
                "integration-name": "ERP.net",
                "python-modules": [
                    "airflow_provider_erpnet.operators.odata",
                    "airflow_provider_erpnet.operators.reconcile",
                ],
            }
        ],
        "sensors": [
            {"integration-name": "ERP.net", "python-modules": ["airflow_provider_erpnet.sensors.erpnet"]}
        ],
        "triggers": [
            {"integration-name": "ERP.net", "python-modules": ["airflow_provider_erpnet.triggers.erpnet"]}
        ],
        "connection-types": [
            {
                "connection-type": "erpnet",
                "hook-class-name": "airflow_provider_erpnet.hooks.erpnet.ErpNetHook",
                "hook-name": "ERP.net",
                "conn-fields": EXTRA_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": ["port", "schema", "extra"],
                    "relabeling": dict(CONNECTION_FIELDS.values()),
                    "placeholders": {
                        "host": "https://demodb.my.erp.net",
                        "login": "my.trusted.app/first",
                        "password": "the trusted application's secret",
                    },
                },
            }
        ],
    }
