"""Demo accounts (idempotent): a staff user for the admin and the rentals desk."""

from __future__ import annotations

from bazaar.accounts.models import User

DEMO_ADMIN = ("admin", "bazaar-admin-2026")


def load() -> list[str]:
    username, password = DEMO_ADMIN
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(username=username, email="admin@bazaar.local", is_staff=True, is_superuser=True)
        user.set_password(password)
        user.save()
    return [f"Admin / staff login: {username} / {password}   -> http://127.0.0.1:8000/admin/"]
