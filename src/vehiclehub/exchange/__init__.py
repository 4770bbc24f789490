"""Exchange: reaching each agency's ``outbox/`` (read) and ``inbox/`` (write), ICD §1."""

from vehiclehub.exchange.base import (
    Exchange,
    ExchangeMisconfigured,
    ExchangeUnavailable,
    OutboxEntry,
    complete_files,
)
from vehiclehub.exchange.transports import open_exchange

__all__ = [
    "Exchange",
    "ExchangeMisconfigured",
    "ExchangeUnavailable",
    "OutboxEntry",
    "complete_files",
    "open_exchange",
]
