"""Readers of other labs' time-tag files (PicoQuant PTU/PT3/PT2/HT3/HT2, quTAG, SSTT).

Each family has one module with a vectorised decoder from bytes to the records
of ``labctl.formats.common`` (``T2Records`` or ``T3Records``); ``labctl import``
turns those into the same ``PhotonBlock`` s the engine makes and streams them
through the same Photon-HDF5 writer, so an imported file and a recorded file
are the same thing to every reader.  Byte and bit layouts: the format
reference (``../shared/reference/formats.md``) and each module's docstring.
"""
