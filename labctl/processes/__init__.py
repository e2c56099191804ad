"""The station and its acquisition engine in a process of their own (the GUI's and ``EngineProcess``'s).

``station_process`` (the parent side: one method per command, one round trip over a pipe),
``station_child`` (the child side: the station, its runs, the command loop),
``engine_process`` (one run in a child process, behind the ``AcquisitionEngine`` API).
"""
