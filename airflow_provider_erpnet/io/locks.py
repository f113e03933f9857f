"""Ownership locks: a file whose exclusive ``flock`` says "the process that made this is alive".

The kernel drops a ``flock`` when its process dies, SIGKILL included, so whoever finds files left
beside a lock can tell a running owner (the lock is held) from a dead one (it can be taken) and
clean up only after the dead. Each lock has a name no one else uses (a run token in it); it is
created and locked under a ``.pending`` name first and then renamed, so nobody ever sees it
unlocked while its owner lives.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

PENDING_SUFFIX = ".pending"


class OwnerLock:
    """Holds the lock at ``path`` (0600, created here) until ``release`` or the process ends."""

    def __init__(self, path: Path) -> None:
        pending = path.with_name(path.name + PENDING_SUFFIX)
        descriptor = os.open(
            pending, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            os.rename(pending, path)
        except BaseException:
            os.close(descriptor)
            pending.unlink(missing_ok=True)
            raise
        self.path = path
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        """Remove the lock file, then unlock. Safe to call twice."""
        if self._descriptor is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._descriptor)
            self._descriptor = None


def owner_alive(path: Path) -> bool | None:
    """True while a process holds the lock at ``path``, False once it is gone, None without a lock file.

    Anything at ``path`` that is not a regular file (a symlink, a FIFO) was not made by
    ``OwnerLock``: it counts as alive, so nothing is removed on its word.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError:
        return True
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return True
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False
