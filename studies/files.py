"""Files nas-lite writes for people (exported models, sidecars, reports): written atomically, with
the modes any file the user makes gets (0666 less the umask), never mkstemp's private 0600."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename it.

    A reader (or a crash) never sees half a file: ``path`` holds either its old content or all of
    ``data``; the temporary file is removed on any error.
    """
    path = Path(path)
    temporary = _temporary(path, data)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_pair(first: Path, first_data: bytes, second: Path, second_data: bytes) -> None:
    """Write a file and the file that describes it (a model and its sidecar) so that no reader, and
    no crash at any moment, leaves a mismatched pair: both are written to temporary files, the old
    ``second`` is removed, then ``first`` and ``second`` are renamed into place. Interrupted, the
    folder holds ``first`` (old or new) alone, never beside the other one's ``second``."""
    first, second = Path(first), Path(second)
    temporaries = []
    try:
        temporaries = [_temporary(first, first_data), _temporary(second, second_data)]
        second.unlink(missing_ok=True)
        os.replace(temporaries[0], first)
        os.replace(temporaries[1], second)
    except BaseException:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
        raise


def _temporary(path: Path, data: bytes) -> Path:
    """``data`` in a new hidden file beside ``path``, flushed to disk, with an ordinary file's mode."""
    handle, temporary = tempfile.mkstemp(dir=path.absolute().parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fchmod(stream.fileno(), 0o666 & ~_umask())
            os.fsync(stream.fileno())
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Path(temporary)


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it: put it back at once
    os.umask(mask)
    return mask
