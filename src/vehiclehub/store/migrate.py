"""The store's schema versions: Alembic migrations, applied once per run.

The revisions (package ``vehiclehub.migrations``, ``versions/``) begin with the schema of the
release before them (the baseline) and add each change since, in order. Which one a
store is at is in its ``alembic_version`` table. A store of a release before migrations
has the tables but not that table: it is taken to be at the baseline, and each revision
after it tolerates what a build between releases may already have made.

- :func:`upgrade_store` brings a store to this release's revision: ``vhub db upgrade``,
  and ``vhub run`` and the DAG before anything else. One process at a time does it.
- :func:`ensure_store` is what opening a store does: nothing when it is current, creates
  a new (empty) store from the tables' definitions and stamps it current, and refuses a
  store that is behind or ahead, saying what to run.
- :func:`upgrade_sql` writes the SQL of the upgrade for a DBA (``vhub db upgrade --sql``).
"""

from __future__ import annotations

import fcntl
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, MetaData, inspect, make_url, text

from vehiclehub.errors import CannotStart

#: Where the revisions are; shipped inside the package. Not imported from here: revisions
#: may use any layer of the hub (cleaning stored values uses intake's checks).
MIGRATIONS = Path(__file__).parents[1] / "migrations"
#: The revision of the release before migrations: a store without a version is there.
BASELINE = "0001"
#: A table every release's store has: a store holding it is not a new one.
_EVERY_RELEASES_TABLE = "intake_files"
#: Key of the PostgreSQL advisory lock taken while the schema changes ("vhub").
_SCHEMA_LOCK_KEY = 0x76687562

#: On PostgreSQL, the hub's own role loses UPDATE, DELETE and TRUNCATE on the exchange
#: log: its entries are never changed or deleted (ICD §6). Only the table's owner may
#: revoke its own privileges; for a role that does not own the table (an administrator
#: created it) there is nothing to take. A superuser is never bound by privileges.
EXCHANGE_LOG_APPEND_ONLY = """
DO $$
BEGIN
    IF (SELECT pg_get_userbyid(relowner) = current_user FROM pg_class
        WHERE oid = to_regclass('exchange_log')) THEN
        REVOKE UPDATE, DELETE, TRUNCATE ON exchange_log FROM CURRENT_USER;
    END IF;
END
$$
"""


class StoreNotCurrent(CannotStart):
    """The store is not at this release's revision; the message says what to run."""


@dataclass(frozen=True)
class Step:
    """One revision applied: its id and the first line of its description."""

    revision: str
    what: str


@dataclass(frozen=True)
class Cleaned:
    """One stored value a revision changed: where (table, column, the row's key as a
    rejection shows values), what was done and why. Never the value."""

    table: str
    column: str
    row: str
    action: str
    reason: str

    def line(self) -> str:
        return f"{self.table}.{self.column} [{self.row}]: {self.action}: {self.reason}"


@dataclass
class Upgrade:
    """What an upgrade did: the revision before (None: a new store, or one of a release
    before migrations when ``unversioned``), the revision after, the steps applied, and
    each stored value a step cleaned (where, and what was done)."""

    before: str | None
    after: str
    created: bool = False
    unversioned: bool = False
    steps: list[Step] = field(default_factory=list)
    cleaned: list[Cleaned] = field(default_factory=list)

    def lines(self, *, cleaned: bool = True) -> list[str]:
        """The upgrade told in a few lines, for the command's output and the log; each
        stored value cleaned too unless ``cleaned`` is False (it was logged as a warning
        when it was cleaned)."""
        if self.created:
            return [f"new store created at revision {self.after}"]
        if not self.steps:
            return [f"store at revision {self.after}: nothing to do"]
        start = "release before migrations" if self.unversioned else self.before
        lines = [f"store upgraded from {start} to revision {self.after}:"]
        lines += [f"  {step.revision} {step.what}" for step in self.steps]
        if cleaned and self.cleaned:
            lines.append(f"stored values cleaned (ICD §1, §5): {len(self.cleaned)}")
            lines += [f"  {change.line()}" for change in self.cleaned]
        return lines

    def to_dict(self) -> dict[str, object]:
        return {
            "before": self.before,
            "after": self.after,
            "created": self.created,
            "steps": [f"{s.revision} {s.what}" for s in self.steps],
            "cleaned": [change.line() for change in self.cleaned],
        }


def store_metadata() -> MetaData:
    """Every table of this release, the review desk's included."""
    import vehiclehub.store.review  # noqa: F401  # its tables join the store's metadata
    from vehiclehub.store.schema import metadata

    return metadata


def _config(**attributes: object) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes.update(attributes)
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """This release's revision."""
    head = _scripts().get_current_head()
    assert head is not None, "the store's migrations have one head"
    return head


def store_revision(conn: Connection) -> str | None:
    """The revision the store is at; None when it has no version."""
    return MigrationContext.configure(conn).get_current_revision()


def _is_new(conn: Connection) -> bool:
    return not inspect(conn).has_table(_EVERY_RELEASES_TABLE)


def _lock_path(engine: Engine) -> Path | None:
    url = make_url(str(engine.url))
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    database = Path(url.database)
    return database.with_name(database.name + ".schema-lock")


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[Connection]:
    """A connection on which the schema may change, one process at a time.

    PostgreSQL: a transaction holding an advisory lock, committed at the end. SQLite: an
    exclusive lock of a file beside the database (the operating system releases it if
    the holder dies).
    """
    lock_path = _lock_path(engine)
    if lock_path is None:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
            yield conn
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with engine.begin() as conn:
                yield conn
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _create(conn: Connection) -> None:
    """A new store: this release's tables made from their definitions, stamped current.

    The migrations, run from an empty database, give the same schema (the store's
    migration tests compare the two).
    """
    store_metadata().create_all(conn)
    if conn.dialect.name == "postgresql":
        conn.execute(text(EXCHANGE_LOG_APPEND_ONLY))
    command.stamp(_config(connection=conn), "head")


def _what(doc: str | None) -> str:
    """A revision's description: the first paragraph of its docstring, on one line."""
    return " ".join((doc or "").split("\n\n")[0].split())


def _not_current(revision: str | None, head: str) -> StoreNotCurrent:
    if revision is None:
        return StoreNotCurrent(
            "the store was made by a release before schema versions: run `vhub db upgrade` "
            "(or `vhub run`, which upgrades it first)"
        )
    if revision in {r.revision for r in _scripts().walk_revisions()}:
        return StoreNotCurrent(
            f"the store is at revision {revision}, this release needs {head}: run "
            "`vhub db upgrade` (or `vhub run`, which upgrades it first)"
        )
    return StoreNotCurrent(
        f"the store is at revision {revision}, which this release does not know (a newer "
        f"release made it; this one is at {head}): run the release that upgraded it"
    )


def ensure_store(engine: Engine) -> None:
    """Make sure the store can be used by this release, changing nothing that exists.

    Current: nothing is done (one read of its version). New (empty): created at this
    release's revision. Behind or ahead: StoreNotCurrent, saying what to run.
    """
    head = head_revision()
    with engine.connect() as conn:
        if store_revision(conn) == head:
            return
    with _schema_lock(engine) as conn:
        revision = store_revision(conn)
        if revision == head:
            return
        if revision is None and _is_new(conn):
            _create(conn)
            return
        raise _not_current(revision, head)


def upgrade_store(engine: Engine) -> Upgrade:
    """Bring the store to this release's revision, in one go, one process at a time.

    A new store is created; a store of a release before migrations is stamped at the
    baseline and upgraded from there; a current one is left alone. Every revision runs
    in the one transaction on PostgreSQL (all or nothing). A store at a revision this
    release does not know (a newer release's) is refused with StoreNotCurrent.
    """
    head = head_revision()
    with _schema_lock(engine) as conn:
        before = store_revision(conn)
        if before is None and _is_new(conn):
            _create(conn)
            return Upgrade(before=None, after=head, created=True)
        scripts = _scripts()
        known = {r.revision for r in scripts.walk_revisions()}
        if before is not None and before not in known:
            raise _not_current(before, head)
        upgrade = Upgrade(before=before, after=head, unversioned=before is None)
        if before == head:
            return upgrade
        if before is None:
            command.stamp(_config(connection=conn), BASELINE)
        start = before or BASELINE
        upgrade.steps = [
            Step(r.revision, _what(r.doc))
            for r in reversed(list(scripts.iterate_revisions(head, start)))
        ]
        config = _config(connection=conn)
        command.upgrade(config, "head")
        upgrade.cleaned = list(config.attributes.get("cleaned", []))
    return upgrade


def upgrade_sql(database_url: str, start: str | None = None) -> str:
    """The SQL of the upgrade from revision ``start`` (None: an empty database) to this
    release's, for the dialect of ``database_url``; nothing is connected to.

    A step that moves stored data runs in the hub's own code and cannot be written as
    SQL: from an empty database there is nothing to move and it adds nothing; from a
    store's revision the SQL stops before the first such step, saying so, and
    ``vhub db upgrade`` run on the store does the rest.
    """
    scripts = _scripts()
    head = head_revision()
    end = head
    stopped = None
    if start is not None:
        try:
            scripts.get_revision(start)
        except CommandError as exc:
            raise StoreNotCurrent(
                f"--from {start}: not a revision of the store's migrations ({exc})"
            ) from exc
        for script in reversed(list(scripts.iterate_revisions(head, start))):
            if getattr(script.module, "MOVES_DATA", False):
                stopped = script
                end = script.down_revision  # type: ignore[assignment]
                break
    output = io.StringIO()
    if end != start:
        span = f"{start}:{end}" if start is not None else end
        command.upgrade(_config(url=database_url, output=output), span, sql=True)
    if stopped is not None:
        what = _what(stopped.doc)
        output.write(
            f"-- Stopped before revision {stopped.revision} ({what}): it moves stored data\n"
            "-- with the hub's own code. Run `vhub db upgrade` on the store for it and the\n"
            "-- revisions after it.\n"
        )
    return output.getvalue()
