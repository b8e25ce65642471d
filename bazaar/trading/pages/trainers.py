"""A trainer's pages: my pokemon (search, sort, paging), a trainer's profile, a pokemon with its history."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from bazaar.core.errors import NotFound
from bazaar.trading import page_selectors as reads
from bazaar.trading.forms import PokemonSearchForm
from bazaar.trading.models import Trainer
from bazaar.trading.pages.common import page, page_number, signed_in


def _browse(request: HttpRequest, trainer: Trainer) -> dict[str, object]:
    """The search form (bound to the query string) and the page of pokemon it selects."""
    form = PokemonSearchForm(request.GET or None)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    found = reads.pokemon_browse(
        owner=trainer,
        q=data.get("q") or "",
        level_min=data.get("level_min"),
        level_max=data.get("level_max"),
        sort=data.get("sort") or "id",
        page=page_number(request),
    )
    query = request.GET.copy()
    query.pop("page", None)
    return {"form": form, "found": found, "query": query.urlencode()}


@require_GET
@signed_in
def my_pokemon(request: HttpRequest) -> HttpResponse:
    """The signed-in trainer's pokemon; an account linked to no trainer is told so."""
    trainer = reads.trainer_of(request.user)
    context: dict[str, object] = {"trainer": trainer}
    if trainer is not None:
        context.update(_browse(request, trainer))
    return page(request, "trading/my_pokemon.html", context)


@require_GET
def trainer_profile(request: HttpRequest, trainer_id: str) -> HttpResponse:
    """Anyone may look at a trainer and their pokemon (as the public API shows them); a signed-in trainer gets a
    button to propose a trade."""
    try:
        trainer = reads.trainer_page_get(trainer_id)
    except NotFound:
        raise Http404("No such trainer.")
    me = reads.trainer_of(request.user)
    context = {"trainer": trainer, "me": me, **_browse(request, trainer)}
    return page(request, "trading/trainer.html", context, public=True)


@require_GET
def pokemon_detail(request: HttpRequest, pokemon_id: str) -> HttpResponse:
    """A pokemon and every change of its owner: from whom, to whom, when, and through what (exchange, offer,
    import, staff edit), as the public history API."""
    try:
        pokemon, history = reads.pokemon_page_get(pokemon_id)
    except NotFound:
        raise Http404("No such pokemon.")
    me = reads.trainer_of(request.user)
    offers = reads.visible_offer_ids(request.user, [h.offer_id for h in history if h.offer_id])
    context = {"pokemon": pokemon, "history": list(reversed(history)), "me": me, "my_offers": offers}
    return page(request, "trading/pokemon.html", context, public=True)
