"""Change detection without Airflow: polls for changed rows, change events and their windows, Id
reconciliation (deleted rows) and schema fingerprints. The Airflow adapters (trigger, sensor,
operators) sit on top of these modules."""
