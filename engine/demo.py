"""Realistic demo data, deterministic by seed: CRM and loyalty profile fragments that overlap
through shared e-mail identities, and a year of web and commerce ExperienceEvents.

Everything is written as typed Parquet (identityMap as a map), so ingestion takes the native path.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

FIRST_NAMES = (  # noqa: SIM905 -- a word list reads better as one string
    "James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Lisa Matthew Nancy Anthony "
    "Betty Mark Sandra Donald Ashley Steven Emily Paul Kimberly Andrew Donna Joshua Michelle "
    "Julia Jan Jorge Jun Jade Jamal Joanna Mateo Sofia Lucas Emma Noah Olivia Liam Ava Hiro "
    "Yuki Amara Kwame Priya Arjun Chen Wei Fatima Omar Ingrid Lars Elena Marco"
).split()
LAST_NAMES = (  # noqa: SIM905
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Tanaka Silva"
).split()
# (country code, weight, cities as (city, state))
COUNTRIES = (
    ("US", 50, (("New York", "NY"), ("San Francisco", "CA"), ("Austin", "TX"), ("Chicago", "IL"),
                ("Seattle", "WA"), ("Miami", "FL"))),
    ("GB", 12, (("London", "LND"), ("Manchester", "MAN"), ("Edinburgh", "EDH"))),
    ("DE", 10, (("Berlin", "BE"), ("Munich", "BY"), ("Hamburg", "HH"))),
    ("FR", 8, (("Paris", "IDF"), ("Lyon", "ARA"))),
    ("CA", 8, (("Toronto", "ON"), ("Vancouver", "BC"))),
    ("JP", 6, (("Tokyo", "13"), ("Osaka", "27"))),
    ("AU", 6, (("Sydney", "NSW"), ("Melbourne", "VIC"))),
)
PRODUCTS = (
    ("SKU-TEE-01", "Essential Tee", 24.0), ("SKU-HOOD-02", "Trail Hoodie", 68.0),
    ("SKU-RUN-03", "Velocity Running Shoe", 129.0), ("SKU-YOGA-04", "Flow Yoga Mat", 45.0),
    ("SKU-BAG-05", "Commuter Backpack", 89.0), ("SKU-WATCH-06", "Pulse Fitness Watch", 249.0),
    ("SKU-BOTL-07", "Insulated Bottle", 32.0), ("SKU-JKT-08", "Storm Shell Jacket", 189.0),
    ("SKU-SOCK-09", "Merino Socks (3-pack)", 21.0), ("SKU-CAP-10", "Breeze Cap", 28.0),
)
PAGES = ("home", "women", "men", "equipment", "sale", "blog", "stores", "help")
TIERS = (("bronze", 0), ("silver", 1000), ("gold", 3000), ("platinum", 8000))
DOMAINS = ("example.com", "mail.example.org", "inbox.example.net")

IDENTITY_ITEM = pa.struct([("id", pa.string()), ("primary", pa.bool_()),
                           ("authenticatedState", pa.string())])
IDENTITY_MAP = pa.map_(pa.string(), pa.list_(IDENTITY_ITEM))

CRM_SCHEMA = pa.schema([
    ("_id", pa.string()),
    ("identityMap", IDENTITY_MAP),
    ("person", pa.struct([("name", pa.struct([("firstName", pa.string()),
                                              ("lastName", pa.string())])),
                          ("gender", pa.string()), ("birthDate", pa.date32())])),
    ("homeAddress", pa.struct([("city", pa.string()), ("stateProvince", pa.string()),
                               ("countryCode", pa.string()), ("postalCode", pa.string())])),
    ("personalEmail", pa.struct([("address", pa.string())])),
    ("mobilePhone", pa.struct([("number", pa.string())])),
    ("consents", pa.struct([("marketing", pa.struct([("email", pa.struct([
        ("val", pa.string())]))]))])),
])
LOYALTY_SCHEMA = pa.schema([
    ("_id", pa.string()),
    ("identityMap", IDENTITY_MAP),
    ("loyalty", pa.struct([("loyaltyID", pa.string()), ("tier", pa.string()),
                           ("points", pa.int64()), ("joinDate", pa.date32())])),
    ("person", pa.struct([("name", pa.struct([("firstName", pa.string())]))])),
])
PRODUCT_ITEM = pa.struct([("SKU", pa.string()), ("name", pa.string()), ("quantity", pa.int64()),
                          ("priceTotal", pa.float64()), ("currencyCode", pa.string())])
VALUE = pa.struct([("value", pa.float64())])
EVENT_SCHEMA = pa.schema([
    ("_id", pa.string()),
    ("timestamp", pa.timestamp("us")),
    ("eventType", pa.string()),
    ("identityMap", IDENTITY_MAP),
    ("web", pa.struct([("webPageDetails", pa.struct([("name", pa.string()), ("URL", pa.string()),
                                                     ("pageViews", VALUE)]))])),
    ("commerce", pa.struct([
        ("productViews", VALUE), ("productListAdds", VALUE), ("productListRemovals", VALUE),
        ("checkouts", VALUE), ("purchases", VALUE), ("cartAbandons", VALUE),
        ("order", pa.struct([("purchaseID", pa.string()), ("priceTotal", pa.float64()),
                             ("currencyCode", pa.string())])),
    ])),
    ("metrics", pa.struct([("commerce", pa.struct([("abandons", VALUE)]))])),
    ("productListItems", pa.list_(PRODUCT_ITEM)),
    ("channel", pa.struct([("typeAtSource", pa.string())])),
])


@dataclass(frozen=True)
class DemoFiles:
    crm: Path
    loyalty: Path
    events: Path
    profiles: int
    loyalty_members: int
    events_count: int


def _identity(namespace_ids: list[tuple[str, str, bool, str | None]]) -> list[tuple[str, Any]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for namespace, value, primary, state in namespace_ids:
        grouped.setdefault(namespace, []).append(
            {"id": value, "primary": primary, "authenticatedState": state})
    return list(grouped.items())


def generate(*, profiles: int, seed: int, out: Path, end: datetime | None = None) -> DemoFiles:
    """Write crm.parquet, loyalty.parquet and events.parquet into `out`."""
    rng = random.Random(seed)
    end = (end or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0))
    end = end.replace(tzinfo=None)
    start = end - timedelta(days=365)
    out.mkdir(parents=True, exist_ok=True)
    country_weights = [weight for _, weight, _ in COUNTRIES]

    crm_rows: list[dict[str, Any]] = []
    loyalty_rows: list[dict[str, Any]] = []
    events = EventWriter(out / "events.parquet")
    for number in range(profiles):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first}.{last}.{number}@{rng.choice(DOMAINS)}".lower()
        crm_id = f"CRM{number:08d}"
        country, _, cities = rng.choices(COUNTRIES, weights=country_weights)[0]
        city, state = rng.choice(cities)
        crm_rows.append({
            "_id": f"crm-{number}",
            "identityMap": _identity([("CRMID", crm_id, True, "authenticated"),
                                      ("Email", email, False, "authenticated")]),
            "person": {"name": {"firstName": first, "lastName": last},
                       "gender": rng.choice(("female", "male", "not_specified")),
                       "birthDate": date(rng.randint(1950, 2006), rng.randint(1, 12),
                                         rng.randint(1, 28))},
            "homeAddress": {"city": city, "stateProvince": state, "countryCode": country,
                            "postalCode": f"{rng.randint(1000, 99999):05d}"},
            "personalEmail": {"address": email},
            "mobilePhone": {"number": f"+1-555-{rng.randint(0, 9999):04d}"}
            if rng.random() < 0.7 else None,
            "consents": {"marketing": {"email": {"val": "y" if rng.random() < 0.75 else "n"}}},
        })
        if rng.random() < 0.6:
            points = int(rng.expovariate(1 / 1800))
            tier = [name for name, floor in TIERS if points >= floor][-1]
            loyalty_rows.append({
                "_id": f"loyalty-{number}",
                "identityMap": _identity([("LOYALTYID", f"L{number:08d}", True, "authenticated"),
                                          ("Email", email, False, "authenticated")]),
                "loyalty": {"loyaltyID": f"L{number:08d}", "tier": tier, "points": points,
                            "joinDate": (start - timedelta(days=rng.randint(0, 1500))).date()},
                # the loyalty app's own copy of the first name, sometimes newer (merge policies)
                "person": {"name": {"firstName": first if rng.random() < 0.9 else first[:1]}},
            })
        ecid = f"{rng.getrandbits(64):020d}{number:06d}"
        _sessions(rng, events, ecid, email, start, end, known=True)
    for number in range(profiles // 5):  # anonymous visitors: an ECID and no e-mail
        ecid = f"{rng.getrandbits(64):020d}A{number:05d}"
        _sessions(rng, events, ecid, None, start, end, known=False)

    pq.write_table(pa.Table.from_pylist(crm_rows, schema=CRM_SCHEMA), out / "crm.parquet",
                   compression="zstd")
    pq.write_table(pa.Table.from_pylist(loyalty_rows, schema=LOYALTY_SCHEMA),
                   out / "loyalty.parquet", compression="zstd")
    count = events.close()
    return DemoFiles(out / "crm.parquet", out / "loyalty.parquet", out / "events.parquet",
                     profiles, len(loyalty_rows), count)


class EventWriter:
    """Buffers events and writes them as row groups, so a million events stay cheap."""

    def __init__(self, path: Path) -> None:
        self.writer = pq.ParquetWriter(path, EVENT_SCHEMA, compression="zstd")
        self.rows: list[dict[str, Any]] = []
        self.count = 0

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= 100_000:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=EVENT_SCHEMA))
            self.count += len(self.rows)
            self.rows = []

    def close(self) -> int:
        self.flush()
        self.writer.close()
        return self.count


def _pick(rng: random.Random, items: tuple[Any, ...]) -> Any:
    """rng.choice without its rejection sampling: this runs millions of times."""
    return items[int(rng.random() * len(items))]


def _between(rng: random.Random, low: int, high: int) -> int:
    return low + int(rng.random() * (high - low + 1))


CHANNELS = ("web", "web", "web", "mobile", "email")
QUANTITIES = (1, 1, 1, 2, 3)


def _sessions(rng: random.Random, events: EventWriter, ecid: str, email: str | None,
              start: datetime, end: datetime, *, known: bool) -> None:
    """A visitor's sessions: browsing, sometimes a cart, sometimes a purchase or an abandon."""
    engagement = rng.random()
    sessions = 1 + int(rng.expovariate(1 / (2 if known else 1)) * (0.5 + engagement))
    span = (end - start).total_seconds()
    for _ in range(min(sessions, 40)):
        moment = start + timedelta(seconds=rng.random() * span)
        authenticated = known and email is not None and rng.random() < 0.5
        identity: list[tuple[str, str, bool, str | None]] = [
            ("ECID", ecid, True, "authenticated" if authenticated else "ambiguous")]
        if authenticated and email is not None:
            identity.append(("Email", email, False, "authenticated"))
        _session(rng, events, ecid, _identity(identity), _pick(rng, CHANNELS), moment,
                 engagement)


def _session(rng: random.Random, events: EventWriter, ecid: str, ids: list[tuple[str, Any]],
             channel: str, moment: datetime, engagement: float) -> None:
    def emit(event_type: str, moment: datetime, **fields: Any) -> None:
        events.add({"_id": f"{ecid}-{events.count + len(events.rows)}",
                    "timestamp": moment, "eventType": event_type, "identityMap": ids,
                    "channel": {"typeAtSource": channel}, **fields})

    for _ in range(_between(rng, 1, 3)):
        page = _pick(rng, PAGES)
        emit("web.webpagedetails.pageViews", moment, web={"webPageDetails": {
            "name": f"luma: {page}", "URL": f"https://luma.example.com/{page}",
            "pageViews": {"value": 1.0}}})
        moment += timedelta(seconds=_between(rng, 5, 240))
    if rng.random() > 0.45 + 0.3 * (1 - engagement):
        return
    sku, name, price = _pick(rng, PRODUCTS)
    quantity = _pick(rng, QUANTITIES)
    item = {"SKU": sku, "name": name, "quantity": quantity, "priceTotal": price * quantity,
            "currencyCode": "USD"}
    emit("commerce.productViews", moment, commerce={"productViews": {"value": 1.0}},
         productListItems=[item])
    moment += timedelta(seconds=_between(rng, 10, 300))
    if rng.random() < 0.55:
        return
    emit("commerce.productListAdds", moment, commerce={"productListAdds": {"value": 1.0}},
         productListItems=[item])
    moment += timedelta(seconds=_between(rng, 10, 600))
    roll = rng.random()
    if roll < 0.12:
        emit("commerce.productListRemovals", moment,
             commerce={"productListRemovals": {"value": 1.0}}, productListItems=[item])
    elif roll < 0.55:
        emit("commerce.checkouts", moment, commerce={"checkouts": {"value": 1.0}},
             productListItems=[item])
        moment += timedelta(seconds=_between(rng, 30, 900))
        emit("commerce.purchases", moment, commerce={
            "purchases": {"value": 1.0},
            "order": {"purchaseID": f"ORD-{events.count + len(events.rows)}",
                      "priceTotal": item["priceTotal"], "currencyCode": "USD"}},
            productListItems=[item])
    else:
        emit("commerce.cartAbandons", moment + timedelta(minutes=30),
             commerce={"cartAbandons": {"value": 1.0}},
             metrics={"commerce": {"abandons": {"value": 1.0}}},
             productListItems=[item])

