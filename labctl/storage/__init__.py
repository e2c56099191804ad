"""Photon-HDF5 storage: the streaming file sink, the reader and ``labctl info``.

HDF5 paths and dtypes (the file's public contract) are in ``labctl.storage.layout``.
"""

from labctl.storage.describe import describe_file
from labctl.storage.reader import PhotonHDF5Reader
from labctl.storage.writer import PhotonHDF5Writer

__all__ = ["PhotonHDF5Writer", "PhotonHDF5Reader", "describe_file"]
