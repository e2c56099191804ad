"""Andor Kymera / Shamrock spectrographs: ctypes binding of the spectrograph SDK and the QCoDeS driver.

Importing this package never loads the vendor library; ``Kymera193i(name)`` does.
"""

from drivers.andor_shamrock.kymera import Kymera193i
from drivers.andor_shamrock.shamrock import ShamrockError, load_shamrock

__all__ = ["Kymera193i", "ShamrockError", "load_shamrock"]
