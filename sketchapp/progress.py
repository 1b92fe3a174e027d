"""The command line's one progress bar (tqdm): reading data, completing, training, evaluating.

tqdm fits the bar to the terminal's width as it changes and estimates the time left. When
stderr is not a terminal (a log file under ``nohup``, CI), the bar becomes plain lines, one
every ``LOG_SECONDS``, instead of carriage returns that pile up on one line.
"""

from __future__ import annotations

import shutil
import sys
from typing import Any, TextIO

from tqdm import tqdm

LOG_SECONDS = 5.0
LOG_WIDTH = 100


class _Lines:
    """A stream for a bar on a non-terminal: each redraw as its own line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").rstrip("\n")
        if line.strip():
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


class Bar:
    """A tqdm bar on ``stream`` (stderr), or nothing when ``quiet``; none at all for a job that ends
    within ``delay`` seconds (reading a small folder)."""

    def __init__(self, label: str, total: int | None = None, unit: str = "it", quiet: bool = False,
                 stream: TextIO | None = None, delay: float = 0.0) -> None:
        stream = stream or sys.stderr
        terminal = bool(getattr(stream, "isatty", lambda: False)())
        sized = terminal and shutil.get_terminal_size((0, 0)).columns > 0  # a pty may report no width at all
        self.quiet = quiet
        self.stream = stream
        self.label = label
        self.bar = tqdm(
            total=total, desc=label, unit=unit, file=stream if terminal else _Lines(stream), disable=quiet,
            dynamic_ncols=sized, ncols=None if sized else LOG_WIDTH, mininterval=0.1 if terminal else LOG_SECONDS,
            leave=True, ascii=not terminal, delay=delay,
        )

    def count(self, done: int, total: int) -> None:
        """``progress=`` callbacks of the data readers: ``done`` of ``total``."""
        if self.quiet:
            return
        if self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def to(self, done: int, total: int | None = None, label: str | None = None, **postfix: Any) -> None:
        """Move to ``done`` (of a new ``total``), with a new label and figures after the bar."""
        if self.quiet:
            return
        if label is not None and label != self.label:
            self.label = label
            self.bar.set_description_str(label, refresh=False)
        if total is not None and total != self.bar.total:
            self.bar.total = total
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(done - self.bar.n)

    def restart(self, label: str, total: int | None) -> None:
        """Start over (the next epoch) on the same line."""
        self.label = label
        if self.quiet:
            return
        self.bar.reset(total=total)
        self.bar.set_description_str(label, refresh=False)

    def note(self, message: str) -> None:
        """A line above the bar (the bar is redrawn under it)."""
        if not self.quiet:
            self.bar.write(message, file=self.stream)

    def close(self) -> None:
        self.bar.close()
