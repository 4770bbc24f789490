"""Opening an agency's exchange by the transport its endpoint's url names."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from vehiclehub.config import AgencyEndpoint
from vehiclehub.exchange.base import Exchange, ExchangeUnavailable


@contextmanager
def open_exchange(agency: str, endpoint: AgencyEndpoint) -> Iterator[Exchange]:
    """Open the transport the endpoint's url names, and close it afterwards."""
    exchange: Exchange
    if endpoint.url.startswith("file://"):
        from vehiclehub.exchange.local import LocalExchange

        exchange = LocalExchange(agency, endpoint)
    elif endpoint.url.startswith("sftp://"):
        from vehiclehub.exchange.sftp import SftpExchange

        exchange = SftpExchange(agency, endpoint)
    else:
        raise ExchangeUnavailable(f"{agency}: unsupported exchange url {endpoint.url!r}")
    try:
        yield exchange
    finally:
        exchange.close()
