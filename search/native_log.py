"""Keep TensorFlow's and LiteRT's own stderr (C++ logs, converter chatter) off the terminal."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def native_stderr_to_log(enabled: bool, err, command: str):
    """Yield a stream for progress lines; if ``enabled``, file descriptor 2 goes to a log meanwhile.

    The log is removed when the block succeeds, and named on ``err`` when it fails (if not empty).
    """
    if not enabled:
        yield err
        return
    err.flush()
    sys.stderr.flush()
    handle, log = tempfile.mkstemp(prefix=f"nas-lite-{command}-", suffix=".log")
    saved = os.dup(2)
    stream = os.fdopen(os.dup(saved), "w", buffering=1)
    os.dup2(handle, 2)
    failed = True
    try:
        yield stream
        failed = False
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(handle)
        if failed and os.path.getsize(log):
            print(f"{command}: TensorFlow's messages are in {log}", file=stream, flush=True)
        else:
            os.unlink(log)
        stream.close()
