"""Invalidation follows the data: every committed write to a model that a cached surface depends on invalidates
that surface, whoever the writer is.

Surfaces declare their models once (``bazaar.core.surfaces.declare(depends_on=...)``); this module turns each
declaration into hooks that no writer can skip:

* **ORM writes** — ``save()`` and ``delete()`` from services, page forms, the admin (add, change, inlines,
  delete, the bulk delete action), management commands and tasks — through ``post_save``/``post_delete``
  receivers connected here, for the declared models only. When a scope is keyed by a field that a save may
  change (a shop's slug, a product's shop), ``pre_save`` reads the stored row first, so the old key's pages are
  dropped too.
* **Queryset writes** that send no signals — ``update()``, ``bulk_create()``, ``bulk_update()`` — through
  :class:`FreshQuerySet`, which every declared model's default manager must use (``tests/test_freshness.py``
  fails otherwise).
* **Raw SQL** (the hot paths in ``core.sql`` style, the COPY import) calls :func:`changed` with the rows it
  wrote; the writer matrix test runs each of them.

Invalidation is Bazaar's only use of model signals: it is infrastructure, not business logic (rule 3), and a
signal is the one hook that the admin, forms and commands cannot forget. Everything runs after commit
(``cache.invalidate`` uses ``on_commit``), so a rolled-back write invalidates nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.db.models.signals import post_delete, post_save, pre_save

from bazaar.core import cache
from bazaar.core.cache import Scope

log = logging.getLogger("bazaar.cache")

M = TypeVar("M", bound=models.Model)
ScopesOf = Callable[[Any], Iterable[Scope]]


@dataclass(frozen=True)
class Dependency:
    """``scopes(instance)`` names what a row feeds; ``moves`` lists the fields that change which scopes those are
    (their old values are read before an ORM save); ``each_row`` is False when the scopes do not depend on the
    row at all (a coarse scope such as "every trainer read"), so bulk writes need not read rows."""

    scopes: ScopesOf
    moves: tuple[str, ...] = ()
    each_row: bool = True


def on(scopes: ScopesOf, *, moves: Sequence[str] = ()) -> Dependency:
    """A dependency whose scopes are computed from each written row."""
    return Dependency(scopes, tuple(moves), True)


def always(*scopes: Scope) -> Dependency:
    """A dependency on fixed scopes: any write to the model drops them."""
    fixed = tuple(scopes)
    return Dependency(lambda _obj: fixed, (), False)


#: model -> its dependencies (several surfaces may depend on one model)
_deps: dict[type[models.Model], list[Dependency]] = {}
#: model -> (callable, fields) run with each written row, for state that is not a scope (e.g. a revoked API
#: key's validity flag in the cache); ``fields`` None = any write, else only writes that may touch one of them
_effects: dict[type[models.Model], list[tuple[Callable[[Any], None], frozenset[str] | None]]] = {}
BULK_ROWS_READ = 10_000


def depend(model: type[models.Model], dep: Dependency) -> None:
    _deps.setdefault(model, []).append(dep)
    _connect(model)


def effect(
    model: type[models.Model], run: Callable[[Any], None], *, fields: Sequence[str] | None = None
) -> None:
    """Run ``run(row)`` for every write of ``model`` (save, delete, queryset writes, declared raw SQL) that may
    touch one of ``fields`` (None: every write). A save without ``update_fields`` and a delete touch every field."""
    _effects.setdefault(model, []).append((run, frozenset(fields) if fields is not None else None))
    _connect(model)


def watched() -> list[type[models.Model]]:
    """Every model a cached surface or an effect depends on."""
    return sorted({*_deps, *_effects}, key=lambda m: m._meta.label)


def dependencies(model: type[models.Model]) -> list[Dependency]:
    return list(_deps.get(model, ()))


def scopes_of(model: type[models.Model], rows: Iterable[Any] | None) -> list[Scope]:
    """The scopes fed by ``rows`` of ``model`` (None: rows unknown, only row-independent dependencies)."""
    out: dict[Scope, None] = {}
    for dep in _deps.get(model, ()):
        if not dep.each_row:
            out.update(dict.fromkeys(dep.scopes(None)))
            continue
        if rows is None:
            raise ValueError(f"{model._meta.label}: its cached surfaces depend on each row; pass the rows")
        for row in rows:
            try:
                out.update(dict.fromkeys(dep.scopes(row)))
            except ObjectDoesNotExist:
                continue  # a parent deleted in the same cascade: its own delete invalidates what it fed
    return list(out)


def changed(
    model: type[models.Model], rows: Iterable[Any] | None = None, *, fields: Iterable[str] | None = None
) -> None:
    """``rows`` of ``model`` were written (or will be, in the current transaction): invalidate what they feed,
    after commit. ``fields`` names the columns written when known (None: any). For raw SQL writers; ORM writes
    are seen by the hooks below."""
    rows = list(rows) if rows is not None else None
    written = frozenset(fields) if fields is not None else None
    cache.invalidate(*scopes_of(model, rows))
    for run, wanted in _effects.get(model, ()):
        if wanted is not None and written is not None and not (wanted & written):
            continue
        for row in rows or ():
            run(row)


# --- hooks --------------------------------------------------------------------------------------------------

_connected: set[type[models.Model]] = set()
_OLD = "_bazaar_fresh_old"


def _moves(model: type[models.Model]) -> tuple[str, ...]:
    return tuple(f for dep in _deps.get(model, ()) for f in dep.moves)


def _pre_save(sender: type[models.Model], instance: models.Model, raw: bool = False, **_: Any) -> None:
    if raw or instance.pk is None or not _moves(sender):
        return
    old = sender._base_manager.filter(pk=instance.pk).first()
    if old is not None:
        setattr(instance, _OLD, old)


def _post_save(
    sender: type[models.Model],
    instance: models.Model,
    raw: bool = False,
    update_fields: Iterable[str] | None = None,
    **_: Any,
) -> None:
    rows = [instance]
    old = instance.__dict__.pop(_OLD, None)
    if old is not None:
        rows.append(old)
    changed(sender, rows, fields=update_fields)


def _post_delete(sender: type[models.Model], instance: models.Model, **_: Any) -> None:
    changed(sender, [instance])


def _connect(model: type[models.Model]) -> None:
    if model in _connected:
        return
    _connected.add(model)
    uid = f"bazaar-freshness-{model._meta.label}"
    pre_save.connect(_pre_save, sender=model, dispatch_uid=uid, weak=False)
    post_save.connect(_post_save, sender=model, dispatch_uid=uid, weak=False)
    post_delete.connect(_post_delete, sender=model, dispatch_uid=uid, weak=False)


class FreshQuerySet(models.QuerySet[M]):
    """The default queryset of every model a cached surface depends on: its signal-less bulk writes invalidate
    too. Rows are read before (and, for fields that move scopes, after) the write only when a dependency needs
    them; beyond ``BULK_ROWS_READ`` rows the whole cache epoch is bumped instead of reading them all."""

    def _rows(self) -> list[Any] | None:
        if not any(dep.each_row for dep in _deps.get(self.model, ())) and not _effects.get(self.model):
            return []  # row-independent scopes only: nothing to read
        rows = list(self.model._base_manager.filter(pk__in=self.values("pk"))[: BULK_ROWS_READ + 1])
        return None if len(rows) > BULK_ROWS_READ else rows

    def _changed(self, rows: list[Any] | None, fields: Iterable[str] | None = None) -> None:
        if rows is None:
            cache.invalidate_all()
        else:
            changed(self.model, rows, fields=fields)

    def update(self, **kwargs: Any) -> int:
        if self.model not in _connected:
            return super().update(**kwargs)
        before = self._rows()
        pks = [r.pk for r in before] if before else []
        count = super().update(**kwargs)
        if before is not None and pks and _moves(self.model):
            before += list(self.model._base_manager.filter(pk__in=pks))
        self._changed(before, fields=kwargs)
        return count

    def bulk_create(self, objs: Iterable[M], *args: Any, **kwargs: Any) -> list[M]:
        created = super().bulk_create(objs, *args, **kwargs)
        if self.model in _connected:
            self._changed(created if len(created) <= BULK_ROWS_READ else None)
        return created

    def bulk_update(self, objs: Iterable[M], fields: Iterable[str], batch_size: int | None = None) -> int:
        objs = list(objs)
        if self.model not in _connected:
            return super().bulk_update(objs, fields, batch_size=batch_size)
        before = (
            list(self.model._base_manager.filter(pk__in=[o.pk for o in objs])) if _moves(self.model) else []
        )
        fields = list(fields)
        count = super().bulk_update(objs, fields, batch_size=batch_size)
        self._changed([*objs, *before] if len(objs) <= BULK_ROWS_READ else None, fields=fields)
        return count
