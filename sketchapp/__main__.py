"""``sketchapp``: no arguments starts the desktop app, subcommands are the CLI.

Two hidden first arguments come before the CLI: ``--svg-child`` (a frozen app's
executable drawing an SVG for ``sketchapp.core.svg``, where there is no Python to run)
and ``--self-test OUTDIR`` (``sketchapp.selftest``: start the window, complete a drawing,
save it, for packagers).
"""

from __future__ import annotations

import os
import sys

SVG_CHILD = "--svg-child"  # sketchapp.core.svg.SVG_CHILD (not imported here: the app starts without numpy)
SELF_TEST = "--self-test"
#: Commands that run torch on several threads with nothing to wait for between passes. OpenMP's
#: default spin-wait keeps every thread busy between parallel regions; beside another busy
#: process on a small machine that made a 2-thread pass take 55-536 ms instead of 24, and passive
#: waiting the whole ``complete`` call 2.1x faster. It is read when torch loads, so it is set here.
BATCH_COMMANDS = ("complete", "train", "evaluate", "data", "upscaler")


def _interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # a terminated command cleans up and says so, as after Ctrl-C (exit 130)


def _settled() -> None:
    """Once a command has returned, its outputs are complete: a late Ctrl-C or SIGTERM (during the
    interpreter's own shutdown) no longer turns its exit status into a signal's or prints a traceback."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if getattr(sys, "frozen", False):
        import multiprocessing

        multiprocessing.freeze_support()  # a multiprocessing child of the bundle runs its task and exits here
    if args[:1] == [SVG_CHILD]:
        from sketchapp.core.svg import run_child

        return run_child(args[1:])
    if args[:1] == [SELF_TEST]:
        from sketchapp.selftest import main as self_test

        return self_test(args[1:])
    if args[:1] and args[0] in BATCH_COMMANDS:
        import signal

        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        signal.signal(signal.SIGTERM, _interrupted)
    from sketchapp.cli import main as cli_main

    try:
        return cli_main(args)
    finally:
        _settled()


if __name__ == "__main__":
    sys.exit(main())
