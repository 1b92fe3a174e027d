"""Memory over repeated create / load / stop cycles of the completion worker.

Run by hand: ``QT_QPA_PLATFORM=offscreen python benchmarks/worker_memory.py [--cycles N] [--preset NAME]
[--no-runtime]``. Results go to docs/benchmarks.md with the machine and date.

Each cycle starts a CompletionThread, loads the preset's model into it (ONNX Runtime
compiled where it is faster, unless ``--no-runtime``), waits for ``model_loaded``, stops the
thread and drops every reference to it. The resident memory (``/proc/self/statm``, Linux)
is printed after cycles 1, 5, 10, 20, 50, 100 and the last; the target (issue 31): flat
within a few MB over 100 cycles once the allocator has warmed up.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer  # noqa: E402

from sketchapp.core.presets import find_preset, installed_presets  # noqa: E402
from sketchapp.workers.completion import CompletionThread  # noqa: E402

SHOWN = (1, 5, 10, 20, 50, 100)


def resident_mib() -> float:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cycle(app: QCoreApplication, model: str, settings: object) -> None:
    holder = CompletionThread("cpu", 1)
    loop = QEventLoop()
    holder.worker.model_loaded.connect(loop.quit)
    holder.worker.load(model, "benchmark", settings)
    QTimer.singleShot(60_000, loop.quit)
    loop.exec()
    holder.stop()
    del holder, loop  # the worker and its thread are Python's: they go with the last reference
    app.processEvents()
    gc.collect()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--preset", default="emoji-pix2pix")
    parser.add_argument("--no-runtime", action="store_true", help="torch only, no ONNX Runtime")
    args = parser.parse_args()
    app = QCoreApplication(sys.argv[:1])
    preset = find_preset(args.preset, installed_presets()[0])
    settings = preset.settings.updated(runtime=False) if args.no_runtime else preset.settings
    print(f"| cycles | resident MiB ({args.preset}, {'torch' if args.no_runtime else 'runtime as the app picks'}) |\n|---:|---:|")
    for index in range(1, args.cycles + 1):
        cycle(app, str(preset.model), settings)
        if index in SHOWN or index == args.cycles:
            print(f"| {index} | {resident_mib():.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
