"""Processes the hub starts for a part of its work (``python -m vehiclehub...``): what
keeps each from outliving the process that started it."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

#: How often a child checks that the process that started it is still there.
PARENT_CHECK_S = 0.5
#: A child's exit status when its parent died: it was abandoned, not failing.
ORPHANED = 3


def watch_parent(parent_pid: int, interval: float = PARENT_CHECK_S) -> threading.Thread:
    """End this process as soon as ``parent_pid`` is no longer its parent.

    A parent that dies is replaced as parent by init (or a subreaper), so the parent
    pid changes. ``os._exit`` because the main thread may be deep in its work.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os._exit(ORPHANED)

    thread = threading.Thread(target=watch, name="vhub-parent-watch", daemon=True)
    thread.start()
    return thread


def child_arguments(argv: list[str] | None, module: str, first: str) -> tuple[str, int] | None:
    """A child's two arguments, ``first`` and the pid of the process that started it; None
    (with the usage said on stderr) when it was not given them."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or not args[1].isdigit():
        print(f"usage: python -m {module} {first} PARENT_PID", file=sys.stderr)
        return None
    return args[0], int(args[1])


def become_child(parent_pid: int) -> None:
    """What a child does first: leave Ctrl-C, which reaches the whole process group, to
    its parent, which decides and stops it; and end as soon as the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch_parent(parent_pid)
