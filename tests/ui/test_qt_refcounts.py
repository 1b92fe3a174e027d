"""Guard for the Qt binding pin: calls the app makes thousands of times must not over-release objects.

PySide6 6.12.0 drops a reference to None on every processEvents() and to True/False on
every Signal.emit(); on Python < 3.12 that crashes the app after a few thousand frames.
"""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QCoreApplication, QObject, Signal


class _Emitter(QObject):
    frame = Signal(object)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None, True and False are immortal from Python 3.12")
def test_event_processing_and_signals_keep_reference_counts(qapp):
    emitter = _Emitter()
    emitter.frame.connect(lambda value: None)
    none, true, false = sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)
    for _ in range(500):
        QCoreApplication.processEvents()
        emitter.frame.emit(None)
    assert sys.getrefcount(None) - none > -50
    assert sys.getrefcount(True) - true > -50 and sys.getrefcount(False) - false > -50
