"""Product photos: thumbnails made once at upload, served by the media route, shown on every page that lists
products or order lines and in the vendor's e-mail (with absolute links); bad files refused with nothing written."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from bazaar.accounts.models import User
from bazaar.storefront import services
from bazaar.storefront.models import Product
from bazaar.storefront.tests.conftest import place_order

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    settings.SITE_URL = "https://shop.example"
    return tmp_path


def photo(width: int = 1000, height: int = 600, fmt: str = "PNG") -> SimpleUploadedFile:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buf, format=fmt)
    return SimpleUploadedFile(f"p.{fmt.lower()}", buf.getvalue(), f"image/{fmt.lower()}")


@pytest.fixture
def vendor(make_user: Any) -> User:
    user: User = make_user("vani")
    services.shop_create(owner=user, name="Vani Crafts", slug="vani", contact_email="vani@example.com")
    return user


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_upload_makes_two_thumbnails_once_with_their_size(vendor: User, media: Path) -> None:
    p = services.product_create(owner=vendor, name="Bowl", mrp="100", price="90", stock=3, image=photo())
    p.refresh_from_db()
    assert (p.thumb_width, p.thumb_height) == (480, 288)
    with Image.open(media / p.thumb_small) as small, Image.open(media / p.thumb) as large:
        assert (small.size, small.format) == ((240, 144), "JPEG")
        assert (large.size, large.format) == ((480, 288), "JPEG")
    assert len(_files(media)) == 3  # the original and two thumbnails
    # A small original is never upscaled.
    q = services.product_create(
        owner=vendor, name="Cup", mrp="10", price="10", stock=1, image=photo(200, 100)
    )
    assert (q.thumb_width, q.thumb_height) == (200, 100)


def test_the_store_page_shows_the_thumbnail_sized_and_lazy(vendor: User, client: Client) -> None:
    p = services.product_create(owner=vendor, name="Bowl", mrp="100", price="90", stock=3, image=photo())
    body = client.get("/s/vani/").content.decode()
    small, large = f"/media/{p.thumb_small}", f"/media/{p.thumb}"
    assert f'src="{small}" srcset="{small} 240w, {large} 480w"' in body
    assert 'width="240" height="144" loading="lazy"' in body
    assert 'alt="Bowl"' in body


def test_the_media_route_serves_images_with_cache_headers(vendor: User, client: Client, media: Path) -> None:
    p = services.product_create(owner=vendor, name="Bowl", mrp="100", price="90", stock=3, image=photo())
    r = client.get(f"/media/{p.thumb}")
    assert r.status_code == 200
    assert r["Content-Type"] == "image/jpeg"
    assert r["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "sandbox" in r["Content-Security-Policy"]
    with Image.open(io.BytesIO(b"".join(r.streaming_content))) as img:  # type: ignore[attr-defined]
        assert img.size == (480, 288)
    original = client.get(f"/media/{p.image.name}")
    assert (original.status_code, original["Cache-Control"]) == (200, "public, max-age=86400")


@pytest.mark.parametrize(
    "path",
    [
        "/media/../settings.py",
        "/media/%2e%2e/secret.png",
        "/media/storefront/../../secret.png",
        "/media//etc/hosts.png",
        "/media/page.html",
        "/media/script.svg",
        "/media/missing.png",
        "/media/storefront/",
    ],
)
def test_the_media_route_refuses_what_is_not_a_stored_image(client: Client, media: Path, path: str) -> None:
    (media / "page.html").write_text("<script>alert(1)</script>")
    (media / "script.svg").write_text("<svg onload='alert(1)'/>")
    (media.parent / "secret.png").write_bytes(b"\x89PNG secret")
    r = client.get(path)
    assert r.status_code == 404
    assert b"secret" not in r.content
    assert b"alert" not in r.content


def test_a_file_that_only_claims_to_be_an_image_is_refused_and_nothing_is_written(
    vendor: User, client: Client, media: Path
) -> None:
    client.force_login(vendor)
    fake = SimpleUploadedFile("x.png", b"\x89PNG\r\n\x1a\n not really", "image/png")
    r = client.post(
        "/storefront/products/new/",
        {"name": "Fake", "mrp": "10", "price": "10", "stock": "1", "image": fake},
    )
    assert r.status_code == 400  # the form again, with the reason at the field
    assert b"errorlist" in r.content
    assert not Product.objects.exists()
    assert _files(media) == []


def test_the_form_states_the_limit(vendor: User, client: Client, settings: Any) -> None:
    settings.IMAGE_UPLOAD_MAX_BYTES = 3 * 1024 * 1024
    client.force_login(vendor)
    body = client.get("/storefront/products/new/").content.decode()
    assert "at most 3.0\xa0MB" in body
    assert 'accept="image/jpeg,image/png,image/webp,image/gif"' in body


def test_product_list_order_pages_and_email_show_the_photo(
    vendor: User, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    p = services.product_create(owner=vendor, name="Bowl", mrp="100", price="90", stock=3, image=photo())
    with django_capture_on_commit_callbacks(execute=True):
        placed = place_order("vani", p.pk)
    small = f"/media/{p.thumb_small}"
    public = client.get(f"/s/vani/orders/{placed.order.number}/").content.decode()
    assert f'src="{small}"' in public
    client.force_login(vendor)
    assert f'src="{small}"' in client.get("/storefront/products/").content.decode()
    assert f'src="{small}"' in client.get(f"/storefront/orders/{placed.order.pk}/").content.decode()
    (message,) = mail.outbox
    assert f"Manage it at https://shop.example/storefront/orders/{placed.order.pk}/" in message.body
    assert f"https://shop.example/s/vani/orders/{placed.order.number}/" in message.body
    html = message.alternatives[0][0]  # type: ignore[attr-defined]
    assert f'src="https://shop.example{small}"' in str(html)
    assert "/storefront/orders/" not in str(html).replace("https://shop.example/storefront/orders/", "")


def _admin_form(p: Product, **changes: Any) -> dict[str, Any]:
    data = {
        "shop": p.shop_id,
        "name": p.name,
        "description": p.description,
        "category": p.category,
        "mrp": str(p.mrp),
        "price": str(p.price),
        "stock": str(p.stock),
        "is_available": "on",
        "is_listed": "on",
    }
    return data | changes


@pytest.fixture
def staff(client: Client, make_user: Any) -> Client:
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def test_a_photo_uploaded_in_the_admin_gets_the_same_thumbnails(
    vendor: User, staff: Client, media: Path, django_capture_on_commit_callbacks: Any
) -> None:
    p = services.product_create(owner=vendor, name="Bowl", mrp="100", price="90", stock=3)
    assert "srcset" not in staff.get("/s/vani/").content.decode()  # cached: the admin's save must drop it
    with django_capture_on_commit_callbacks(execute=True):
        r = staff.post(f"/admin/storefront/product/{p.pk}/change/", _admin_form(p, image=photo(1000, 500)))
    assert r.status_code == 302, r.content.decode()[:2000]
    p.refresh_from_db()
    assert (p.thumb_width, p.thumb_height) == (480, 240)
    with Image.open(media / p.thumb_small) as small:
        assert (small.size, small.format) == ((240, 120), "JPEG")
    assert len(_files(media)) == 3
    body = staff.get("/s/vani/").content.decode()  # the store page was dropped by the admin's save
    assert f'srcset="/media/{p.thumb_small} 240w, /media/{p.thumb} 480w"' in body
    # "Clear" forgets the thumbnails too: the store shows the placeholder, not a broken image.
    with django_capture_on_commit_callbacks(execute=True):
        r = staff.post(f"/admin/storefront/product/{p.pk}/change/", _admin_form(p, **{"image-clear": "on"}))
    assert r.status_code == 302
    p.refresh_from_db()
    assert (p.image.name, p.thumb_small, p.thumb, p.thumb_width) == ("", "", "", 0)
    assert "srcset" not in staff.get("/s/vani/").content.decode()


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("x.png", b"\x89PNG\r\n\x1a\n not really", "image/png"), "Upload a valid image"),
        (photo(fmt="BMP"), "The image must be PNG, JPEG, WebP or GIF."),
        ("big", "the largest accepted is 1.0\xa0KB"),
    ],
)
def test_a_bad_photo_in_the_admin_is_refused_and_nothing_is_written(
    vendor: User, staff: Client, media: Path, settings: Any, upload: Any, message: str
) -> None:
    settings.IMAGE_UPLOAD_MAX_BYTES = 1024 if upload == "big" else 5 * 1024 * 1024
    if upload == "big":
        upload = photo(fmt="JPEG")
    p = services.product_create(owner=vendor, name="Bowl", mrp="100", price="90", stock=3)
    before = list(Product.objects.values())
    r = staff.post(f"/admin/storefront/product/{p.pk}/change/", _admin_form(p, image=upload, name="Renamed"))
    assert r.status_code == 200  # the form again
    assert message in r.content.decode()
    assert list(Product.objects.values()) == before
    assert _files(media) == []


def test_the_admin_takes_a_photo_up_to_the_image_limit_not_the_smaller_body_limit(
    vendor: User, staff: Client, media: Path, settings: Any
) -> None:
    """A phone photo is bigger than an ordinary request body: the admin's product page has the photo limit of the
    vendor's form (plus room for the fields), and above it a page in words with nothing written."""
    settings.MAX_REQUEST_BODY_BYTES = 100 * 1024
    settings.IMAGE_UPLOAD_MAX_BYTES = 400 * 1024
    p = services.product_create(owner=vendor, name="Bowl", mrp="100", price="90", stock=3)
    noisy = Image.frombytes(
        "RGB", (400, 400), bytes(range(256)) * 1875
    )  # ~480 KB of PNG that barely compresses
    buf = io.BytesIO()
    noisy.resize((300, 300)).save(buf, format="PNG", compress_level=0)
    assert 100 * 1024 < len(buf.getvalue()) < 400 * 1024
    upload = SimpleUploadedFile("big.png", buf.getvalue(), "image/png")
    r = staff.post(f"/admin/storefront/product/{p.pk}/change/", _admin_form(p, image=upload))
    assert r.status_code == 302, r.content.decode()[:500]
    p.refresh_from_db()
    assert p.thumb_width == 300
    settings.IMAGE_UPLOAD_MAX_BYTES = 50 * 1024
    before = list(Product.objects.values())
    files = _files(media)
    upload = SimpleUploadedFile("big.png", buf.getvalue(), "image/png")
    r = staff.post(f"/admin/storefront/product/{p.pk}/change/", _admin_form(p, image=upload, name="Renamed"))
    assert r.status_code == 413
    assert "the largest file accepted here is 50.0\xa0KB" in r.content.decode()
    assert list(Product.objects.values()) == before
    assert _files(media) == files


def test_the_email_photo_is_absolute_when_media_live_on_another_host(
    vendor: User, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIA_URL = "https://cdn.example/m/"
    p = services.product_create(owner=vendor, name="Bowl", mrp="100", price="90", stock=3, image=photo())
    with django_capture_on_commit_callbacks(execute=True):
        place_order("vani", p.pk)
    (message,) = mail.outbox
    html = str(message.alternatives[0][0])  # type: ignore[union-attr]
    assert f'src="https://cdn.example/m/{p.thumb_small}"' in html
    assert "https://shop.examplehttps" not in html
