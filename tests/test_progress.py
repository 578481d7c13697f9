"""Status lines on stderr: what a user reads while a run works."""

from __future__ import annotations


def test_progress_log_lines_carry_no_source_location():
    from cvbench.progress import STDERR

    STDERR.begin_capture()
    STDERR.log("epoch 1: loss 0.5000")
    text = STDERR.end_capture()
    assert "epoch 1: loss 0.5000" in text and ".py:" not in text
