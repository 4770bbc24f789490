"""commerce / tradein_claims — trade-in subsidy claims 以旧换新 (ICD §3)."""

from vehiclehub.contract import column, feed_schema
from vehiclehub.icd.codes import ClaimType, values

schema = feed_schema(
    agency="commerce",
    feed="tradein_claims",
    key=["claim_no"],
    record_status=True,
    description="Trade-in subsidy claims: 报废更新 (scrap) and 置换更新 (replace).",
    columns={
        "claim_no": column("id"),
        "claim_type": column("enum", values=values(ClaimType)),
        "applicant_id": column("resident_id"),
        "old_vin": column("vin"),
        "new_vin": column("vin"),
        "amount_cny": column("decimal"),
        "applied_at": column("date"),
    },
)
