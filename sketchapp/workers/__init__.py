"""Thin QtCore workers that drive core iterators from a QThread and emit signals."""
