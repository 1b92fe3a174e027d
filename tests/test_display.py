"""The window's system libraries: a missing one is named with the command that installs it."""

from __future__ import annotations

from sketchapp import cli, display


def test_missing_xcb_libraries_are_named_with_the_packages_that_provide_them():
    gone = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1"}
    message = display.display_problem({"DISPLAY": ":0"}, loads=lambda soname: soname not in gone)
    assert message is not None and "\n" not in message
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in message
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1" in message
    assert "sudo dnf install xcb-util-wm xcb-util-keysyms" in message
    assert display.display_problem({"DISPLAY": ":0"}, loads=lambda soname: True) is None


def test_only_the_x11_plugin_is_checked():
    assert display.uses_xcb({"DISPLAY": ":0"}, "linux")
    assert not display.uses_xcb({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert display.uses_xcb({"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not display.uses_xcb({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not display.uses_xcb({}, "darwin")


def test_the_app_stops_with_one_line_instead_of_qts_abort(monkeypatch, capsys):
    monkeypatch.setattr(display, "display_problem", lambda: "the window cannot open: Qt's X11 plugin needs libxcb-icccm.so.4")
    assert cli.main([]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sketchapp: the window cannot open")


def test_this_machines_libraries_are_checked_for_real():
    missing = display.missing_libraries()
    assert set(missing) <= set(display.XCB_LIBRARIES)
