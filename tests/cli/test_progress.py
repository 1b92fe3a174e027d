"""The command line's progress bar: a terminal gets one redrawn line, a log gets plain lines."""

from __future__ import annotations

import io

from sketchapp import progress
from sketchapp.progress import Bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_whole_lines_and_no_carriage_returns(monkeypatch):
    monkeypatch.setattr(progress, "LOG_SECONDS", 0.0)
    log = io.StringIO()
    bar = Bar("training", 4, unit="step", stream=log)
    for step in range(1, 5):
        bar.to(step, loss="0.5")
    bar.note("epoch 1/1 done")
    bar.close()
    text = log.getvalue()
    assert "\r" not in text and "4/4" in text and "loss=0.5" in text and "epoch 1/1 done" in text
    assert all(len(line) <= progress.LOG_WIDTH for line in text.splitlines())


def test_a_terminal_gets_one_redrawn_bar_with_the_time_left():
    screen = Terminal()
    bar = Bar("reading", 10, unit="pictures", stream=screen)
    bar.bar.delay = 0
    for done in range(1, 11):
        bar.count(done, 10)
    bar.close()
    text = screen.getvalue()
    assert "\r" in text and "10/10" in text and "<" in text  # elapsed<remaining: tqdm's ETA
    assert text.count("\n") <= 1


def test_quiet_prints_nothing():
    log = io.StringIO()
    bar = Bar("x", 3, quiet=True, stream=log)
    bar.to(2, label="y", loss=1)
    bar.restart("z", 5)
    bar.count(1, 2)
    bar.note("hidden")
    bar.close()
    assert log.getvalue() == ""
