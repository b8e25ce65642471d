"""Password reset through Django's auth views: the mail goes through the worker task with an absolute link; the
link sets a new password once; an unknown address gets the same answer and no mail."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from bazaar.accounts.models import User

pytestmark = pytest.mark.django_db


def test_reset_by_mail_then_log_in_with_the_new_password(
    client: Client, make_user: Any, settings: Any
) -> None:
    settings.SITE_URL = "https://bazaar.example"
    make_user("nina")
    assert b'href="/accounts/password-reset/"' in client.get("/accounts/login/").content
    r = client.post("/accounts/password-reset/", {"email": "nina@example.com"})
    assert (r.status_code, r["Location"]) == (302, "/accounts/password-reset/sent/")
    (message,) = mail.outbox
    assert message.to == ["nina@example.com"]
    assert message.subject == "Reset your Bazaar password"
    link = re.search(r"https://bazaar\.example(/accounts/reset/\S+/)", str(message.body))
    assert link is not None
    r = client.get(link.group(1), follow=True)
    assert b'id="set-password"' in r.content
    form_url = r.redirect_chain[-1][0]
    new = "saffron-and-cardamom-91"
    r = client.post(form_url, {"new_password1": new, "new_password2": new})
    assert (r.status_code, r["Location"]) == (302, "/accounts/reset/done/")
    assert User.objects.get(username="nina").check_password(new)
    # The link works once.
    assert b'id="reset-invalid"' in client.get(link.group(1), follow=True).content


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client: Client, make_user: Any) -> None:
    make_user("nina")
    before = User.objects.get(username="nina").password
    r = client.post("/accounts/password-reset/", {"email": "nobody@example.com"})
    assert (r.status_code, r["Location"]) == (302, "/accounts/password-reset/sent/")
    assert mail.outbox == []
    assert User.objects.get(username="nina").password == before


def test_a_forged_link_is_refused_and_changes_nothing(client: Client, make_user: Any) -> None:
    user = make_user("nina")
    r = client.get("/accounts/reset/MQ/set-password/", follow=True)
    assert b'id="reset-invalid"' in r.content
    r = client.post("/accounts/reset/MQ/abc-123/", {"new_password1": "x" * 20, "new_password2": "x" * 20})
    assert b'id="reset-invalid"' in r.content
    user.refresh_from_db()
    assert user.check_password("correct-horse-battery")


def test_styled_error_pages(client: Client) -> None:
    from django.test import RequestFactory
    from django.views.defaults import server_error

    r = client.get("/no-such-page/")
    assert r.status_code == 404
    assert b'id="error-404"' in r.content
    assert b'class="skip"' in r.content
    r500 = server_error(RequestFactory().get("/"))
    assert r500.status_code == 500
    assert b'id="error-500"' in r500.content
