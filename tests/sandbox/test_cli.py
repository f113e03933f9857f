"""The command line: start on a free port, print what a user needs, serve, stop cleanly on SIGTERM."""

from __future__ import annotations

import json
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from airflow_provider_erpnet.sandbox.identity import hash_secret

SCRIPT = Path(sys.executable).with_name("erpnet-sandbox")
MODULE = [sys.executable, "-m", "airflow_provider_erpnet.sandbox"]


class RunningCli:
    """A sandbox CLI process whose stdout is read line by line in the background."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def read_until(self, marker: str, timeout: float = 60) -> list[str]:
        """Lines printed up to and including the first one containing ``marker``."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {marker!r} within {timeout} s; got {self.output}") from None
            if line is None:
                stderr = self.process.stderr.read() if self.process.stderr else ""
                raise AssertionError(f"CLI exited before {marker!r}: {self.output}\n{stderr}")
            self.output.append(line)
            if marker in line:
                return self.output

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self._reader.join(timeout=10)
        return code


@contextmanager
def cli(*args: str, command: list[str] = MODULE) -> Iterator[RunningCli]:
    running = RunningCli([*command, "--port", "0", "--scale", "200", *args])
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(timeout=30)
        for stream in (running.process.stdout, running.process.stderr):
            if stream:
                stream.close()


def banner_values(lines: list[str]) -> tuple[str, dict]:
    base_url = re.search(r"http://127\.0\.0\.1:\d+", lines[0])
    assert base_url, lines
    export = next(line for line in lines if "export AIRFLOW_CONN_ERPNET_DEFAULT=" in line)
    value = shlex.split(export.strip())[1].split("=", 1)[1]
    return base_url.group(0), json.loads(value)


def seed_token(base_url: str, client_id: str = "my.trusted.app/first", secret: str = "sandbox-secret") -> str:
    form = {
        "client_id": client_id,
        "client_secret": secret,
        "grant_type": "client_credentials",
        "scope": "read",
    }
    response = requests.post(f"{base_url}/id/connect/token", data=form, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def customers(base_url: str, token: str) -> dict:
    response = requests.get(
        f"{base_url}/api/domain/odata/Crm_Sales_Customers?$top=10",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_console_script_serves_the_seed_flow_and_stops_on_sigterm() -> None:
    with cli(command=[str(SCRIPT)]) as running:
        lines = running.read_until("Stop with Ctrl+C")
        base_url, connection = banner_values(lines)
        assert connection == {
            "conn_type": "erpnet",
            "host": base_url,
            "login": "my.trusted.app/first",
            "password": "sandbox-secret",
            "extra": {},
        }
        assert any("curl" in line and "/id/connect/token" in line for line in lines)
        assert any("sandbox-secret" in line for line in lines)

        page = customers(base_url, seed_token(base_url))
        assert len(page["value"]) == 10
        assert page["@odata.nextLink"].startswith(f"{base_url}/api/domain/odata/Crm_Sales_Customers?")

        assert running.stop() == 0
        assert running.read_until("stopped")
        assert running.process.stderr is not None
        assert running.process.stderr.read() == ""


def test_verbose_logs_one_line_per_request_without_secrets() -> None:
    with cli("--verbose") as running:
        base_url, _ = banner_values(running.read_until("Stop with Ctrl+C"))
        token = seed_token(base_url)
        customers(base_url, token)
        assert running.stop() == 0
        assert running.process.stderr is not None
        log = running.process.stderr.read()
    assert '"POST /id/connect/token HTTP/1.1" 200' in log
    assert "GET /api/domain/odata/Crm_Sales_Customers?$top=10 HTTP/1.1" in log
    assert token not in log
    assert "sandbox-secret" not in log


def test_curl_line_is_a_working_token_request() -> None:
    with cli() as running:
        lines = running.read_until("Stop with Ctrl+C")
        curl = shlex.split(next(line for line in lines if line.strip().startswith("curl")))
        fields = dict(curl[i + 1].split("=", 1) for i, word in enumerate(curl) if word == "-d")
        url = next(word for word in curl if word.startswith("http://"))
        response = requests.post(url, data=fields, timeout=10)
        assert response.status_code == 200
        assert response.json()["scope"] == "read"
        assert running.stop() == 0


def test_scale_100000_next_links_give_count_rows_each_id_once() -> None:
    with cli("--scale", "100000") as running:
        base_url, _ = banner_values(running.read_until("Stop with Ctrl+C"))
        headers = {"Authorization": f"Bearer {seed_token(base_url)}"}
        url: str | None = f"{base_url}/api/domain/odata/Crm_Sales_Customers?$top=1000&$count=true&$select=Id"
        counts, ids = [], []
        with requests.Session() as http:
            while url:
                page = http.get(url, headers=headers, timeout=30).json()
                counts.append(page["@odata.count"])
                ids.extend(row["Id"] for row in page["value"])
                url = page.get("@odata.nextLink")
        assert running.stop() == 0
    assert counts == [100_000] * 100
    assert len(ids) == len(set(ids)) == 100_000


def test_no_next_links_flag() -> None:
    with cli("--no-next-links", "--top-level-errors", "--token-lifetime", "90") as running:
        base_url, _ = banner_values(running.read_until("Stop with Ctrl+C"))
        page = customers(base_url, seed_token(base_url))
        assert len(page["value"]) == 10
        assert "@odata.nextLink" not in page
        settings = requests.get(f"{base_url}/admin/faults", timeout=10).json()
        assert (settings["error_envelope"], settings["token_lifetime"]) == (False, 90)
        assert running.stop() == 0


def test_apps_file_adds_trusted_apps(tmp_path: Path) -> None:
    apps = tmp_path / "apps.json"
    apps.write_text(
        json.dumps(
            [
                {"ApplicationUri": "acme/etl", "ApplicationSecret": "etl-secret", "Scope": "read"},
                {"ApplicationUri": "acme/demo", "ApplicationSecretHash": hash_secret("DEMO")},
            ]
        )
    )
    with cli("--apps", str(apps), "--rate-503", "1", "--retry-after", "3") as running:
        lines = running.read_until("Stop with Ctrl+C")
        base_url, _ = banner_values(lines)
        assert any("rate_503=1.0" in line for line in lines)
        seed_token(base_url, "acme/etl", "etl-secret")
        seed_token(base_url, "acme/demo", "DEMO")
        seed_token(base_url)
        assert running.stop() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate-429", "1.5"], "--rate-429"),
        (["--rate-drop", "lots"], "--rate-drop"),
        (["--latency-ms", "-5"], "--latency-ms"),
        (["--token-lifetime", "0"], "--token-lifetime"),
        (["--port", "70000"], "--port"),
        (["--apps", "/nonexistent/apps.json"], "--apps"),
        (["--scale", "abc"], "argument --scale: 'abc' is not a whole number"),
        (["--seed", "abc"], "argument --seed: 'abc' is not a whole number"),
        (["--rate-503", "often"], "argument --rate-503: 'often' is not a number"),
        (
            ["--data-end", "2026-06-30"],
            "argument --data-end: '2026-06-30' is not 'now' or a date-time with a zone",
        ),
    ],
)
def test_bad_arguments_fail_with_a_clear_message(args: list[str], message: str) -> None:
    result = subprocess.run([*MODULE, *args], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_busy_port_fails_with_a_clear_message() -> None:
    with cli() as first:
        base_url, _ = banner_values(first.read_until("Stop with Ctrl+C"))
        port = base_url.rsplit(":", 1)[1]
        result = subprocess.run(
            [*MODULE, "--port", port, "--scale", "10"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 1
        assert f"127.0.0.1:{port}" in result.stderr
        assert "Traceback" not in result.stderr
        assert first.stop() == 0
