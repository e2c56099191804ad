"""labctl: instrument control and acquisition for a single-quantum-dot microscope.

The core package: instrument interfaces, station (config -> instruments),
acquisition engine, Photon-HDF5 storage, analysis and the command line.
It imports no Qt and no vendor library.
"""

__version__ = "0.1.0"
