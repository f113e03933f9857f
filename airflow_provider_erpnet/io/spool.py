"""Local scratch directories for staged extractions that a killed task cannot leave behind for good.

Each directory holds an exclusive ``flock`` on its ``.lock`` file for as long as it is in use; the
kernel drops the lock when its process dies, SIGKILL included. So the next extraction on the
machine can remove every directory whose lock it can take (its owner is gone) and can never
remove one that a running task still uses.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"


def default_root() -> Path:
    return Path(tempfile.gettempdir()) / "airflow-provider-erpnet-spool"


@contextmanager
def spool_directory(root: Path | None = None) -> Iterator[Path]:
    """A fresh directory under ``root``, locked while the block runs and removed afterwards."""
    root = root or default_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    sweep_abandoned(root)
    path = Path(tempfile.mkdtemp(prefix="spool-", dir=root))
    # Lock under a temporary name, then rename: a sweeper only looks at ".lock", so it never sees
    # a lock file that exists but is not held yet.
    pending = path / f"{LOCK_NAME}.pending"
    lock = open(pending, "w")  # noqa: SIM115 (held open for the lifetime of the directory)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pending.rename(path / LOCK_NAME)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        lock.close()


def sweep_abandoned(root: Path | None = None) -> int:
    """Remove the spool directories under ``root`` whose owning process has died; returns how many."""
    root = root or default_root()
    removed = 0
    for child in root.glob("spool-*"):
        try:
            descriptor = os.open(child / LOCK_NAME, os.O_RDWR)
        except OSError:
            continue  # no lock file: being set up, or not ours
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a running extraction holds it
        finally:
            os.close(descriptor)
        shutil.rmtree(child, ignore_errors=True)
        removed += 1
    if removed:
        log.info(
            "Removed %d spool director%s left by killed extractions.", removed, "y" if removed == 1 else "ies"
        )
    return removed
