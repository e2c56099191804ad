"""Acquisition: a run of the station, tagger -> photons -> sinks (file writer, live views), in threads.

``engine`` (the run: reader thread, losses, excitation and safe state), ``photons`` and
``photon_kernels`` (time tags -> photons with nanotimes), ``camera_path`` and ``frames``
(camera frames matched to their frame markers), ``sink_runner`` (a sink's bounded queue and
thread), ``rate_protection`` (SPAD count-rate limit), ``warmup`` (numba kernels ready before
the excitation goes on), ``malloc_tuning``.  Imports the station, never the processes or the CLI.
"""
