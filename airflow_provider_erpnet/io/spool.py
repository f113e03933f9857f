"""Private local scratch directories for staged extractions, which a killed task cannot leave behind for good.

Each spool is a fresh directory made by ``tempfile.mkdtemp`` (mode 0700, owned by this user, under
a name nobody chose before) directly in the system temp directory: there is no shared parent that
another local user could create first, open up, or swap a directory in. Files in it are created
0600 by their writer. Its ``.lock`` (``locks.OwnerLock``) is held while it is in use, so the next
extraction on the machine removes this user's spools whose lock it can take (their process died)
and never one in use. Removal checks with ``lstat`` that a name is still our directory, and
``shutil.rmtree`` walks it by file descriptor, never following a symlink.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from airflow_provider_erpnet.client.errors import ErpNetConfigError

from .locks import OwnerLock, owner_alive

log = logging.getLogger(__name__)

PREFIX = "airflow-provider-erpnet-spool-"
LOCK_NAME = ".lock"


def default_root() -> Path:
    return Path(tempfile.gettempdir())


@contextmanager
def spool_directory(root: Path | None = None) -> Iterator[Path]:
    """A fresh private directory in ``root`` (the system temp directory), removed afterwards."""
    root = root or default_root()
    _check_root(root)
    sweep_abandoned(root)
    path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=root))
    made = os.lstat(path)
    try:
        lock = OwnerLock(path / LOCK_NAME)
    except BaseException:
        _remove(path, made)
        raise
    try:
        yield path
    finally:
        _remove(path, made)
        lock.release()


def spool_file(path: Path) -> BinaryIO:
    """A new file in a spool directory, open for writing: 0600, never through a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.fdopen(os.open(path, flags, 0o600), "wb")


def sweep_abandoned(root: Path | None = None) -> int:
    """Remove this user's spool directories in ``root`` whose owning process died; returns how many."""
    root = root or default_root()
    removed = 0
    with os.scandir(root) as entries:
        candidates = [entry for entry in entries if entry.name.startswith(PREFIX)]
    for entry in candidates:
        try:
            found = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.geteuid():
            continue  # a symlink, a file, or another user's: not ours to touch
        if owner_alive(Path(entry.path) / LOCK_NAME) is not False:
            continue  # in use, or still being set up (no lock yet)
        removed += _remove(Path(entry.path), found)
    if removed:
        log.info(
            "Removed %d spool director%s left by killed extractions.", removed, "y" if removed == 1 else "ies"
        )
    return removed


def _check_root(root: Path) -> None:
    """Refuse a temp directory where other users may rename what is not theirs (no sticky bit)."""
    mode = root.stat().st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH) and not mode & stat.S_ISVTX:
        raise ErpNetConfigError(
            f"The temporary directory {str(root)!r} is writable by other users but lacks the sticky bit, "
            "so they could replace a spool directory in it. Set TMPDIR to a private directory, or make "
            "it sticky (chmod +t) like /tmp."
        )


def _remove(path: Path, made: os.stat_result) -> int:
    """Remove ``path`` if it is still the directory ``made`` describes; 1 when removed, else 0."""
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return 0
    if not stat.S_ISDIR(now.st_mode) or (now.st_dev, now.st_ino) != (made.st_dev, made.st_ino):
        log.warning("Spool directory %s was replaced while in use; not removing what is there now.", path)
        return 0
    try:
        shutil.rmtree(path)
    except OSError as error:
        log.warning("Could not remove spool directory %s: %s", path, error)
        return 0
    return 1
