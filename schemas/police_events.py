"""police / events — vehicle registration events 机动车登记业务 (ICD §3)."""

from vehiclehub.checks import required_when
from vehiclehub.contract import column, feed_schema
from vehiclehub.icd.codes import DeregReason, EventType, values

schema = feed_schema(
    agency="police",
    feed="events",
    key=["event_id"],
    record_status=True,
    description="注册 / 转移 / 转让待出口 / 注销 events of a vehicle.",
    columns={
        "event_id": column("id"),
        "vin": column("vin"),
        "plate_no": column("text", nullable=True),
        "event_type": column("enum", values=values(EventType)),
        "event_date": column("date"),
        "owner_id": column("owner_id"),
        "dereg_reason": column("enum", values=values(DeregReason), nullable=True),
        "decl_no": column("decl_no", nullable=True),
        "registration_date": column("date"),
        "brand": column("text"),
        "model": column("text"),
    },
    row_checks=[required_when("dereg_reason", "event_type", EventType.DEREGISTER)],
)
