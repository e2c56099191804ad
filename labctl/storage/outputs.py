"""Safe command outputs: checked before any work, written under a temporary name, renamed into place.

Rules (issue 9, finding 4): a refused command changes no file; an output is
never one of the command's inputs; an output file appears (or replaces the old
one) only once it is complete — ``os.replace`` of a temporary file written in
the same folder, so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from labctl.errors import ConfigError

PathLike = str | os.PathLike[str]


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name the same file (hard links and symlinks included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(os.path.realpath(a)) == os.path.abspath(os.path.realpath(b))


def _nearest_folder(path: Path) -> Path:
    """The deepest existing ancestor of ``path`` (the folder that must take a new entry)."""
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def _check_writable_folder(option: str, path: Path, folder: Path) -> None:
    """``folder`` must be a folder in which a file can be created (tried: permission bits lie for root)."""
    if not folder.is_dir():
        raise ConfigError(option, str(path), f"{folder} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".labctl-probe-", dir=folder)
    except OSError as exc:
        raise ConfigError(option, str(path), f"cannot create files in {folder}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)


def check_output_file(option: str, path: PathLike, *, inputs: Sequence[tuple[str, PathLike | None]] = (),
                      overwrite: bool = True, make_folders: bool = False) -> Path:
    """Check that ``path`` can become the output file of ``option``; nothing is written.

    Args:
        option: the command-line option that names it (``--out``, ``--json``), for messages.
        path: the output file.
        inputs: (option, path) of every input of the command; the output must be none of them.
        overwrite: an existing file may be replaced (else refused).
        make_folders: missing folders will be created by the writer (else the folder must exist).

    Raises:
        ConfigError: a folder, an input, an existing file without ``overwrite``, a missing or
            unwritable folder.
    """
    path = Path(path)
    for input_option, input_path in inputs:
        if input_path is not None and (path.exists() or Path(input_path).exists()) and _same_file(path, Path(input_path)):
            raise ConfigError(option, str(path), f"is the input {input_option} {input_path}: an output must be "
                                                 "a different file")
    if path.is_dir():
        raise ConfigError(option, str(path), "is a folder: give a file name")
    if path.exists() and not overwrite:
        raise ConfigError(option, str(path), "already exists; choose another name or pass --overwrite")
    if not path.absolute().parent.exists() and not make_folders:
        raise ConfigError(option, str(path), f"folder {path.absolute().parent} does not exist")
    _check_writable_folder(option, path, _nearest_folder(path))
    return path


def check_output_folder(option: str, path: PathLike, *, inputs: Sequence[tuple[str, PathLike | None]] = (),
                        file_names: Sequence[str] = ()) -> Path:
    """Check that ``path`` can be (or already is) a folder for the files ``file_names``; nothing is written.

    Raises:
        ConfigError: ``path`` is an existing file or an input, or one of the files it would hold is an input.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(option, str(path), "is an existing file: give a folder")
    for name in file_names:
        check_output_file(option, path / name, inputs=inputs, make_folders=True)
    if not path.exists():
        _check_writable_folder(option, path, _nearest_folder(path))
    return path


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` as a whole: a temporary file in the same folder, then ``os.replace``."""
    with replaced(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def replaced(path: PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.absolute().parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Recording:
    """Where ``labctl acquire`` records, and how the recording reaches ``--out``.

    Without ``--overwrite`` (or when ``--out`` does not exist yet) the engine records
    straight into ``--out``.  With ``--overwrite`` of an existing file it records into
    ``recording_path`` beside it (``<stem>.recording-<pid>.h5``) and ``commit``
    replaces the old file once the run has ended, however it ended: the old file is
    untouched by a refused start (no recording, or one without photons), and a
    recording is never lost.
    """

    def __init__(self, out: PathLike) -> None:
        self.out = Path(out)
        if self.out.exists():
            self.recording_path = self.out.with_name(f"{self.out.stem}.recording-{os.getpid()}{self.out.suffix}")
        else:
            self.recording_path = self.out

    def commit(self) -> Path:
        """Move the finished recording onto ``--out``; return where the recording is.

        A recording without a single photon (the run failed while starting) does not
        replace the old file: it stays beside it, with its run log.
        """
        if self.recording_path != self.out and self.recording_path.exists() and _has_photons(self.recording_path):
            os.replace(self.recording_path, self.out)
            self.recording_path = self.out
        return self.recording_path if self.recording_path.exists() else self.out


def _has_photons(path: Path) -> bool:
    """Whether the labctl file at ``path`` holds at least one photon (a damaged file counts as holding some)."""
    from labctl.storage import PhotonHDF5Reader

    try:
        with PhotonHDF5Reader(path) as reader:
            return reader.num_photons > 0
    except Exception:  # noqa: BLE001 - unreadable here is no proof of emptiness: keep it as the recording
        return True
