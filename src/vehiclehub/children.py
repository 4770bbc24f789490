"""Processes the hub starts for a part of its work (``python -m vehiclehub...``): what
keeps each from outliving the process that started it."""

from __future__ import annotations

import os
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
