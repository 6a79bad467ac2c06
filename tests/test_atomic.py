import os
import stat

import pytest

from toyviz.engine.atomic_files import atomic_path, atomic_write_text


def test_success_renames_with_ordinary_permissions(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_text(p, "hello")
    assert p.read_text() == "hello"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask
    assert [x.name for x in tmp_path.iterdir()] == ["a.txt"]


def test_failure_leaves_no_file_and_keeps_the_old_one(tmp_path):
    p = tmp_path / "v.mp4"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            assert tmp.endswith(".mp4") and os.path.dirname(tmp) == str(tmp_path)
            open(tmp, "w").write("half")
            raise RuntimeError("encoder died")
    assert p.read_text() == "old" and [x.name for x in tmp_path.iterdir()] == ["v.mp4"]
