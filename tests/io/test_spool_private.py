"""Spool directories are private: another local user can neither pre-create nor swap them (issue 8, 2)."""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from pathlib import Path

import pytest

from airflow_provider_erpnet.client.errors import ErpNetConfigError
from airflow_provider_erpnet.io import Column, OutputWriter
from airflow_provider_erpnet.io.spool import spool_directory, sweep_abandoned
from tests.unix_users import OTHER_UID, run_as_other_user, shared_directory

COLUMNS = [Column("DocumentNo", "string")]
ROWS = [{"DocumentNo": f"{n:06d}"} for n in range(20)]


@pytest.fixture
def system_temp(monkeypatch) -> Path:
    """A stand-in for /tmp (mode 1777) that the second user can reach; the spool's default root."""
    with shared_directory() as shared:
        temp = shared / "tmp"
        temp.mkdir()
        temp.chmod(0o1777)
        monkeypatch.setattr(tempfile, "tempdir", str(temp))
        yield temp


def attacker(script: str, **paths: Path) -> int:
    """Run ``script`` (sh) as the second user, with ``$NAME`` for each path; its exit status."""
    env = {"PATH": os.defpath, **{name: str(path) for name, path in paths.items()}}
    return run_as_other_user(["/bin/sh", "-c", script], env=env).returncode


def test_another_user_cannot_take_over_a_spool(system_temp: Path) -> None:
    loot = system_temp / "loot"
    # What worked before: pre-create the shared spool root wide open, then swap our fresh spool
    # directory for a symlink to a directory of the attacker's, so our rows are written there.
    prepared = attacker(
        'mkdir -m 0777 "$TEMP/airflow-provider-erpnet-spool" "$LOOT" && chmod 0777 "$LOOT"',
        TEMP=system_temp,
        LOOT=loot,
    )
    assert prepared == 0
    with spool_directory() as spool:
        swapped = attacker('mv "$SPOOL" "$SPOOL.moved" && ln -s "$LOOT" "$SPOOL"', SPOOL=spool, LOOT=loot)
        with OutputWriter(spool / "rows.jsonl", "jsonl", COLUMNS, private=True) as out:
            out.write_page(ROWS)
        made = spool.lstat()
        modes = {p.name: stat.S_IMODE(p.lstat().st_mode) for p in spool.iterdir()}
    assert os.listdir(loot) == [], "the staged rows were written into the other user's directory"
    assert swapped != 0, "the other user could move our spool directory"
    assert stat.S_ISDIR(made.st_mode) and made.st_uid == os.geteuid() and stat.S_IMODE(made.st_mode) == 0o700
    assert set(modes.values()) == {0o600}, modes
    assert not spool.exists()


def test_another_users_look_alike_spools_are_never_swept(system_temp: Path) -> None:
    planted = attacker(
        'mkdir "$D" && : > "$D/.lock" && echo mine > "$D/data" && '
        'mkdir "$V" && : > "$V/.lock" && ln -s "$V" "$L"',
        D=system_temp / "airflow-provider-erpnet-spool-planted",
        V=system_temp / "victim",
        L=system_temp / "airflow-provider-erpnet-spool-link",
    )
    assert planted == 0
    assert sweep_abandoned() == 0
    assert (system_temp / "airflow-provider-erpnet-spool-planted" / "data").read_text() == "mine\n"
    assert (system_temp / "victim" / ".lock").exists()
    assert (system_temp / "airflow-provider-erpnet-spool-planted").stat().st_uid == OTHER_UID


def test_a_temp_directory_others_may_rename_in_is_refused(tmp_path: Path) -> None:
    open_temp = tmp_path / "tmp"
    open_temp.mkdir()
    open_temp.chmod(0o777)  # no sticky bit
    with pytest.raises(ErpNetConfigError, match="lacks the sticky bit") as caught, spool_directory(open_temp):
        pass
    assert "TMPDIR" in str(caught.value)
    assert os.listdir(open_temp) == []


def test_cleanup_never_follows_a_spool_swapped_for_a_symlink(tmp_path: Path, caplog) -> None:
    """The same user swapping the directory (no second user needed): nothing behind the link is removed."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me\n")
    with caplog.at_level(logging.WARNING), spool_directory(tmp_path) as spool:
        (spool / "rows.jsonl").write_text("{}\n")
        spool.rename(tmp_path / "moved")
        spool.symlink_to(victim)
    assert (victim / "precious.txt").read_text() == "keep me\n"
    assert spool.is_symlink()
    assert f"Spool directory {spool} was replaced while in use" in caplog.text
