"""The intake worker process: prepares files for the intake that started it.

Started by :class:`vehiclehub.intake.chunks.Preparer` as

    python -m vehiclehub.intake.worker <socket fd> <parent pid>

a program of the hub's own rather than a multiprocessing "spawn" child: a spawned
child re-imports its parent's ``__main__``, which in an Airflow task process is
Airflow's entry point, and Airflow refuses to start there (task processes get no
metadata database). This process imports the intake and nothing of its caller.

It receives :class:`~vehiclehub.intake.chunks.FileJob` objects over the socket and
answers each with ``("item", Prepared | Finished)`` messages, then ``("end", None)``,
``("rejected", reason)`` or ``("failed", traceback)``; ``None`` asks it to stop.

It never outlives the process that started it: a closed socket ends it, and so does
its parent's death while it is busy with a file (a watch thread compares the parent
pid), also when the parent was killed with SIGKILL and cleaned up nothing.
"""

from __future__ import annotations

import sys
import traceback
from contextlib import suppress
from multiprocessing.connection import Connection

from vehiclehub.children import become_child, child_arguments
from vehiclehub.heap import map_large_blocks


def serve(connection: Connection) -> None:
    """Take jobs until ``None`` or the socket closes; send each job's items, then its end."""
    # Imported here, after the parent watch has started: under load these imports
    # take seconds, and a parent killed meanwhile must not leave the worker behind.
    from vehiclehub.intake.chunks import prepare_file
    from vehiclehub.intake.manifest import FileRejected
    from vehiclehub.quality import runtime

    # GX takes seconds to import: done while the intake still fetches the first file.
    runtime.gx()
    while True:
        try:
            job = connection.recv()
        except EOFError:  # the intake closed its end (or died)
            return
        if job is None:
            return
        try:
            for item in prepare_file(job):
                connection.send(("item", item))
        except FileRejected as exc:
            connection.send(("rejected", str(exc)))
        except (BrokenPipeError, ConnectionResetError):
            return  # the intake gave up on the file (its load failed) or died
        except Exception:
            connection.send(("failed", traceback.format_exc()))
        else:
            connection.send(("end", None))


def main(argv: list[str] | None = None) -> int:
    """Run the worker on the inherited socket ``argv[0]`` for parent ``argv[1]``."""
    given = child_arguments(argv, "vehiclehub.intake.worker", "SOCKET_FD")
    if given is None:
        return 2
    descriptor, parent_pid = int(given[0]), given[1]
    become_child(parent_pid)
    map_large_blocks()
    # A broken socket means the intake is gone: there is nobody to answer.
    with Connection(descriptor) as connection, suppress(BrokenPipeError, ConnectionResetError):
        serve(connection)
    return 0


if __name__ == "__main__":
    sys.exit(main())
