"""Demo data for kvstore (idempotent): called by `bazaar demo`.

The demo tenant's API key is derived from SECRET_KEY, so every run prints the same working key without storing
the secret anywhere; a second run creates nothing new. A tenant member login (an admin of the demo tenant who is
not staff) opens the console as a tenant's own people see it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from django.conf import settings

from bazaar.accounts.models import User
from bazaar.kvstore import services
from bazaar.kvstore.cache import API_KEY_PREFIX, digest_of
from bazaar.kvstore.models import Entry, Role, Tenant, TenantApiKey, TenantMember

DEMO_TENANT = "demo"
#: The demo tenant's people in the console (not staff): its admin (keys, API keys, members) and an editor (keys).
MEMBER = ("tenant", "kv-tenant-2026")
EDITOR = ("tenant-editor", "kv-editor-2026")
DEMO_ENTRIES: dict[str, object] = {
    "greeting": "hello from Bazaar KV",
    "config/feature-flags": {"new_checkout": True, "dark_mode": False},
    "config/limits": {"max_items": 50, "rate_per_minute": 600},
    "counter": 0,
}


def demo_api_key() -> str:
    mac = hmac.new(settings.SECRET_KEY.encode(), b"bazaar-kvstore-demo-key", hashlib.sha256).digest()
    return API_KEY_PREFIX + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def load() -> list[str]:
    """Create the demo tenant, its API key and a few entries if missing; return lines to print."""
    tenant = Tenant.objects.filter(slug=DEMO_TENANT).first() or services.tenant_create(
        slug=DEMO_TENANT, name="Demo tenant"
    )
    secret = demo_api_key()
    key = TenantApiKey.objects.filter(digest=digest_of(secret)).first()
    if key is None:
        key = services.apikey_create(tenant_id=tenant.pk, name="demo", secret=secret).key
    existing = set(
        Entry.objects.filter(tenant=tenant, key__in=list(DEMO_ENTRIES)).values_list("key", flat=True)
    )
    for name, value in DEMO_ENTRIES.items():
        if name not in existing:
            services.entry_set(tenant_id=tenant.pk, key=name, value=value)
    _member(tenant, MEMBER, Role.ADMIN)
    _member(tenant, EDITOR, Role.EDITOR)
    lines = ["", "Key-value store (tenant 'demo'):"]
    if key.revoked_at is not None:
        lines.append(
            "  the demo API key was revoked; create another with: bazaar kvadmin keys create --tenant demo"
        )
        secret = "kv_..."
    else:
        lines.append(f"  API key        {secret}")
    lines += [
        f'  get a key      curl -H "Authorization: Bearer {secret}" http://127.0.0.1:8000/api/kv/keys/greeting',
        f'  set a key      curl -X PUT -H "Authorization: Bearer {secret}" -H "Content-Type: application/json" '
        '-d \'{"value": {"hello": "world"}, "ttl": 300}\' http://127.0.0.1:8000/api/kv/keys/my/first-key',
        f'  list keys      curl -H "Authorization: Bearer {secret}" "http://127.0.0.1:8000/api/kv/keys?prefix=config/"',
        f"  CLI            BAZAAR_KV_KEY={secret} bazaar kv get greeting   (bazaar kv --help; staff: bazaar kvadmin)",
        f"  console        http://127.0.0.1:8000/kv/   tenant admin {MEMBER[0]} / {MEMBER[1]}, editor "
        f"{EDITOR[0]} / {EDITOR[1]} (staff: the admin)",
    ]
    return lines


def _member(tenant: Tenant, login: tuple[str, str], role: Role) -> None:
    """A demo tenant member: a user who is not staff, made a member through the service (acting as staff)."""
    user = User.objects.filter(username=login[0]).first()
    if user is None:
        user = User(username=login[0], email=f"{login[0]}@example.com")
        user.set_password(login[1])
        user.save()
    if not TenantMember.objects.filter(tenant=tenant, user=user).exists():
        staff = User(username="demo-setup", is_staff=True)  # unsaved: the actor of a setup step, never stored
        services.member_add(tenant_id=tenant.pk, who=user.username, role=role, actor=staff)
