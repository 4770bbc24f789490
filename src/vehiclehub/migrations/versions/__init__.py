"""The store's revisions, one module each, in the order of their ``down_revision``."""
