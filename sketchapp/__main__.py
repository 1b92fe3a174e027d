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
BATCH_COMMANDS = ("complete", "train", "evaluate", "data")


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
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from sketchapp.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
