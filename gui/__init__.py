"""The lab GUI (PyQt6 + pyqtgraph): presentation only.  Built in a later issue."""
