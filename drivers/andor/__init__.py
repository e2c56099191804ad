"""Andor iXon Ultra 888 EMCCD: ctypes binding of SDK2 (``atmcd``) and the QCoDeS driver.

Importing this package never loads the vendor library; ``IXonUltra888(name)`` does.
"""

from drivers.andor.atmcd import AndorError, load_atmcd
from drivers.andor.ixon import IXonUltra888
from drivers.andor.ixon_settings import CameraSettingError

__all__ = ["IXonUltra888", "AndorError", "CameraSettingError", "load_atmcd"]
