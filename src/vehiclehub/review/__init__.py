"""The operators' review desk: cases, decisions, comments and the audit trail.

Every finding of the rulebook is a case. Operators decide cases on the desk (a FastAPI
application, :mod:`vehiclehub.review.app`); the decisions are kept in the store beside
the findings and reach the agencies through the ``findings`` drops (ICD §4, review
columns).
"""
