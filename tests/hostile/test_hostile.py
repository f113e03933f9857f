"""Every hostile case as a real extraction over HTTP on 127.0.0.1, each checked the same way:

- it ends within its bound (seconds),
- with one ``ErpNetError`` subclass whose message names the fix (or completes, where it should),
- on one line, with no partial file at the target,
- and with no spelling of the secret or the token in any message, log line or file outside the
  token cache; nothing at all reaches the second ("foreign") server.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_erpnet.client import ErpNetClient, ErpNetSettings, auth
from airflow_provider_erpnet.operators.extraction import ExtractionRequest, run_extraction
from tests.hostile.catalogue import ALL_CASES, CLIENT_ID, SECRET, Case, variants
from tests.hostile.server import ENTITY_SET, HostileServer

CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


def _texts_of(error: BaseException | None) -> list[str]:
    """The error and every exception chained to it, as a traceback would print them."""
    texts: list[str] = []
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        texts += [str(error), repr(error)]
        error = error.__cause__ or error.__context__
    return texts


def _files_outside_cache(tmp_path: Path) -> list[Path]:
    cache = tmp_path / "tokens"
    return [path for path in tmp_path.rglob("*") if path.is_file() and cache not in path.parents]


def _leaks(texts: list[str], files: list[Path], secrets: set[str]) -> list[str]:
    found = [f"text: {secret!r}" for secret in secrets for text in texts if secret in text]
    for path in files:
        content = path.read_bytes()
        found += [f"{path.name}: {secret!r}" for secret in secrets if secret.encode() in content]
    return found


def _partial_files(out: Path, completed: bool, prepared: set[Path]) -> list[Path]:
    """Anything at the target after a failure; temporary files after a success (files a case put
    there itself do not count)."""
    files = [path for path in out.rglob("*") if path.is_file() and path not in prepared]
    return [path for path in files if not completed or path.name.startswith(".")]


def run_case(case: Case, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    out = tmp_path / "out"
    out.mkdir()
    with HostileServer(rows=case.rows) as foreign, HostileServer(rows=case.rows) as server:
        server.routes.update(case.routes(server, foreign))
        if case.prepare is not None:
            case.prepare(tmp_path, server)
        prepared = set(out.rglob("*"))
        options: dict[str, Any] = {
            "instance_url": server.url,
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "disk_cache_dir": str(tmp_path / "tokens"),
            "max_attempts": 2,
            "max_wait": 0.1,
            "connect_timeout": 2.0,
            "read_timeout": 5.0,
            **case.settings,
        }
        error: Exception | None = None
        started = time.monotonic()
        try:
            with ErpNetClient(ErpNetSettings(**options)) as client:
                request = ExtractionRequest(ENTITY_SET, page_size=2, **case.request)
                run_extraction(client, request, case.target.format(out=out))
        except Exception as exc:  # the case decides below whether this was the right exception
            error = exc
        seconds = time.monotonic() - started
        foreign_requests = list(foreign.seen)
        token = server.access_token
    texts = [*_texts_of(error), caplog.text]
    leaks = _leaks(texts, _files_outside_cache(tmp_path), variants(SECRET) | {token})
    partial = _partial_files(out, completed=error is None, prepared=prepared)
    return {
        "case": case.name,
        "defect": case.defect,
        "seconds": seconds,
        "bounded": seconds <= case.bound,
        "error": error,
        "outcome": type(error).__name__ if error else "completed",
        "partial_files": len(partial),
        "leaks": len(leaks) + len(foreign_requests),
        "leak_detail": leaks + [f"foreign server got {seen.method} {seen.path}" for seen in foreign_requests],
        "missing_files": [name for name in case.files if not (out / name).is_file()],
    }


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=case.name, marks=pytest.mark.timeout(case.bound * 4)) for case in ALL_CASES],
)
def test_hostile_case(
    case: Case, tmp_path: Path, caplog: pytest.LogCaptureFixture, hostile_results: list[dict[str, Any]]
) -> None:
    caplog.set_level(logging.DEBUG)
    auth.clear_memory_cache()
    try:
        result = run_case(case, tmp_path, caplog)
    finally:
        auth.clear_memory_cache()
    error = result["error"]
    expected = (
        type(error) is case.expect and all(word in str(error) for word in case.says)
        if case.expect is not None
        else error is None and all(word in caplog.text for word in case.logs) and not result["missing_files"]
    )
    one_line = error is None or not CONTROL.search(str(error))
    result["passed"] = bool(
        expected and one_line and result["bounded"] and not result["partial_files"] and not result["leaks"]
    )
    hostile_results.append(
        {key: value for key, value in result.items() if key not in ("error", "leak_detail", "missing_files")}
    )

    assert result["bounded"], f"took {result['seconds']:.1f} s, bound {case.bound} s"
    assert result["leak_detail"] == []
    assert result["partial_files"] == 0
    if case.expect is None:
        assert error is None, f"expected the run to complete, got {error!r}"
        assert result["missing_files"] == []
        assert [word for word in case.logs if word not in caplog.text] == []
    else:
        assert type(error) is case.expect, f"expected {case.expect.__name__}, got {error!r}"
        assert [word for word in case.says if word not in str(error)] == [], str(error)
        assert one_line, f"control characters in {str(error)!r}"


def test_docs_security_lists_every_case() -> None:
    """docs/security.md's table is the catalogue: a new case needs its row there."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    assert [case.name for case in ALL_CASES if f"| {case.name}" not in doc] == []
