"""Drivers for the real instruments: thin vendor-library bindings and one QCoDeS driver class each."""
