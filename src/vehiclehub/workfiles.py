"""Files the hub writes under its work dir: private to its user, and whole or not at all.

What the hub keeps (archive, drops, reports, workbooks) may hold what agencies sent: it
is readable by the hub's user only (0600 files, 0700 directories). A file is written
as ``<name>.part`` and renamed when complete, so that a fault part-way (disk full, the
process killed) leaves nothing under the final name; a ``.part`` left by a failed write
is removed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
PART_SUFFIX = ".part"


def private_dir(path: Path) -> Path:
    """``path`` as a directory only the hub's user may enter (made if missing)."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)
    return path


@contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """Yield the ``.part`` path to write ``path`` to; rename it when the block ends.

    If the block fails, the ``.part`` is removed and nothing is left under ``path``'s
    name that was not there before.
    """
    private_dir(path.parent)
    partial = path.with_name(path.name + PART_SUFFIX)
    try:
        yield partial
        os.chmod(partial, FILE_MODE)
        os.replace(partial, path)
    except BaseException:
        with suppress(OSError):
            partial.unlink()
        raise
