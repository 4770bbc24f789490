"""The exchange's contracts (ICD), each declared once: code lists, file names, manifests
and drops. The feeds' columns are declared in ``schemas/`` (:mod:`vehiclehub.contract`).

Nothing here does I/O or knows a stage: intake, rules, publish and the sample world all
read their contracts from here.
"""
