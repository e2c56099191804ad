"""Ending an HDF5 file safely after a failed write (a full disk), and reopening it afterwards.

Measured with h5py 3.16 / HDF5 2.0 on a tmpfs filled by another process: once a
write fails with ENOSPC, every later HDF5 call on that file fails again, and
closing it — also implicitly, at interpreter exit — can crash the process
("Can't decrement id ref count", exit 139) and leave half-written records.  So
after a failed write the writer *abandons* the file object: the file descriptor
under HDF5 is replaced by ``/dev/null``, then the file is closed, so HDF5 writes
nothing more to the real file.  What the file holds is then exactly its state at
the last successful SWMR flush (SWMR keeps that state consistent, as after
kill -9), readable with ``swmr=True``.

SWMR leaves an "open for writing" mark in the superblock of a file that was not
closed, and its end-of-allocation is still the one of the SWMR start;
:func:`reopen_rw` with ``clear_flags=True`` clears the mark and moves the end of
allocation to the end of the file, as ``h5clear -s --increment=0`` does (the
file-access properties ``clear_status_flags`` and ``skip_eof_check`` and
``H5Fincrement_filesize``, through the HDF5 C library h5py loaded), so the end
record can still be added when space allows.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re
import sys
import time

import h5py

from labctl.storage import layout as L


def reserve_space(path: str, nbytes: int) -> str | None:
    """Keep ``nbytes`` of the disk for the end of the run: a hidden file beside ``path``
    (``.<name>.reserve``), removed by :func:`release` when the file is finished.  So another
    process that fills the disk still leaves room for the end record.  Returns its path, or
    None if it could not be made (the run goes on without it)."""
    reserve = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.reserve")
    try:
        fd = os.open(reserve, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return None
    try:
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fd, 0, nbytes)
        else:
            os.write(fd, bytes(nbytes))
    except OSError:
        os.close(fd)
        release(reserve)
        return None
    os.close(fd)
    return reserve


def release(reserve: str | None) -> None:
    """Remove a reserve made by :func:`reserve_space` (None: nothing to do)."""
    if reserve is not None:
        try:
            os.remove(reserve)
        except OSError:
            pass


def is_disk_full(exc: BaseException) -> bool:
    """True if ``exc`` is a "no space left on device" error (OSError errno 28, or HDF5's text of it)."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    text = str(exc)
    return "errno = 28" in text or "No space left on device" in text


def abandon(f: h5py.File) -> str | None:
    """Close ``f`` without writing anything more into its file; returns what went wrong, or None.

    The file descriptor HDF5 writes through is pointed at ``/dev/null`` first, so the
    metadata HDF5 still holds in memory goes nowhere and the file on disk keeps its
    last flushed state.
    """
    problem = None
    try:
        fd = f.id.get_vfd_handle()
        null = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
    except Exception as exc:  # noqa: BLE001 - closing is still attempted
        problem = f"could not detach the file from HDF5 ({exc!r})"
    try:
        f.close()
    except Exception as exc:  # noqa: BLE001
        problem = problem or f"closing it failed ({exc!r})"
    return problem


def clear_mark(path: str) -> str | None:
    """Clear the "open for writing" mark an abandoned read/write session left (readers refuse such a
    file); changes nothing else.  Returns what went wrong, or None."""
    try:
        f = reopen_rw(path, clear_flags=True)
    except Exception as exc:  # noqa: BLE001
        return f"its 'open for writing' mark could not be cleared ({exc}); run h5clear -s on it"
    try:
        f.close()
    except Exception as exc:  # noqa: BLE001
        abandon(f)
        return f"its 'open for writing' mark could not be cleared ({exc}); run h5clear -s on it"
    return None


READ_ONLY_HOLD_TIMEOUT_S = 2.0
"""How long ``reopen_rw`` waits for a reader of this process to let go of the file (s)."""


def reopen_rw(path: str, *, clear_flags: bool = False) -> h5py.File:
    """Open ``path`` read/write (``libver`` as written); ``clear_flags``: clear SWMR's "open for writing" mark.

    A SWMR reader in another process may hold a shared lock: then the file is opened
    without locking (new readers are kept out by the superblock's mark meanwhile).  A
    reader in this process that has the file open read-only (HDF5 then refuses a
    read/write open) is waited for, up to ``READ_ONLY_HOLD_TIMEOUT_S``: a following
    reader opens it for a moment at a time while it waits for the end record.

    Raises:
        OSError: the file cannot be opened, or its mark cannot be cleared here.
    """
    deadline = time.monotonic() + READ_ONLY_HOLD_TIMEOUT_S
    while True:
        try:
            return _reopen_rw(path, clear_flags)
        except OSError as exc:
            if "already open for read-only" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(0.005)


def _reopen_rw(path: str, clear_flags: bool) -> h5py.File:
    if not clear_flags:
        try:
            return h5py.File(path, "r+", libver=L.LIBVER)
        except OSError:
            return h5py.File(path, "r+", libver=L.LIBVER, locking=False)
    for locking in (True, False):
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        fapl.set_libver_bounds(h5py.h5f.LIBVER_V110, h5py.h5f.LIBVER_V110)
        if not locking:
            fapl.set_file_locking(False, True)
        lib = _hdf5_library()
        for name in (b"clear_status_flags", b"skip_eof_check"):
            _set_flag(lib, fapl, name)
        try:
            fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDWR, fapl=fapl)
        except OSError:
            if not locking:
                raise
            continue
        # the superblock's end-of-allocation is that of the SWMR start: move it to the end of the file
        if lib.H5Fincrement_filesize(ctypes.c_int64(fid.id), ctypes.c_uint64(0)) < 0:
            fid.close()
            raise OSError("HDF5 could not extend the file's end of allocation (H5Fincrement_filesize)")
        return h5py.File(fid)
    raise AssertionError("unreachable")


def _set_flag(lib: ctypes.CDLL, fapl: h5py.h5p.PropFAID, name: bytes) -> None:
    """Set a boolean file-access property of HDF5 that h5py does not expose (as h5clear does)."""
    flag = ctypes.c_bool(True)
    if lib.H5Pset(ctypes.c_int64(fapl.id), name, ctypes.byref(flag)) < 0:
        raise OSError(f"HDF5 refused the file-access property {name.decode()}")


def _hdf5_library() -> ctypes.CDLL:
    """The HDF5 C library h5py runs on (its bundled copy, or the system's), with the prototypes used here."""
    if sys.platform.startswith("linux"):
        with open("/proc/self/maps") as maps:  # the very copy loaded in this process
            found = sorted(set(re.findall(r"\S*/libhdf5(?:-[0-9a-f]+)?\.so[.0-9]*", maps.read())))
        if found:
            return _prototypes(ctypes.CDLL(found[0]))
    package = os.path.dirname(h5py.__file__)  # wheels: h5py.libs (Linux), h5py/.dylibs (macOS), h5py/ (Windows)
    pattern = re.compile(r"^(lib)?hdf5(-[0-9a-f]+)?(\.[0-9]+)*\.(so|dylib|dll)(\.[0-9]+)*$")
    for folder in (package + ".libs", os.path.join(package, ".dylibs"), package):
        names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        for name in names:
            if pattern.match(name):
                return _prototypes(ctypes.CDLL(os.path.join(folder, name)))
    name = ctypes.util.find_library("hdf5")
    if not name:
        raise OSError("the HDF5 C library h5py uses was not found: cannot clear the file's SWMR mark")
    return _prototypes(ctypes.CDLL(name))


def _prototypes(lib: ctypes.CDLL) -> ctypes.CDLL:
    lib.H5Pset.argtypes = [ctypes.c_int64, ctypes.c_char_p, ctypes.c_void_p]
    lib.H5Pset.restype = ctypes.c_int
    lib.H5Fincrement_filesize.argtypes = [ctypes.c_int64, ctypes.c_uint64]
    lib.H5Fincrement_filesize.restype = ctypes.c_int
    return lib
