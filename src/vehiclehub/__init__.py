"""vehiclehub: inter-agency data exchange and reconciliation hub for used-car exports."""

__version__ = "0.1.0"
