"""tax / refunds — export tax refund claims 出口退税申报, one row per declaration item (ICD §3)."""

from vehiclehub.contract import column, feed_schema
from vehiclehub.icd.codes import EnterpriseClass, RefundStatus, values

schema = feed_schema(
    agency="tax",
    feed="refunds",
    key=["refund_no", "decl_ref"],
    description="Export VAT refund lines, each citing one declaration item.",
    columns={
        "refund_no": column("id"),
        "uscc": column("uscc"),
        "enterprise_class": column("enum", values=values(EnterpriseClass)),
        "decl_ref": column("decl_ref"),
        "amount_cny": column("decimal"),
        "applied_at": column("date"),
        "approved_at": column("date", nullable=True),
        "status": column("enum", values=values(RefundStatus)),
    },
)
