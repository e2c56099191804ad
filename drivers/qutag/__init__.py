"""qutools quTAG time tagger: ctypes binding of ``tdcbase`` and the QCoDeS driver.

Importing this package never loads the vendor library; ``QuTAG(name)`` does.
"""

from drivers.qutag.driver import QuTAG, QuTAGInput
from drivers.qutag.tdcbase import QuTAGError, load_tdcbase

__all__ = ["QuTAG", "QuTAGInput", "QuTAGError", "load_tdcbase"]
