"""One example a JSON operation: its body (and path parameters), written against the demo data of ``make run``
(``bazaar demo`` on a fresh database), so Swagger UI's Try-it-out works as given.

``bazaar.config.openapi.finish`` puts them in the document (the body's ``example``, each path parameter's
``example``); ``tests/contract/test_api_examples.py`` sends every one, as the caller named here, against that demo data
and expects the documented success status. ``as_`` names the caller: ``staff`` (admin), ``vendor`` (demo),
``trainer`` (ash), ``tenant`` (the demo tenant's key) or ``anonymous``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Example:
    body: Any
    as_: str = "staff"
    path: dict[str, Any] = field(default_factory=dict)


EXAMPLES: dict[tuple[str, str], Example] = {
    # --- accounts ---
    ("post", "/api/accounts/tokens"): Example({"name": "laptop"}, "vendor"),
    ("post", "/api/accounts/tokens/login"): Example(
        {"username": "demo", "password": "spice-market-2026", "name": "cli"}, "anonymous"
    ),
    # --- storefront ---
    ("post", "/api/storefront/signup"): Example(
        {
            "username": "new-vendor",
            "password": "Tamarind-Kettle-Orbit-42",
            "email": "new-vendor@example.com",
            "shop_name": "New Vendor Store",
        },
        "anonymous",
    ),
    ("post", "/api/storefront/shop"): Example({"name": "Ash's Corner Shop", "currency": "INR"}, "trainer"),
    ("patch", "/api/storefront/shop"): Example({"contact_phone": "+91 98765 43210"}, "vendor"),
    ("post", "/api/storefront/products"): Example(
        {"name": "Masala Chai 250 g", "mrp": "180.00", "price": "150.00", "stock": 25}, "vendor"
    ),
    ("patch", "/api/storefront/products/{product_id}"): Example(
        {"price": "140.00", "stock": 40}, "vendor", {"product_id": 1}
    ),
    ("post", "/api/storefront/orders/{order_id}/status"): Example(
        {"status": "confirmed"}, "vendor", {"order_id": 1}
    ),
    ("post", "/api/storefront/orders/{order_id}/payment"): Example(
        {"payment_status": "paid"}, "vendor", {"order_id": 1}
    ),
    ("post", "/api/storefront/stores/{slug}/orders"): Example(
        {
            "items": [{"product_id": 1, "quantity": 2}],
            "customer_name": "Asha",
            "phone": "+91 98765 43210",
            "address": "12 MG Road, Bengaluru",
        },
        "anonymous",
        {"slug": "demo-shop"},
    ),
    # --- rentals (the desk: staff) ---
    ("post", "/api/rentals/titles"): Example(
        {"title": "The Left Hand of Darkness", "author": "Ursula K. Le Guin", "kind": "fiction", "copies": 2}
    ),
    ("patch", "/api/rentals/titles/{title_id}"): Example(
        {"description": "A demo novel."}, path={"title_id": 1}
    ),
    ("post", "/api/rentals/titles/{title_id}/copies"): Example({"count": 1}, path={"title_id": 1}),
    ("patch", "/api/rentals/copies/{copy_id}"): Example({"state": "withdrawn"}, path={"copy_id": 1}),
    ("patch", "/api/rentals/price-plans/{kind}"): Example({"daily_rate": "1.50"}, path={"kind": "novel"}),
    ("post", "/api/rentals/customers"): Example(
        {"name": "Wanjiku Mwangi", "email": "wanjiku@example.com", "phone": "+254 700 000 001"}
    ),
    ("patch", "/api/rentals/customers/{customer_id}"): Example(
        {"phone": "+254 700 000 002"}, path={"customer_id": 1}
    ),
    ("post", "/api/rentals/customers/{customer_id}/payments"): Example(
        {"amount": "5.00", "note": "cash"}, path={"customer_id": 1}
    ),
    ("post", "/api/rentals/holds"): Example({"customer_id": 1, "title_id": 2}),
    ("post", "/api/rentals/rentals"): Example({"customer_id": 1, "title_id": 2}),
    ("post", "/api/rentals/rentals/{rental_id}/return"): Example({}, path={"rental_id": 7}),
    ("post", "/api/rentals/returns"): Example({"barcode": "DEMO-007-1"}),
    # --- trading (staff, or the trainer acting for tr0001) ---
    ("post", "/api/trading/trainers"): Example(
        {"id": "tr9001", "first_name": "Gary", "last_name": "Oak", "date_of_birth": "1996-02-27"}
    ),
    ("patch", "/api/trading/trainers/{trainer_id}"): Example(
        {"last_name": "Ketchum"}, path={"trainer_id": "tr0001"}
    ),
    ("post", "/api/trading/pokemon"): Example(
        {"id": "pk90001", "nickname": "Sparky", "species": "Pikachu", "level": 12, "owner": "tr0001"}
    ),
    ("patch", "/api/trading/pokemon/{pokemon_id}"): Example({"level": 30}, path={"pokemon_id": "pk00001"}),
    ("post", "/api/trading/exchange"): Example(
        {"trainer_a": "tr0003", "trainer_b": "tr0004", "a_gives": ["pk00004"], "b_gives": ["pk00003"]}
    ),
    ("post", "/api/trading/offers"): Example(
        {
            "proposer": "tr0001",
            "receiver": "tr0003",
            "give": ["pk00001"],
            "ask": ["pk00004"],
            "message": "Trade?",
            "expires_in_days": 7,
        },
        "trainer",
    ),
    ("post", "/api/trading/offers/{offer_id}/counter"): Example(
        {"give": ["pk00121"], "ask": ["pk00062"], "message": "How about this one?"},
        "trainer",
        {"offer_id": 2},
    ),
    # --- kvstore ---
    ("put", "/api/kv/keys/{key}"): Example(
        {"value": {"hello": "world"}, "ttl": 300}, "tenant", {"key": "greeting"}
    ),
    ("post", "/api/kv/batch"): Example(
        {"ops": [{"op": "set", "key": "config/a", "value": 1}, {"op": "delete", "key": "greeting"}]}, "tenant"
    ),
    ("post", "/api/kv/keys/{key}/incr"): Example({"by": 1}, "tenant", {"key": "visits"}),
    ("post", "/api/kv/txn"): Example(
        {
            "compare": [{"key": "config/mode", "target": "version", "op": "=", "value": 0}],
            "success": [{"op": "put", "key": "config/mode", "value": "on"}],
            "failure": [{"op": "get", "key": "config/mode"}],
        },
        "tenant",
    ),
    ("post", "/api/kv/tenants"): Example({"slug": "acme", "name": "Acme Ltd"}),
    ("post", "/api/kv/tenants/{slug}/keys"): Example({"name": "ci"}, path={"slug": "demo"}),
}
