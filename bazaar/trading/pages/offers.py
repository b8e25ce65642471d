"""Trade offers in the browser (inbox, outbox, propose, accept, decline, cancel, counter) and the staff exchange.

Every action calls the service the API calls and ends on a page that says what happened: success redirects to
the offer with a message; a refusal re-renders with the service's words and status (404 for an offer that is not
the visitor's, 403 for the wrong side, 409 when it is no longer open or possible), nothing written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bazaar.core.errors import DomainError, NotFound
from bazaar.trading import page_selectors as reads
from bazaar.trading import services
from bazaar.trading.forms import ExchangeForm, OfferForm
from bazaar.trading.models import OfferState, TradeOffer, Trainer
from bazaar.trading.pages.common import page, page_number, problems_in_words, signed_in, staff_only
from bazaar.trading.services.common import may_act_for

STATE_WORDS = {
    OfferState.ACCEPTED: "accepted: the pokemon changed hands",
    OfferState.DECLINED: "declined",
    OfferState.CANCELLED: "cancelled by the proposer",
    OfferState.EXPIRED: "expired unanswered",
    OfferState.INVALID: "no longer possible",
}


@require_GET
@signed_in
def offer_list(request: HttpRequest) -> HttpResponse:
    box = request.GET.get("box", "inbox")
    box = box if box in reads.BOXES else "inbox"
    state = request.GET.get("state", "")
    state = state if state in OfferState.values else ""
    found = reads.offer_box(viewer=request.user, box=box, state=state, page=page_number(request))
    query = f"box={box}" + (f"&state={state}" if state else "")
    context = {
        **found,
        "box": box,
        "boxes": reads.BOXES,
        "state": state,
        "states": OfferState.choices,
        "query": query,
    }
    return page(request, "trading/offers.html", context)


def _offer_page(request: HttpRequest, offer_id: int, *, error: str = "", status: int = 200) -> HttpResponse:
    try:
        view = reads.offer_view(offer_id, request.user)
    except NotFound:
        raise Http404("No such offer.")
    me = reads.trainer_of(request.user)
    offer = view.offer
    is_open = offer.state == OfferState.OPEN
    context = {
        "view": view,
        "offer": offer,
        "me": me,
        "error": error,
        "outcome": STATE_WORDS.get(OfferState(offer.state), ""),
        "can_answer": is_open and may_act_for(request.user, offer.receiver),
        "can_cancel": is_open and may_act_for(request.user, offer.proposer),
        "counters": list(offer.counters.order_by("id").values_list("id", flat=True)),
    }
    return page(request, "trading/offer.html", context, status=status)


@require_GET
@signed_in
def offer_detail(request: HttpRequest, offer_id: int) -> HttpResponse:
    return _offer_page(request, offer_id)


def _act(request: HttpRequest, offer_id: int, act: Callable[[], TradeOffer], done: str) -> HttpResponse:
    """Run one offer action; success: back to the offer with ``done``; refusal: the offer page says why."""
    try:
        act()
    except NotFound:
        raise Http404("No such offer.")
    except DomainError as exc:
        return _offer_page(request, offer_id, error=exc.message, status=exc.status)
    messages.success(request, done)
    return redirect("trading:offer", offer_id=offer_id)


def _action(service: Callable[..., TradeOffer], done: str) -> Callable[..., HttpResponse]:
    """A POST-only offer action (accept, decline, cancel): the service decides who may, ``done`` says it worked."""

    @require_POST
    @signed_in
    def view(request: HttpRequest, offer_id: int) -> HttpResponse:
        return _act(request, offer_id, lambda: service(offer_id=offer_id, actor=request.user), done)

    return view


offer_accept = _action(services.offer_accept, "Offer accepted: the pokemon have changed hands.")
offer_decline = _action(services.offer_decline, "Offer declined. Nothing changed hands.")
offer_cancel = _action(services.offer_cancel, "Offer cancelled. Nothing changed hands.")


def _offer_form_page(
    request: HttpRequest,
    *,
    me: Trainer,
    them: Trainer,
    submit: Callable[[dict[str, Any]], TradeOffer],
    answering: TradeOffer | None = None,
) -> HttpResponse:
    """The propose / counter form: GET shows it, POST calls ``submit``; shape errors 422, refusals with the
    service's status and words, success redirects to the new offer."""
    form = OfferForm(
        request.POST if request.method == "POST" else None,
        mine=reads.trade_choices(me),
        theirs=reads.trade_choices(them),
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                offer = submit(form.cleaned_data)
            except DomainError as exc:
                form.add_error(None, exc.message)
                for sentence in problems_in_words(exc.details):
                    form.add_error(None, sentence)
                status = exc.status
            else:
                messages.success(request, f"Offer {offer.pk} sent to {them.first_name} ({them.public_id}).")
                return redirect("trading:offer", offer_id=offer.pk)
        else:
            status = 422
    context = {"form": form, "me": me, "them": them, "answering": answering}
    return page(request, "trading/offer_form.html", context, status=status)


@require_http_methods(["GET", "POST"])
@signed_in
def offer_new(request: HttpRequest, trainer_id: str) -> HttpResponse:
    """Propose a trade to the trainer of this profile (from the signed-in user's own trainer)."""
    try:
        them = reads.trainer_page_get(trainer_id)
    except NotFound:
        raise Http404("No such trainer.")
    me = reads.trainer_of(request.user)
    if me is None or me.pk == them.pk:
        reason = (
            "Your account is not linked to a trainer." if me is None else "You cannot trade with yourself."
        )
        return page(request, "trading/offer_form.html", {"them": them, "me": me, "refusal": reason})

    def submit(data: dict[str, Any]) -> TradeOffer:
        return services.offer_propose(
            proposer=me.public_id,
            receiver=them.public_id,
            give=data["give"],
            ask=data["ask"],
            message=data["message"],
            expires_in_days=data["expires_in_days"],
            actor=request.user,
        )

    return _offer_form_page(request, me=me, them=them, submit=submit)


@require_http_methods(["GET", "POST"])
@signed_in
def offer_counter(request: HttpRequest, offer_id: int) -> HttpResponse:
    """Answer an open offer with a counter-offer (the receiver, or staff for them)."""
    try:
        view = reads.offer_view(offer_id, request.user)
    except NotFound:
        raise Http404("No such offer.")
    original = view.offer
    me, them = original.receiver, original.proposer
    if not may_act_for(request.user, me):
        return _offer_page(
            request, offer_id, error="Only the receiving trainer may counter an offer.", status=403
        )
    if original.state != OfferState.OPEN:
        return _offer_page(
            request, offer_id, error=f"This offer is {original.state}; it cannot be countered.", status=409
        )

    def submit(data: dict[str, Any]) -> TradeOffer:
        return services.offer_counter(
            offer_id=offer_id,
            give=data["give"],
            ask=data["ask"],
            message=data["message"],
            expires_in_days=data["expires_in_days"],
            actor=request.user,
        )

    return _offer_form_page(request, me=me, them=them, submit=submit, answering=original)


@require_http_methods(["GET", "POST"])
@staff_only
def exchange(request: HttpRequest) -> HttpResponse:
    """Staff: swap pokemon between two trainers at once (the API's exchange, with its checks and 409 reasons)."""
    form = ExchangeForm(request.POST if request.method == "POST" else None)
    status = 200
    problems: list[str] = []
    if request.method == "POST":
        if not form.is_valid():
            status = 422
        else:
            data = form.cleaned_data
            try:
                done = services.exchange(
                    trainer_a=data["trainer_a"],
                    trainer_b=data["trainer_b"],
                    a_gives=data["a_gives"],
                    b_gives=data["b_gives"],
                    actor=request.user,
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
                problems = problems_in_words(exc.details)
                status = exc.status
            else:
                messages.success(
                    request,
                    f"Exchanged: {done.trainer_a} gave {', '.join(done.a_gave) or 'nothing'}; "
                    f"{done.trainer_b} gave {', '.join(done.b_gave) or 'nothing'}.",
                )
                return redirect("trading:exchange")
    return page(request, "trading/exchange.html", {"form": form, "problems": problems}, status=status)
