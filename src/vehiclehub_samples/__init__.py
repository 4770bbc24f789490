"""The sample world: a consistent world of used-car exports, with planted rule cases and
intake noise, and the ground truth of what the hub must make of it. What the demo, the
tests and the benchmarks feed the hub; not part of the hub (the dev and demo extras
install it).

The world: export enterprises with yearly filings; vehicles registered to people, sold to
an exporter pending export (转让待出口), licensed, declared and cleared by customs,
deregistered for export by the police and claimed for a tax refund; and a few trade-in
claims (以旧换新). Columns come from the feed contract (``vehiclehub.contract.feeds()``)
and every value is valid per its checks. Generation is vectorised (a million vehicles
take about a minute) and deterministic for a seed.

Each record has the business day on which it is first known and, for records that
change (a licence is issued, an item clears or is withdrawn, a refund is decided), the
day of each change. Each business date's file holds the records that are new or changed
since the previous date, with ``record_version`` counting the changes; everything known
by the first date goes into the first date's files, like an initial load.

By concern: :mod:`.reference` data, :mod:`.identifiers` in bulk, :mod:`.columns` (days and
text), the :mod:`.stories` and their :mod:`.population`, the :mod:`.plants` (one module
per rule family, as ``vehiclehub.rules``), the :mod:`.records` of the feeds, the file
:mod:`.plan`, the intake :mod:`.noise`, the :mod:`.truth`, and the :mod:`.world` that
:func:`generate_world` returns; :mod:`.stream` makes a world too big to hold block by
block of vehicles, straight to disk; :mod:`.files` writes single agency files for the tests.

Inside the generator a day is a whole number of days since 1970-01-01 and NaN means
"never" (NaN compares false, so a step that never happens is never "on or before").
"""

from vehiclehub_samples.columns import business_dates
from vehiclehub_samples.files import feed_file_name, write_feed
from vehiclehub_samples.world import World, generate_world

__all__ = ["World", "business_dates", "feed_file_name", "generate_world", "write_feed"]
