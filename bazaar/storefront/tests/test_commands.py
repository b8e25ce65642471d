"""Demo data (idempotent), the CSV export command and the benchmark-shop command."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from bazaar.storefront import demo
from bazaar.storefront.models import Order, OrderItem, Product, Shop

pytestmark = pytest.mark.django_db


def test_demo_is_idempotent_and_fills_the_chart() -> None:
    lines = demo.load()
    assert any("demo / spice-market-2026" in line for line in lines)
    assert any("/s/demo-shop/" in line for line in lines)
    counts = (Shop.objects.count(), Product.objects.count(), Order.objects.count(), OrderItem.objects.count())
    assert counts[:3] == (1, 50, 60)
    assert demo.load() == lines
    assert (
        Shop.objects.count(),
        Product.objects.count(),
        Order.objects.count(),
        OrderItem.objects.count(),
    ) == counts
    from bazaar.storefront.selectors import dashboard_summary

    summary = dashboard_summary(Shop.objects.get(slug="demo-shop"))
    assert summary.orders_total > 30
    assert sum(1 for d in summary.days if d.orders) > 15


def test_export_command_writes_csv(tmp_path: Path) -> None:
    demo.load()
    out = tmp_path / "orders.csv"
    err = StringIO()
    call_command("storefront_export", "demo-shop", "-o", str(out), stderr=err)
    rows = out.read_text().splitlines()
    assert rows[0].startswith("number,created_at,status")
    assert len(rows) == 61
    assert "exported 60 orders of demo-shop" in err.getvalue()


def test_export_unknown_shop_fails(db: Any) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("storefront_export", "nope-shop", "-o", "/dev/null")


def test_bench_shop_resets(db: Any) -> None:
    from bench.setup import run

    ids = json.loads(run(["storefront-shop", "--race-stock", "7"]))
    assert Product.objects.get(pk=ids["race"]).stock == 7
    Product.objects.filter(pk=ids["race"]).update(stock=0)
    run(["storefront-shop"])
    assert Product.objects.get(pk=ids["race"]).stock == 100
    assert Product.objects.filter(shop__slug="bench-shop").count() == 2


def test_bench_photos_go_through_the_upload_path_and_onto_the_store_page(
    db: Any, settings: Any, tmp_path: Path, client: Any
) -> None:
    from bench.setup import run

    settings.MEDIA_ROOT = tmp_path
    demo.load()
    shop = Shop.objects.get(slug="demo-shop")
    listed = Product.objects.filter(shop=shop, is_archived=False).count()
    assert json.loads(run(["storefront-photos"])) == {"added": listed, "had_one": 0}
    for product in Product.objects.filter(shop=shop, is_archived=False):
        assert product.image  # stored, with both thumbnails
        assert (tmp_path / product.thumb).is_file()
        assert (tmp_path / product.thumb_small).is_file()
    page = client.get(f"/s/{shop.slug}/").content  # the store page was invalidated: it shows them
    first = Product.objects.filter(shop=shop).order_by("pk")[0]
    assert page.count(b"/media/" + first.thumb.encode()) == 1
    assert json.loads(run(["storefront-photos"])) == {"added": 0, "had_one": listed}  # idempotent
