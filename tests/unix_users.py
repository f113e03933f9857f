"""A second local Unix user, for tests of what another account on the same machine can do.

Root can start a process under any uid without an /etc/passwd entry (``subprocess`` calls
setgid/setuid in the child), so no account is created and nothing is left behind. Tests that need
it skip with the reason when the suite does not run as root, or when no Python the second user may
execute can import this project.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

OTHER_UID = 61_789  # no account uses it (checked), so it owns nothing on this machine
REPO = Path(__file__).resolve().parent.parent


def require_other_user() -> int:
    """The uid to run as, or skip the test saying why it cannot run here."""
    if os.geteuid() != 0:
        pytest.skip(
            "needs root to start a process as a second Unix user; run the suite as root to include it"
        )
    try:
        pwd.getpwuid(OTHER_UID)
    except KeyError:
        return OTHER_UID
    pytest.skip(f"uid {OTHER_UID} belongs to an account on this machine; cannot use it as a stranger")


@contextlib.contextmanager
def shared_directory() -> Iterator[Path]:
    """A fresh directory the second user can reach (pytest's own temporary tree is 0700), 0755."""
    path = Path(tempfile.mkdtemp(prefix="erpnet-two-users-"))
    try:
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path)


def run_as_other_user(args: list[str], **options: Any) -> subprocess.CompletedProcess:
    """Run ``args`` as the second user (uid and gid ``OTHER_UID``, no supplementary groups)."""
    uid = require_other_user()
    options.setdefault("timeout", 120)
    return subprocess.run(
        args,
        user=uid,
        group=uid,
        extra_groups=[],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
        **options,
    )


def python_as_other_user(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run Python ``code`` as the second user, with this project and its dependencies importable."""
    interpreter, env = _interpreter()
    return run_as_other_user([interpreter, "-c", code, *args], env=env)


@functools.cache
def _interpreter() -> tuple[str, dict[str, str]]:
    """This venv's Python, or when the second user may not execute it (a venv under a private home),
    the system Python of the same version with this process's import path."""
    env = {"PATH": os.defpath, "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, sys.path)])}
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    reasons = []
    for candidate in dict.fromkeys([sys.executable, shutil.which(version, path=os.defpath)]):
        if candidate is None:
            continue
        try:
            probe = run_as_other_user(
                [candidate, "-c", "import airflow_provider_erpnet.io, requests"], env=env
            )
        except OSError as error:
            reasons.append(f"{candidate}: {error.strerror}")
            continue
        if probe.returncode == 0:
            return candidate, env
        reasons.append(f"{candidate}: {probe.stderr.strip().splitlines()[-1:] or probe.returncode}")
    pytest.skip(f"no Python the second user can run imports this project ({'; '.join(reasons)})")
