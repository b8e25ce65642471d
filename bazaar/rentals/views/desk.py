"""The circulation desk (staff only), shaped like Koha's: find the patron first, keep their panel open for a whole
checkout session and scan copy after copy; check in from any desk screen (receipt with the charge line by line and
the hold the copy is put aside for); renew one or all loans, holds, payments with a receipt, the statement, patron
registration, block and unblock. Every write is one service call; a refusal re-shows the page with the service's
reason and status and writes nothing; success is post/redirect/get. Nothing here is cached."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bazaar.core.errors import DomainError, NotFound
from bazaar.core.forms import search_term
from bazaar.rentals import selectors, services
from bazaar.rentals.forms import (
    HoldForm,
    PatronForm,
    PaymentForm,
    RenewForm,
    RentForm,
    ReturnForm,
    ScanForm,
    StatusForm,
)
from bazaar.rentals.selectors import patrons
from bazaar.rentals.views.common import page, staff_only, user_of

#: The checkout session's lines (what was scanned for the patron whose panel is open) live in the clerk's session.
SESSION_KEY = "rentals.checkout"


def _due(rental: Any) -> str:
    due = timezone.localtime(rental.due_at)
    return f"{due:%a} {due.day} {due:%b %Y}"


# --- the desk's front page: find a patron, check in, quick rent, what is out -----------------------------------


def _desk(
    request: HttpRequest, *, rent_form: Form | None = None, return_form: Form | None = None, status: int = 200
) -> HttpResponse:
    context = {
        "rent_form": rent_form or RentForm(),
        "return_form": return_form or ReturnForm(),
        "open_rentals": selectors.desk_open_rentals(),
        "now": timezone.now(),
    }
    return page(request, "rentals/desk.html", context, status)


@require_GET
@staff_only
def desk(request: HttpRequest) -> HttpResponse:
    """The lending desk: find a patron, check a copy in, a quick rent, what is out (overdue first)."""
    return _desk(request)


@require_POST
@staff_only
def desk_rent(request: HttpRequest) -> HttpResponse:
    """A quick rent by customer number or e-mail and barcode (the patron panel is the full checkout)."""
    form = RentForm(request.POST)
    if not form.is_valid():
        return _desk(request, rent_form=form, status=422)
    try:
        customer = selectors.customer_by_ref(form.cleaned_data["customer"])
        rental = services.rental_rent(
            customer_id=customer.pk, barcode=form.cleaned_data["barcode"], by=user_of(request)
        )
    except DomainError as exc:
        form.add_error(None, exc.message)
        return _desk(request, rent_form=form, status=exc.status)
    messages.success(
        request,
        f"Rented “{rental.title.title}” (copy {rental.copy.barcode}) to {customer.name} (no. {customer.pk}), "
        f"due {timezone.localtime(rental.due_at):%Y-%m-%d %H:%M}.",
    )
    return redirect("rentals:desk")


@require_POST
@staff_only
def desk_return(request: HttpRequest) -> HttpResponse:
    """Check in by barcode from any desk screen (``rental_checkin``), then the receipt. A refusal re-shows the
    desk with the reason and the service's status; nothing is written."""
    form = ReturnForm(request.POST)
    if not form.is_valid():
        return _desk(request, return_form=form, status=422)
    try:
        rental, hold = services.rental_checkin(barcode=form.cleaned_data["barcode"], by=user_of(request))
    except DomainError as exc:
        form.add_error(None, exc.message)
        return _desk(request, return_form=form, status=exc.status)
    breakdown = rental.breakdown or {}
    days, fine = breakdown.get("days"), breakdown.get("fine")
    messages.success(
        request,
        f"Returned “{rental.title.title}” (copy {rental.copy.barcode}) from {rental.customer.name}: "
        f"charge {rental.charge}"
        + (f" for {days} day{'s' if days != 1 else ''}" if days else "")
        + (f", including a {fine} overdue fine" if fine and fine != "0.00" else "")
        + "."
        + (f" Put it aside for {patrons.patron_label(hold.customer)} (hold waiting)." if hold else ""),
    )
    return redirect("rentals:desk_receipt", rental_id=rental.pk)


@require_GET
@staff_only
def desk_receipt(request: HttpRequest, rental_id: int) -> HttpResponse:
    """A return's printable receipt: the charge line by line and the hold the copy is put aside for."""
    try:
        context = patrons.rental_receipt(rental_id=rental_id)
    except NotFound:
        raise Http404("No such rental.")
    return page(request, "rentals/desk_receipt.html", {**context, "return_form": ReturnForm()})


# --- finding and registering patrons ---------------------------------------------------------------------------


@require_GET
@staff_only
def patron_find(request: HttpRequest) -> HttpResponse:
    """Look a patron up by name, e-mail, phone or card number; one card number match opens the panel."""
    q = search_term(request.GET.get("q")).strip()[:200]
    found = patrons.patron_search(q=q, limit=50) if q else []
    if len(found) == 1 and q.lstrip("#").isdigit():
        return redirect("rentals:desk_patron", customer_id=found[0].pk)
    return page(request, "rentals/desk_find.html", {"q": q, "found": found, "return_form": ReturnForm()})


@require_GET
@staff_only
def patron_suggest(request: HttpRequest) -> JsonResponse:
    """Suggestions as the clerk types (the lookup field's script): card number, name, e-mail, phone."""
    q = search_term(request.GET.get("q")).strip()[:200]
    found = patrons.patron_search(q=q) if len(q) >= 2 else []
    response = JsonResponse(
        {
            "items": [
                {
                    "id": c.pk,
                    "label": f"#{c.pk} {c.name}"
                    + (f" · {c.email}" if c.email else "")
                    + (f" · {c.phone}" if c.phone else ""),
                    "url": reverse("rentals:desk_patron", kwargs={"customer_id": c.pk}),
                }
                for c in found
            ]
        }
    )
    response["Cache-Control"] = "private, no-store"
    return response


@require_http_methods(["GET", "POST"])
@staff_only
def patron_new(request: HttpRequest) -> HttpResponse:
    """Register a patron (``customer_create``), then open their panel."""
    form = PatronForm(request.POST or None)
    if request.method == "POST":
        if not form.is_valid():
            return page(request, "rentals/desk_patron_form.html", {"form": form, "new": True}, 422)
        try:
            customer = services.customer_create(**form.cleaned_data)
        except DomainError as exc:
            form.add_error(None, exc.message)
            return page(request, "rentals/desk_patron_form.html", {"form": form, "new": True}, exc.status)
        messages.success(request, f"Registered {customer.name}: card number {customer.pk}.")
        return redirect("rentals:desk_patron", customer_id=customer.pk)
    return page(request, "rentals/desk_patron_form.html", {"form": form, "new": True})


@require_http_methods(["GET", "POST"])
@staff_only
def patron_edit(request: HttpRequest, customer_id: int) -> HttpResponse:
    """Change a patron's name, e-mail and phone (``customer_update``)."""
    try:
        customer = selectors.customer_get(customer_id=customer_id)
    except NotFound:
        raise Http404("No such patron.")
    initial = {"name": customer.name, "email": customer.email, "phone": customer.phone}
    form = PatronForm(request.POST or None, initial=initial)
    context = {"form": form, "new": False, "customer": customer}
    if request.method == "POST":
        if not form.is_valid():
            return page(request, "rentals/desk_patron_form.html", context, 422)
        try:
            services.customer_update(customer_id=customer_id, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(None, exc.message)
            return page(request, "rentals/desk_patron_form.html", context, exc.status)
        messages.success(request, "Patron details saved.")
        return redirect("rentals:desk_patron", customer_id=customer_id)
    return page(request, "rentals/desk_patron_form.html", context)


# --- the patron panel: a checkout session -----------------------------------------------------------------------


def _lines(request: HttpRequest, customer_id: int) -> list[dict[str, Any]]:
    session = request.session.get(SESSION_KEY) or {}
    return list(session.get("lines", [])) if session.get("customer") == customer_id else []


def _add_line(request: HttpRequest, customer_id: int, ok: bool, text: str) -> None:
    lines = _lines(request, customer_id)
    lines.append({"ok": ok, "text": text})
    request.session[SESSION_KEY] = {"customer": customer_id, "lines": lines[-50:]}


def _panel(request: HttpRequest, customer_id: int, status: int = 200, **forms: Form) -> HttpResponse:
    try:
        panel = patrons.patron_panel(customer_id=customer_id)
    except NotFound:
        raise Http404("No such patron.")
    context = {
        "panel": panel,
        "c": panel.customer,
        "lines": _lines(request, customer_id),
        "scan_form": forms.get("scan_form") or ScanForm(),
        "payment_form": forms.get("payment_form") or PaymentForm(),
        "hold_form": forms.get("hold_form") or HoldForm(),
        "renew_form": forms.get("renew_form"),
        "return_form": ReturnForm(),
    }
    return page(request, "rentals/desk_patron.html", context, status)


@require_GET
@staff_only
def patron(request: HttpRequest, customer_id: int) -> HttpResponse:
    """The patron's panel: loans and due dates, holds, balance, blocks; the scan field for their checkout."""
    return _panel(request, customer_id)


def _panel_post(
    request: HttpRequest, customer_id: int, form: Form, slot: str, act: Callable[[dict[str, Any]], str]
) -> HttpResponse:
    """One form of the panel: shape errors re-show it with 422; a refusal re-shows it with the service's reason
    and status (nothing written); success flashes ``act``'s message and comes back to the panel."""
    if not form.is_valid():
        return _panel(request, customer_id, 422, **{slot: form})
    try:
        message = act(form.cleaned_data)
    except DomainError as exc:
        form.add_error(None, exc.message)
        return _panel(request, customer_id, exc.status, **{slot: form})
    messages.success(request, message)
    return redirect("rentals:desk_patron", customer_id=customer_id)


def _wants_json(request: HttpRequest) -> bool:
    """desk.js posts a scan with ``Accept: application/json`` and appends the answer's line without a reload; a
    plain form POST (no script) gets the page."""
    return "application/json" in request.headers.get("Accept", "")


def _scan_answer(
    request: HttpRequest, customer_id: int, status: int, line: dict[str, Any] | None, **extra: Any
) -> JsonResponse:
    response = JsonResponse({"ok": status == 200, "line": line, **extra}, status=status)
    response["Cache-Control"] = "private, no-store"
    return response


def _loans_html(request: HttpRequest, customer_id: int) -> str:
    """The panel's loans table as it is now (the scan's JSON answer carries it, so the table stays true)."""
    now = timezone.now()
    loans = patrons.patron_loans(customer_id=customer_id, now=now)
    context = {
        "loans": loans,
        "overdue": sum(1 for r in loans if r.due_at < now),
        "now": now,
        "c": {"pk": customer_id},
    }
    return render_to_string("rentals/_desk_loans.html", context, request=request)


def _blocks_html(customer_id: int) -> str:
    """The panel's blocks in words as they are now (a scan can bring the patron to the loan limit)."""
    customer = selectors.customer_get(customer_id=customer_id)
    blocks = patrons.patron_blocks(customer, selectors.customer_standing(customer_id=customer_id))
    return render_to_string("rentals/_desk_blocks.html", {"blocks": blocks})


@require_POST
@staff_only
def checkout(request: HttpRequest, customer_id: int) -> HttpResponse:
    """One scan: lend the copy to the patron (``rental_rent``) and add a line to the session, or a line with the
    refusal in words (the page answers the service's status then; nothing is written). Asked for JSON (desk.js),
    the answer is the line, the service's status and code, and the loans table; nothing else changes."""
    as_json = _wants_json(request)
    form = ScanForm(request.POST)
    if not form.is_valid():
        if as_json:
            message = " ".join(str(e) for errors in form.errors.values() for e in errors)
            return _scan_answer(request, customer_id, 422, None, code="invalid_barcode", message=message)
        return _panel(request, customer_id, 422, scan_form=form)
    barcode = form.cleaned_data["barcode"].strip()
    try:
        rental = services.rental_rent(customer_id=customer_id, barcode=barcode, by=user_of(request))
    except DomainError as exc:
        if exc.code == "customer_not_found":
            if as_json:
                return _scan_answer(request, customer_id, 404, None, code=exc.code, message="No such patron.")
            raise Http404("No such patron.")
        text = (
            f"{barcode}: {exc.message}"
            if isinstance(exc, NotFound)
            else f"{barcode}: not lent. {exc.message}"
        )
        _add_line(request, customer_id, False, text)
        if as_json:
            line = {"ok": False, "text": text}
            return _scan_answer(request, customer_id, exc.status, line, code=exc.code, message=exc.message)
        return _panel(request, customer_id, exc.status)
    text = f"{rental.title.title} ({barcode}), due {_due(rental)}"
    _add_line(request, customer_id, True, text)
    if as_json:
        loans, blocks = _loans_html(request, customer_id), _blocks_html(customer_id)
        line = {"ok": True, "text": text}
        return _scan_answer(
            request, customer_id, 200, line, rental=rental.pk, loans_html=loans, blocks_html=blocks
        )
    return redirect("rentals:desk_patron", customer_id=customer_id)


@require_POST
@staff_only
def checkout_done(request: HttpRequest, customer_id: int) -> HttpResponse:
    """End the checkout session: the lines are forgotten, the desk is ready for the next patron."""
    request.session.pop(SESSION_KEY, None)
    return redirect("rentals:desk")


@require_POST
@staff_only
def renew(request: HttpRequest, customer_id: int) -> HttpResponse:
    """Renew one loan (``rental_renew``) or all of them (``rental_renew_all``: each refusal listed with why)."""
    form = RenewForm(request.POST)
    if not form.is_valid():
        return _panel(request, customer_id, 422, renew_form=form)
    if form.cleaned_data["all"]:
        try:
            results = services.rental_renew_all(customer_id=customer_id)
        except NotFound:
            raise Http404("No such patron.")
        for rental, refusal in results:
            if refusal is None:
                messages.success(request, f"Renewed “{rental.title.title}”: due {_due(rental)}.")
            else:
                messages.error(request, f"Not renewed “{rental.title.title}”: {refusal.message}")
        if not results:
            messages.info(request, "No loans to renew.")
        return redirect("rentals:desk_patron", customer_id=customer_id)

    def one(data: dict[str, Any]) -> str:
        rental = services.rental_renew(rental_id=data["rental"], customer_id=customer_id)
        return f"Renewed loan {rental.pk}: due {_due(rental)}."

    return _panel_post(request, customer_id, form, "renew_form", one)


@require_POST
@staff_only
def patron_status(request: HttpRequest, customer_id: int) -> HttpResponse:
    """Block (no new loans; returns still work) or unblock a patron (``customer_update``)."""
    form = StatusForm(request.POST)
    if not form.is_valid():
        return _panel(request, customer_id, 422)
    try:
        customer = services.customer_update(customer_id=customer_id, status=form.cleaned_data["status"])
    except NotFound:
        raise Http404("No such patron.")
    messages.success(
        request, f"{customer.name} is {'blocked' if customer.status == 'blocked' else 'active'}."
    )
    return redirect("rentals:desk_patron", customer_id=customer_id)


@require_POST
@staff_only
def hold_new(request: HttpRequest, customer_id: int) -> HttpResponse:
    """Put the patron on a title's waiting list (``hold_place``)."""

    def place(data: dict[str, Any]) -> str:
        hold = services.hold_place(customer_id=customer_id, title_id=data["title"])
        return f"Hold placed on title {hold.title_id}."

    return _panel_post(request, customer_id, HoldForm(request.POST), "hold_form", place)


@require_POST
@staff_only
def hold_cancel(request: HttpRequest, customer_id: int, hold_id: int) -> HttpResponse:
    """Cancel one of the patron's holds (``hold_cancel``; another patron's hold is 404)."""
    try:
        services.hold_cancel(hold_id=hold_id, customer_id=customer_id)
    except NotFound:
        raise Http404("No such hold.")
    messages.success(request, "Hold cancelled.")
    return redirect("rentals:desk_patron", customer_id=customer_id)


@require_POST
@staff_only
def payment_new(request: HttpRequest, customer_id: int) -> HttpResponse:
    """Take a payment, whole or partial (``payment_record``), then its receipt."""
    form = PaymentForm(request.POST)
    if not form.is_valid():
        return _panel(request, customer_id, 422, payment_form=form)
    try:
        payment = services.payment_record(customer_id=customer_id, by=user_of(request), **form.cleaned_data)
    except NotFound:
        raise Http404("No such patron.")
    except DomainError as exc:
        form.add_error(None, exc.message)
        return _panel(request, customer_id, exc.status, payment_form=form)
    messages.success(request, f"Received {payment.amount} ({payment.get_method_display()}).")
    return redirect("rentals:desk_payment", payment_id=payment.pk)


@require_GET
@staff_only
def payment_receipt(request: HttpRequest, payment_id: int) -> HttpResponse:
    try:
        context = patrons.payment_receipt(payment_id=payment_id)
    except NotFound:
        raise Http404("No such payment.")
    return page(request, "rentals/desk_payment.html", {**context, "return_form": ReturnForm()})


@require_GET
@staff_only
def statement(request: HttpRequest, customer_id: int) -> HttpResponse:
    """The patron's statement: loans out (charge so far), past loans with their charges, payments, balance."""
    try:
        context = selectors.customer_statement(customer_id=customer_id)
    except NotFound:
        raise Http404("No such patron.")
    return page(request, "rentals/desk_statement.html", {**context, "return_form": ReturnForm()})
