"""Fetching a data file from an agency's outbox into the hub's encrypted archive."""

from __future__ import annotations

from pathlib import Path

from vehiclehub.config import Settings
from vehiclehub.crypto import ArchiveWriter, archive_key
from vehiclehub.exchange.base import Exchange, ExchangeUnavailable, NotRegularFile
from vehiclehub.intake.manifest import FileRejected
from vehiclehub.workfiles import private_dir


def unreadable(exchange: Exchange, name: str, exc: OSError) -> ExchangeUnavailable:
    """A complete file the exchange will not hand over (gone, or no permission).

    Not a data error: nothing of it is recorded, so the next run tries it again; until
    then the agency's intake stops here, as for any transfer failure.
    """
    return ExchangeUnavailable(f"{exchange.description}: cannot read outbox/{name}: {exc}")


def fetch_to_archive(settings: Settings, exchange: Exchange, data_name: str) -> Path:
    """Stream the data file into the encrypted archive, named by its sha256.

    A transfer cut part-way raises ExchangeUnavailable (the transport's own retries
    are spent by then) after the archive writer has discarded its ``.part``: the
    caller records nothing, so the file is fetched again in full by the next run.
    """
    landing = private_dir(settings.archive_dir / exchange.agency)
    private_dir(settings.archive_dir)
    writer = ArchiveWriter(landing / f"incoming-{data_name}", archive_key(settings))
    try:
        exchange.copy_outbox(data_name, writer)  # type: ignore[arg-type]
        writer.commit()
    except NotRegularFile as exc:
        writer.abort()
        raise FileRejected(str(exc)) from exc
    except (FileNotFoundError, PermissionError) as exc:
        writer.abort()
        raise unreadable(exchange, data_name, exc) from exc
    except BaseException:
        writer.abort()
        raise
    final = landing / f"{writer.sha256.hexdigest()}.csv.enc"
    writer.path.replace(final)
    return final
