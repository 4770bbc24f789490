"""customs / declarations — export declarations 出口报关单, one row per vehicle item (ICD §3)."""

from vehiclehub.contract import column, feed_schema
from vehiclehub.icd.codes import DeclarationStatus, values

schema = feed_schema(
    agency="customs",
    feed="declarations",
    key=["decl_no", "item_no"],
    record_status=True,
    description="Export declaration items; a withdrawn item (修撤单) is record_status cancelled.",
    columns={
        "decl_no": column("decl_no"),
        "item_no": column("integer", low=1, high=999),
        "vin": column("vin"),
        "uscc": column("uscc"),
        "licence_no": column("id"),
        "hs_code": column("hs_code"),
        "goods_name": column("text"),
        "declared_at": column("date"),
        "exported_at": column("date", nullable=True),
        "status": column("enum", values=values(DeclarationStatus)),
        "port_code": column("digits", n=4),
        "destination_country": column("country"),
        "fob_usd": column("decimal"),
    },
)
