"""Demo data for storefront (idempotent): called by `bazaar demo`.

A vendor ``demo`` with the shop ``demo-shop`` (50 products) and ~60 past orders over the last 30 days, so the
dashboard chart has data. A second run creates nothing new.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from django.utils import timezone

from bazaar.accounts.models import User
from bazaar.storefront.models import Order, OrderItem, OrderStatus, PaymentStatus, Product, Shop

DEMO_VENDOR = ("demo", "spice-market-2026")
DEMO_SLUG = "demo-shop"
ITEMS = [
    "Basmati Rice",
    "Toor Dal",
    "Masoor Dal",
    "Chana Dal",
    "Moong Dal",
    "Turmeric Powder",
    "Red Chilli Powder",
    "Coriander Powder",
    "Cumin Seeds",
    "Mustard Seeds",
    "Garam Masala",
    "Tea Leaves",
    "Filter Coffee",
    "Jaggery",
    "Sugar",
    "Rock Salt",
    "Ghee",
    "Mustard Oil",
    "Groundnut Oil",
    "Coconut Oil",
    "Wheat Atta",
    "Besan",
    "Rava",
    "Poha",
    "Sabudana",
    "Cashews",
    "Almonds",
    "Raisins",
    "Pistachios",
    "Dates",
    "Honey",
    "Pickle (Mango)",
    "Pickle (Lime)",
    "Papad",
    "Namkeen Mix",
    "Biscuits",
    "Rusk",
    "Cardamom",
    "Cloves",
    "Cinnamon",
    "Black Pepper",
    "Bay Leaves",
    "Tamarind",
    "Kokum",
    "Hing",
    "Saffron",
    "Vermicelli",
    "Soya Chunks",
    "Peanut Butter",
    "Muesli",
]


#: The demo's categories, in ITEMS order: (how many items, category).
CATEGORIES = [
    (5, "Rice & dals"),
    (6, "Spices"),
    (2, "Tea & coffee"),
    (7, "Staples & oils"),
    (5, "Flours"),
    (5, "Dry fruits"),
    (7, "Snacks & spreads"),
    (9, "Spices"),
    (4, "Breakfast"),
]


def category_of(index: int) -> str:
    for count, name in CATEGORIES:
        if index < count:
            return name
        index -= count
    return ""


def load() -> list[str]:
    """Create the demo vendor, shop, products and past orders if missing; return what to print."""
    username, password = DEMO_VENDOR
    lines = [
        f"Storefront vendor login: {username} / {password}   -> http://127.0.0.1:8000/storefront/",
        f"Public demo store: http://127.0.0.1:8000/s/{DEMO_SLUG}/",
    ]
    if Shop.objects.filter(slug=DEMO_SLUG).exists():
        return lines
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(username=username, email="demo-vendor@bazaar.local")
        user.set_password(password)
        user.save()
    shop = Shop.objects.create(
        owner=user,
        name="Demo Kirana Store",
        slug=DEMO_SLUG,
        currency="INR",
        contact_email=user.email,
        contact_phone="+91 98765 43210",
    )
    rng = random.Random(2026)  # fixed seed: the same demo every time
    products = []
    for i, name in enumerate(ITEMS):
        mrp = Decimal(rng.randrange(40, 900)).quantize(Decimal("0.01"))
        price = (mrp * Decimal(rng.choice([100, 95, 90, 85, 80])) / 100).quantize(Decimal("0.01"))
        products.append(
            Product(
                shop=shop,
                name=name,
                description=f"{name}, 1 pack.",
                mrp=mrp,
                price=price,
                stock=rng.choice([0, 3, 5, 20, 40, 80, 150, 200, 400]) if i % 7 else 500,
                is_available=i % 13 != 5,
                category=category_of(i),
            )
        )
    Product.objects.bulk_create(products)
    products = list(Product.objects.filter(shop=shop).order_by("pk"))
    now = timezone.now()
    statuses = [OrderStatus.DELIVERED] * 5 + [
        OrderStatus.SHIPPED,
        OrderStatus.CONFIRMED,
        OrderStatus.PLACED,
        OrderStatus.CANCELLED,
    ]
    for n in range(60):
        created = now - dt.timedelta(
            days=rng.randrange(0, 30), hours=rng.randrange(0, 12), minutes=rng.randrange(60)
        )
        picked = rng.sample(products, rng.randrange(1, 4))
        items = [
            OrderItem(product=p, product_name=p.name, unit_price=p.price, quantity=q, line_total=p.price * q)
            for p, q in ((p, rng.randrange(1, 4)) for p in picked)
        ]
        status = rng.choice(statuses)
        order = Order.objects.create(
            shop=shop,
            number=f"BZ-DEMO{n:05d}",
            customer_name=rng.choice(["Asha", "Ravi", "Meera", "Kabir", "Zoya"]),
            phone="+91 90000 0" + f"{n:04d}",
            address=f"{n + 1} MG Road, Bengaluru",
            status=status,
            payment_status=PaymentStatus.PAID if status == OrderStatus.DELIVERED else PaymentStatus.PENDING,
            total=sum((i.line_total for i in items), Decimal("0.00")),
            currency=shop.currency,
            created_at=created,
        )
        for item in items:
            item.order = order
        OrderItem.objects.bulk_create(items)
    return lines
