"""Code lists of the ICD and RULES.md, declared once: the feeds' schemas, the rules, the
drops and the sample world compare against these, never against string literals."""

from __future__ import annotations

from enum import StrEnum


def values(codes: type[StrEnum]) -> list[str]:
    """A code list's values, in declared order, as plain strings."""
    return [code.value for code in codes]


class Severity(StrEnum):
    """How serious a finding is (RULES.md)."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class FindingStatus(StrEnum):
    """A finding in a findings drop (ICD §4): first found on the drop's business date, or not."""

    NEW = "new"
    OPEN = "open"


class Review(StrEnum):
    """A case's review on the hub's review desk: none yet, or an operator's decision
    (ICD §4, review columns); a findings drop shows those of :class:`ShownReview`."""

    UNREVIEWED = "unreviewed"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"
    ESCALATED = "escalated"


class ShownReview(StrEnum):
    """An operator's decision as a findings drop shows it (ICD §4); a dismissed finding
    is left out instead, and one without a decision shows an empty ``review``."""

    CONFIRMED = "confirmed"
    ESCALATED = "escalated"


class PoliceVerdict(StrEnum):
    """The verdict on an export deregistration or an overdue export (ICD §4)."""

    VERIFIED = "verified"
    NO_EXPORT = "no_export"
    BEFORE_EXPORT = "before_export"
    OVERDUE = "overdue"


class TaxVerdict(StrEnum):
    """The verdict on a refund line (ICD §4): the first that applies, in this order."""

    NO_EXPORT = "no_export"
    CANCELLED = "cancelled"
    DUPLICATE = "duplicate"
    PARTY_MISMATCH = "party_mismatch"
    VERIFIED = "verified"


#: The police verdict each rule's finding on a deregistration gives (RULES.md).
POLICE_VERDICT_RULES: dict[str, PoliceVerdict] = {
    "EXP-001": PoliceVerdict.NO_EXPORT,
    "EXP-002": PoliceVerdict.BEFORE_EXPORT,
}
#: The tax verdict each rule's finding on a refund line gives, in the order they apply
#: (ICD §4): a line none of them fired on is ``verified``.
TAX_VERDICT_RULES: dict[str, TaxVerdict] = {
    "TAX-001": TaxVerdict.NO_EXPORT,
    "TAX-002": TaxVerdict.CANCELLED,
    "TAX-003": TaxVerdict.DUPLICATE,
    "TAX-004": TaxVerdict.PARTY_MISMATCH,
}


# --- the feeds' code lists (ICD §3) --------------------------------------------------


class RecordStatus(StrEnum):
    """A record as its latest version leaves it (ICD §1, corrections and cancellations)."""

    ACTIVE = "active"
    CANCELLED = "cancelled"


class EnterpriseStatus(StrEnum):
    """commerce / enterprises ``status``: an export enterprise's filing."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class ClaimType(StrEnum):
    """commerce / tradein_claims ``claim_type``: 报废更新 or 置换更新."""

    SCRAP = "scrap"
    REPLACE = "replace"


class EventType(StrEnum):
    """police / events ``event_type``."""

    REGISTER = "register"
    TRANSFER = "transfer"
    TRANSFER_PENDING_EXPORT = "transfer_pending_export"
    DEREGISTER = "deregister"


class DeregReason(StrEnum):
    """police / events ``dereg_reason``, given for a deregistration."""

    EXPORT = "export"
    SCRAP = "scrap"
    OTHER = "other"


class DeclarationStatus(StrEnum):
    """customs / declarations ``status``."""

    DECLARED = "declared"
    CLEARED = "cleared"


class EnterpriseClass(StrEnum):
    """tax / refunds ``enterprise_class``: 出口退税企业分类管理类别."""

    ONE = "1"
    TWO = "2"
    THREE = "3"
    FOUR = "4"


class RefundStatus(StrEnum):
    """tax / refunds ``status``."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
