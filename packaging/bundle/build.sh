#!/usr/bin/env bash
# Build SketchApp as one folder: OUTDIR/SketchApp/ (default dist/), executable OUTDIR/SketchApp/sketchapp.
#
#   bash packaging/bundle/build.sh [OUTDIR]
#
# Uses the current python3 (PYTHON=... to pick another), which must have SketchApp and its
# dependencies installed (python3 -m pip install torch==2.13.0 -e . : the CPU build of
# PyTorch keeps the bundle under a gigabyte). PyInstaller is installed into it, pinned, if
# missing. PyInstaller's work files go to build/bundle/ (BUNDLE_WORKDIR=... to move them).
# The folder runs on machines like the one that built it (same OS, a glibc as new or newer).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"
pyinstaller_version="6.22.3"
outdir="$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)"
workdir="${BUNDLE_WORKDIR:-$root/build/bundle}"

if [[ "$("$python" -c 'import PyInstaller; print(PyInstaller.__version__)' 2>/dev/null)" != "$pyinstaller_version" ]]; then
    echo "build.sh: installing PyInstaller $pyinstaller_version into $("$python" -c 'import sys; print(sys.prefix)')"
    "$python" -m pip install --quiet "pyinstaller==$pyinstaller_version"
fi
if ! "$python" -c 'import sketchapp.resources, sketchapp.models, torch, PySide6' 2>/dev/null; then
    echo "build.sh: SketchApp is not installed in $python (python3 -m pip install torch==2.13.0 -e .)" >&2
    exit 1
fi

started=$SECONDS
"$python" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$outdir" --workpath "$workdir" "$here/sketchapp.spec"
bundle="$outdir/SketchApp"
echo "build.sh: built $bundle in $((SECONDS - started)) s:" \
    "$(du -sh "$bundle" | cut -f1), $(find "$bundle" -type f | wc -l) files"
echo "build.sh: check it with: $bundle/sketchapp --self-test /tmp/sketchapp-self-test  (QT_QPA_PLATFORM=offscreen without a display)"
