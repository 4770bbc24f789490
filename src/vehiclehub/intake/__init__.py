"""Intake: decode, validate and load what the agencies send (ICD §1–§3, §5)."""
