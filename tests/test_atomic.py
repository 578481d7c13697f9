"""The atomic writer: the new file's data and its name both reach the disk before a write returns."""

from __future__ import annotations

import os
import stat

from cvbench import atomic


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        events.append(("fsync", "folder" if stat.S_ISDIR(info.st_mode) else f"file {info.st_ino}"))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(("replace", os.path.basename(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "result.json"
    atomic.write_json(target, {"R@1": 50.0})

    file_entry = f"file {target.stat().st_ino}"  # the renamed temporary file keeps its inode
    assert events == [("fsync", file_entry), ("replace", "result.json"), ("fsync", "folder")]
    assert target.read_text() == '{\n  "R@1": 50.0\n}\n'


def test_a_system_without_o_directory_still_writes(tmp_path, monkeypatch):
    monkeypatch.delattr(os, "O_DIRECTORY")
    atomic.write_text(tmp_path / "a.txt", "hello")
    assert (tmp_path / "a.txt").read_text() == "hello"
