"""Sorted Id snapshots: built from Ids in any order, read back a block at a time, and diffed."""

from __future__ import annotations

import os
import random
import stat
import uuid
from pathlib import Path

import pytest

from airflow_provider_erpnet.changes.idsnapshot import (
    MAGIC,
    SnapshotBuilder,
    SnapshotError,
    diff,
    id_bytes,
    id_text,
    read_ids,
)


def guids(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [uuid.UUID(int=rng.getrandbits(128)).bytes for _ in range(count)]


def build(path: Path, ids: list[bytes], run_size: int = 1000) -> list[bytes]:
    builder = SnapshotBuilder(path, run_size=run_size)
    for start in range(0, len(ids), 333):  # pages of any size
        builder.add(ids[start : start + 333])
    built = builder.finish()
    with open(path, "rb") as source:
        stored = list(read_ids(source, path))
    assert built.count == len(stored)
    return stored


def test_ids_in_server_order_go_straight_to_a_sorted_file(tmp_path: Path) -> None:
    ids = sorted(guids(5000, 1))
    assert build(tmp_path / "ids", ids + ids[-1:]) == ids  # a repeated last Id is kept once
    assert (tmp_path / "ids").stat().st_size == len(MAGIC) + 16 * len(ids)
    assert [p.name for p in tmp_path.iterdir()] == ["ids"]


def test_ids_in_another_order_are_sorted_through_bounded_runs(tmp_path: Path) -> None:
    ids = guids(5000, 2)
    mostly_sorted = sorted(ids[:3000]) + ids[3000:] + ids[10:20]  # order breaks after 3,000; repeats
    assert build(tmp_path / "ids", mostly_sorted, run_size=700) == sorted(ids)
    assert [p.name for p in tmp_path.iterdir()] == ["ids"]  # the spilled runs are gone


def test_snapshot_and_run_files_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """They live in the spool: 0600 like every spool file, whatever the umask (issue 8, defect 2)."""
    modes: list[int] = []
    spill = SnapshotBuilder._spill

    def spill_and_look(builder: SnapshotBuilder) -> None:
        spill(builder)
        modes.extend(stat.S_IMODE(run.stat().st_mode) for run in builder._runs)

    monkeypatch.setattr(SnapshotBuilder, "_spill", spill_and_look)
    previous = os.umask(0o022)
    try:
        build(tmp_path / "ids", guids(3000, 3), run_size=700)
    finally:
        os.umask(previous)
    assert modes and set(modes) == {0o600}
    assert stat.S_IMODE((tmp_path / "ids").stat().st_mode) == 0o600
    (tmp_path / "elsewhere").write_bytes(b"")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        SnapshotBuilder(tmp_path / "link")


def test_guid_text_round_trips_in_byte_order() -> None:
    text = "0000002A-5D98-42A4-A110-2A4A682A75B7"
    assert id_text(id_bytes(text)) == text.lower()
    assert id_bytes("{" + text + "}") == id_bytes(text.lower())
    texts = [str(uuid.UUID(bytes=raw)) for raw in guids(200, 3)]
    assert sorted(texts) == [id_text(raw) for raw in sorted(id_bytes(t) for t in texts)]
    for bad in ("1234", "not-a-guid-at-all-not-a-guid-at-all", "0000002a5d9842a4a1102a4a682a75b7ff"):
        with pytest.raises(ValueError):
            id_bytes(bad)


def test_damaged_snapshots_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "ids"
    build(path, sorted(guids(10, 4)))
    data = path.read_bytes()
    path.write_bytes(data[:-3])
    with open(path, "rb") as source, pytest.raises(SnapshotError, match="cut short"):
        list(read_ids(source, path))
    path.write_bytes(b"PAR1" + data[4:])
    with open(path, "rb") as source, pytest.raises(SnapshotError, match=r"not an ERP\.net Id snapshot"):
        list(read_ids(source, path))


def test_the_diff_finds_exactly_the_ids_that_went(tmp_path: Path) -> None:
    before = sorted(guids(20_000, 5))
    rng = random.Random(6)
    gone = set(rng.sample(before, 777))
    came = guids(500, 7)
    after = sorted([raw for raw in before if raw not in gone] + came)
    build(tmp_path / "before", before)
    build(tmp_path / "after", after)
    deleted: list[bytes] = []
    with open(tmp_path / "before", "rb") as old, open(tmp_path / "after", "rb") as new:
        counts = diff(read_ids(old), read_ids(new), deleted.append)
    assert deleted == sorted(gone)
    assert (counts.before, counts.after, counts.deleted, counts.added) == (20_000, 19_723, 777, 500)
