"""The bundle's entry script: PyInstaller needs a file; the app's entry point is ``sketchapp.__main__:main``."""

from __future__ import annotations

import sys

from sketchapp.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
