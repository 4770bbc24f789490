"""The store's Alembic migrations: the release before them as the baseline, then each
change of the schema and of the stored data since, in order (``versions/``).

Run through :mod:`vehiclehub.store.migrate` (``vhub db upgrade``), never on their own.
A revision may use any layer of the hub: nothing of the hub imports this package.
"""
