"""An intake's bookkeeping in the store: each file taken (``intake_files``), how it came
signed, its rejections and its entry in the exchange log (ICD §6)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, Engine, insert, select

from vehiclehub.intake.signature import FileSignature
from vehiclehub.quality import FileQuality, record_quality
from vehiclehub.store.exchange_log import append_entry
from vehiclehub.store.load import bulk_insert
from vehiclehub.store.schema import file_signatures, intake_files, rejections


def already_taken(engine: Engine, agency: str, name: str, manifest_digest: str) -> bool:
    """Whether the agency's file of this name came with this manifest before."""
    with engine.connect() as conn:
        return (
            conn.execute(
                select(intake_files.c.id).where(
                    intake_files.c.agency == agency,
                    intake_files.c.name == name,
                    intake_files.c.manifest_sha256 == manifest_digest,
                )
            ).first()
            is not None
        )


def names_taken(engine: Engine, agency: str) -> set[str]:
    """The names of the agency's files taken before, whatever became of them."""
    with engine.connect() as conn:
        return set(
            conn.execute(
                select(intake_files.c.name).where(intake_files.c.agency == agency).distinct()
            ).scalars()
        )


def loaded_with_sha(engine: Engine, sha256: str) -> int | None:
    """The id of the file loaded with these contents, if any."""
    with engine.connect() as conn:
        return conn.execute(
            select(intake_files.c.id).where(
                intake_files.c.sha256 == sha256, intake_files.c.status == "loaded"
            )
        ).scalar()


def record_taken(
    conn: Connection, file_id: int, values: dict[str, object], signature: FileSignature | None
) -> None:
    """How the file came signed, and its ``in`` entry of the exchange log, in the
    transaction that records its outcome."""
    if signature is not None:
        conn.execute(
            insert(file_signatures).values(
                file_id=file_id,
                agency=values["agency"],
                state=signature.state,
                key_id=signature.key_id,
            )
        )
    rows = values.get("rows_declared")
    append_entry(
        conn,
        agency=str(values["agency"]),
        direction="in",
        file=str(values["name"]),
        sha256=str(values["sha256"]) if values.get("sha256") else None,
        rows=rows if isinstance(rows, int) else None,
        outcome=values["status"],  # type: ignore[arg-type]
    )


def record_file(
    engine: Engine,
    values: dict[str, object],
    problems: pd.DataFrame,
    quality: FileQuality | None = None,
    signature: FileSignature | None = None,
) -> int:
    """Bookkeeping for a file that loads nothing: rejected whole, or a duplicate."""
    with engine.begin() as conn:
        file_id = insert_file(conn, values)
        record_taken(conn, file_id, values, signature)
        if quality is not None:
            record_quality(conn, file_id, quality)
        if not problems.empty:
            bulk_insert(
                conn,
                rejections,
                problems.assign(
                    file_id=file_id, agency=str(values["agency"]), file=str(values["name"])
                ),
            )
    return file_id


def insert_file(conn: Connection, values: dict[str, object]) -> int:
    """A file's ``intake_files`` row; its id."""
    inserted = conn.execute(insert(intake_files).values(**values)).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def file_rejection(reason: str) -> pd.DataFrame:
    """The one rejection row of a file rejected whole."""
    return pd.DataFrame([{"line": None, "column": None, "value": None, "error": reason}])
