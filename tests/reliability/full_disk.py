"""A search whose disk fills up while a trial trains: run as root inside ``unshare --mount``.

    python -m tests.reliability.full_disk DISK OUT SLACK_BYTES -- SEARCH-ARGS...

Mounts a small tmpfs at DISK (private to this mount namespace), runs ``search start --budget 1``
with its database there, and as soon as the trial trains fills the filesystem up to SLACK_BYTES
free: too little for the trial's artifact, enough for a few small rows. Then it frees the space and
runs ``search start --budget 2`` on the same study. After each run it copies the database to
OUT/first and OUT/second (the tmpfs vanishes with the namespace) and finally prints a JSON line with
both runs' exit statuses and output.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path


def training_started(database: Path) -> bool:
    """A trial RUNNING with its ``spec`` stored: the first attribute a trial writes, before it trains."""
    if not database.exists():
        return False
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)
        try:
            return connection.execute(
                "select 1 from trials t join trial_user_attributes a on a.trial_id = t.trial_id "
                "where t.state = 'RUNNING' and a.key = 'spec'"
            ).fetchone() is not None
        finally:
            connection.close()
    except sqlite3.Error:
        return False


def fill(folder: Path, slack: int) -> Path:
    """A file that takes all free space of ``folder``'s filesystem but ``slack`` bytes. The search
    writes beside it meanwhile: when the disk fills before the planned size, the filler gives
    ``slack`` bytes back."""
    filler = folder / "filler"
    stats = os.statvfs(folder)
    size = stats.f_bavail * stats.f_frsize - slack
    with open(filler, "wb", buffering=0) as stream:  # unbuffered: tell() is what the disk holds
        try:
            for _ in range(size // (1 << 16)):
                stream.write(b"\0" * (1 << 16))
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            stream.truncate(max(0, stream.tell() - slack))
    return filler


def keep(database: Path, into: Path) -> None:
    into.mkdir(parents=True)
    for file in database.parent.glob(database.name + "*"):
        shutil.copy(file, into / file.name)


def main(argv: list[str]) -> int:
    disk, out, slack = Path(argv[0]), Path(argv[1]), int(argv[2])
    settings = argv[argv.index("--") + 1:]
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], check=True)
    database = disk / "studies.db"
    command = [sys.executable, "-m", "search", "start", "--study", "full", "--storage", f"sqlite:///{database}", *settings]
    first = subprocess.Popen([*command, "--budget", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while first.poll() is None and not training_started(database):
        time.sleep(0.1)
    filler = fill(disk, slack)
    first_out, first_err = first.communicate(timeout=600)
    keep(database, out / "first")
    filler.unlink()
    second = subprocess.run([*command, "--budget", "2"], capture_output=True, text=True, timeout=600)
    keep(database, out / "second")
    print(json.dumps({
        "first": {"status": first.returncode, "stdout": first_out, "stderr": first_err},
        "second": {"status": second.returncode, "stdout": second.stdout, "stderr": second.stderr},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
