"""Store: the hub's database (SQLite by default, PostgreSQL in production)."""

from vehiclehub.store.db import StoreUnavailable, connect
from vehiclehub.store.lease import StoreBusy
from vehiclehub.store.schema import feed_table, metadata

__all__ = ["StoreBusy", "StoreUnavailable", "connect", "feed_table", "metadata"]
