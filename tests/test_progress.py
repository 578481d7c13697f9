"""Status lines on stderr: what a user reads while a run works."""

from __future__ import annotations


def test_progress_log_lines_carry_no_source_location():
    from cvbench.progress import STDERR

    STDERR.begin_capture()
    STDERR.log("epoch 1: loss 0.5000")
    text = STDERR.end_capture()
    assert "epoch 1: loss 0.5000" in text and ".py:" not in text


def test_counts_in_messages_take_the_noun_in_the_right_number():
    from cvbench.progress import counted

    assert [counted(n, "run") for n in (0, 1, 2, 1500)] == ["0 runs", "1 run", "2 runs", "1,500 runs"]
    assert counted(1, "query", "queries") == "1 query" and counted(3, "query", "queries") == "3 queries"
