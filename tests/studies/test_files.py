"""Atomic writes: the file holds its old content or all of the new one, never a part."""

import pytest

from studies.files import write_atomically


def test_writes_and_replaces_leaving_no_temporary_file(tmp_path):
    path = tmp_path / "model.tflite"
    write_atomically(path, b"old")
    write_atomically(path, b"new content")
    assert path.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "report.html"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_atomically(path, "text, not bytes")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
