"""Publish: drops into the agency inboxes and the operator's run report."""
