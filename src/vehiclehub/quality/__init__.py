"""Data-quality gates: one Great Expectations suite per feed, run on every file.

``expectations/<agency>_<feed>.json`` holds a feed's suite (GX 1.x JSON); each
expectation names itself and its severity in ``meta`` (``critical`` rejects the file
whole, ``warning`` loads it and reports). The gate runs after schema validation on a
narrow, typed, pseudonymised frame of the file (:mod:`vehiclehub.quality.frame`),
compares volume with the feed's history (:mod:`vehiclehub.quality.history`), and
keeps every result for the run report and the run's Data Docs
(:mod:`vehiclehub.quality.datadocs`). :mod:`vehiclehub.quality.completeness` says
which expected feeds and file numbers did not arrive.
"""

from vehiclehub.quality.gate import FileQuality, record_quality

__all__ = ["FileQuality", "record_quality"]
