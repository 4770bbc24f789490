"""commerce / enterprises — export enterprise filings 二手车出口企业备案 (ICD §3)."""

from vehiclehub.contract import column, feed_schema
from vehiclehub.icd.codes import EnterpriseStatus, values

schema = feed_schema(
    agency="commerce",
    feed="enterprises",
    key=["uscc", "filing_no"],
    description="Export enterprise filings; a filing runs one year.",
    columns={
        "uscc": column("uscc"),
        "name": column("text"),
        "filing_no": column("id"),
        "region_code": column("digits", n=6),
        "valid_from": column("date"),
        "valid_to": column("date"),
        "status": column("enum", values=values(EnterpriseStatus)),
    },
)
