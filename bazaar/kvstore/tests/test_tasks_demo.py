"""The periodic purge is scheduled and runs the service; the demo is idempotent and prints a working key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from bazaar.kvstore import demo, services, tasks
from bazaar.kvstore.models import Entry, Tenant, TenantApiKey, TenantMember

pytestmark = pytest.mark.django_db(transaction=True)


def test_purge_is_on_the_beat_schedule() -> None:
    from bazaar.config.celery import app

    entry = app.conf.beat_schedule["kvstore-purge-expired"]
    assert entry["task"] == tasks.purge_expired.name
    assert entry["schedule"] == 60.0


def test_purge_task_deletes_dead_rows() -> None:
    tenant = services.tenant_create(slug="acme")
    services.entry_set(tenant_id=tenant.pk, key="a", value=1)
    services.entry_set(tenant_id=tenant.pk, key="b", value=1)
    services.entry_delete(tenant_id=tenant.pk, key="b")
    Entry.objects.filter(key="a").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert tasks.purge_expired.apply().get() == 2  # runs in-process whatever the broker
    assert not Entry.objects.exists()


def test_demo_is_idempotent_and_its_key_works() -> None:
    lines = demo.load()
    assert any(demo.demo_api_key() in line for line in lines)
    counts = (
        Tenant.objects.count(),
        TenantApiKey.objects.count(),
        Entry.objects.count(),
        TenantMember.objects.count(),
    )
    assert counts[3] == 2
    again = demo.load()
    assert (
        Tenant.objects.count(),
        TenantApiKey.objects.count(),
        Entry.objects.count(),
        TenantMember.objects.count(),
    ) == counts
    assert again == lines
    r = Client().get("/api/kv/keys/greeting", HTTP_AUTHORIZATION=f"Bearer {demo.demo_api_key()}")
    assert r.status_code == 200
    assert r.json()["value"] == "hello from Bazaar KV"
    # The tenant member login opens the console on the demo tenant, as its admin, without being staff.
    member = Client()
    assert member.login(username=demo.MEMBER[0], password=demo.MEMBER[1])
    page = member.get("/kv/t/demo/members/")
    assert page.status_code == 200
    assert "you: admin" in page.content.decode()
    assert not TenantMember.objects.filter(user__is_staff=True).exists()
    editor = Client()
    assert editor.login(username=demo.EDITOR[0], password=demo.EDITOR[1])
    refused = editor.get("/kv/t/demo/members/")
    assert refused.status_code == 403
    assert "Your role in this tenant is editor" in refused.content.decode()
    assert any(demo.MEMBER[1] in line and demo.EDITOR[1] in line for line in lines)
