"""The lab GUI (PyQt6 + pyqtgraph): presentation only.

:mod:`gui.main_window` holds the main window (live views of an engine running in
its own process, recording) and ``run_app``, the entry point of ``labctl gui``.
Nothing here is imported by :mod:`labctl`; Qt is loaded only by ``labctl gui``.
"""
