"""commerce / licences — export licences 二手车出口许可证, one row per licensed vehicle (ICD §3)."""

from vehiclehub.contract import column, feed_schema

schema = feed_schema(
    agency="commerce",
    feed="licences",
    key=["licence_no", "vin"],
    record_status=True,
    description="One licence covers at most 20 vehicles per HS code.",
    columns={
        "licence_no": column("id"),
        "uscc": column("uscc"),
        "vin": column("vin"),
        "brand": column("text"),
        "model": column("text"),
        "hs_code": column("hs_code"),
        "destination_country": column("country"),
        "port_code": column("digits", n=4),
        "registration_date": column("date"),
        "pending_export_date": column("date"),
        "applied_at": column("date"),
        "issued_at": column("date", nullable=True),
        "valid_to": column("date", nullable=True),
    },
)
