"""The patron's own account: a signed-in user whose user account is linked to a library card (``Customer.user``)
sees their loans and due dates (renew where allowed), holds (cancel), fines and payments, and their reading
history, which they can turn off. Only their own: every write names the patron's card, so another patron's loan
or hold is 404. Private pages, never cached."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from bazaar.core.errors import DomainError, NotFound
from bazaar.rentals import services
from bazaar.rentals.forms import HistoryForm
from bazaar.rentals.models import Customer
from bazaar.rentals.selectors import patrons
from bazaar.rentals.views.common import page, signed_in, user_of


def _card(request: HttpRequest) -> Customer:
    customer = patrons.customer_for_user(user=user_of(request))
    if customer is None:
        raise Http404("Your account has no library card.")
    return customer


@require_GET
@signed_in
def account(request: HttpRequest) -> HttpResponse:
    """The patron's loans, holds, balance and payments, and (if kept) reading history. A signed-in user without a
    library card is told how to get one."""
    customer = patrons.customer_for_user(user=user_of(request))
    if customer is None:
        return page(request, "rentals/account.html", {"panel": None})
    panel = patrons.patron_panel(customer_id=customer.pk, history=True)
    return page(request, "rentals/account.html", {"panel": panel, "c": panel.customer})


@require_POST
@signed_in
def account_renew(request: HttpRequest, rental_id: int) -> HttpResponse:
    """Renew one of my loans (``rental_renew`` with my card: someone else's loan is 404); a refusal is shown with
    the service's reason and status, nothing written."""
    customer = _card(request)
    try:
        rental = services.rental_renew(rental_id=rental_id, customer_id=customer.pk)
    except NotFound:
        raise Http404("No such loan.")
    except DomainError as exc:
        messages.error(request, f"Not renewed: {exc.message}")
        panel = patrons.patron_panel(customer_id=customer.pk, history=True)
        return page(request, "rentals/account.html", {"panel": panel, "c": customer}, exc.status)
    messages.success(request, f"Renewed: now due {timezone.localtime(rental.due_at):%Y-%m-%d}.")
    return redirect("rentals:account")


@require_POST
@signed_in
def account_hold_cancel(request: HttpRequest, hold_id: int) -> HttpResponse:
    """Cancel one of my holds (``hold_cancel`` with my card: someone else's hold is 404)."""
    customer = _card(request)
    try:
        services.hold_cancel(hold_id=hold_id, customer_id=customer.pk)
    except NotFound:
        raise Http404("No such hold.")
    messages.success(request, "Hold cancelled.")
    return redirect("rentals:account")


@require_POST
@signed_in
def account_history(request: HttpRequest) -> HttpResponse:
    """Turn my reading history on or off (``customer_set_history``)."""
    customer = _card(request)
    form = HistoryForm(request.POST)
    form.is_valid()  # one optional checkbox: absent means off
    keep = bool(form.cleaned_data.get("keep"))
    services.customer_set_history(customer_id=customer.pk, keep=keep)
    messages.success(request, "Reading history " + ("on." if keep else "off: past loans are hidden."))
    return redirect("rentals:account")
