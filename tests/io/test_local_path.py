"""``file://`` URLs name the file a browser or curl would open: host ``localhost``, percent-decoded."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest

from airflow_provider_erpnet.client.errors import ErpNetConfigError
from airflow_provider_erpnet.io import Column, FileInfo, Manifest, OutputWriter, iter_records
from airflow_provider_erpnet.io.output import local_path

COLUMNS = [Column("DocumentNo", "string")]


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("file:///tmp/x.jsonl", "/tmp/x.jsonl"),
        ("file://localhost/tmp/x.jsonl", "/tmp/x.jsonl"),
        ("file://LOCALHOST/tmp/x.jsonl", "/tmp/x.jsonl"),
        ("file:/tmp/x.jsonl", "/tmp/x.jsonl"),
        ("file:///tmp/a%20b/c%25d.jsonl", "/tmp/a b/c%d.jsonl"),
        ("file:///tmp/%C3%A9t%C3%A9.jsonl", "/tmp/été.jsonl"),
        ("/tmp/100%25.jsonl", "/tmp/100%25.jsonl"),  # a plain path is not a URL: nothing decoded
    ],
)
def test_file_urls_resolve_like_rfc_8089(url: str, path: str) -> None:
    assert local_path(url) == Path(path)


@pytest.mark.parametrize("url", ["file://fileserver/share/x.jsonl", "file://127.0.0.2/tmp/x.jsonl"])
def test_a_file_url_on_another_host_is_refused(url: str) -> None:
    with pytest.raises(ErpNetConfigError, match="names host") as caught:
        local_path(url)
    assert "file:///" in str(caught.value)  # says how to write a local file URL


def test_writer_and_reader_use_the_decoded_local_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # a URL misread as relative would land here
    directory = tmp_path / "out dir"
    url = f"file://localhost{quote(str(directory))}/orders%201.jsonl"
    with OutputWriter(url, None, COLUMNS) as out:
        out.write_page([{"DocumentNo": "1"}])
    assert out.files[0].path == str(directory / "orders 1.jsonl")
    assert (directory / "orders 1.jsonl").read_text() == '{"DocumentNo":"1"}\n'
    assert not (tmp_path / "localhost").exists()
    manifest = Manifest("S", "jsonl", out.files, 1, 0, COLUMNS)
    assert [r["DocumentNo"] for r in iter_records(manifest)] == ["1"]
    url_manifest = Manifest("S", "jsonl", [FileInfo(url, 1, 0)], 1, 0, COLUMNS)
    assert [r["DocumentNo"] for r in iter_records(url_manifest)] == ["1"]
    assert os.listdir(tmp_path) == ["out dir"]
