"""Spool directories: a live one is never swept, one whose process was SIGKILLed is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from airflow_provider_erpnet.io.spool import spool_directory, sweep_abandoned

KILLED_OWNER = """
import os, signal, sys
from pathlib import Path
from airflow_provider_erpnet.io.spool import spool_directory
with spool_directory(Path(sys.argv[1])) as path:
    (path / "rows.jsonl").write_text("{}\\n")
    print(path, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def spool_of_a_killed_process(root: Path) -> Path:
    command = [sys.executable, "-c", KILLED_OWNER, str(root)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == -9, result.stderr
    path = Path(result.stdout.strip())
    assert (path / "rows.jsonl").exists()
    return path


def test_live_spool_is_kept_and_removed_when_done(tmp_path: Path) -> None:
    with spool_directory(tmp_path) as live:
        (live / "rows.jsonl").write_text("{}\n")
        assert sweep_abandoned(tmp_path) == 0
        assert (live / "rows.jsonl").exists()
    assert not live.exists()


def test_spool_of_a_killed_process_is_swept(tmp_path: Path) -> None:
    abandoned = spool_of_a_killed_process(tmp_path)
    with spool_directory(tmp_path) as live:
        assert sweep_abandoned(tmp_path) == 0  # the abandoned one went when this one was made
        assert not abandoned.exists()
        assert live.exists()
