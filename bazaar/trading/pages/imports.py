"""The import wizard for staff: upload → preview (nothing written) → confirm → progress → results.

The preview and the confirm are the services the API's import is built on (``import_csv``); a file over the limit
gets a page that says so (413), a preview that went stale a 409 page offering a fresh preview."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bazaar.core.errors import DomainError, NotFound, PayloadTooLarge
from bazaar.trading import conf, services
from bazaar.trading import page_selectors as reads
from bazaar.trading.forms import ImportUploadForm
from bazaar.trading.models import ImportJob, ImportPreview
from bazaar.trading.pages.common import page, page_number, staff_only


def _limits() -> dict[str, int]:
    return {"max_bytes": conf.import_max_bytes(), "async_bytes": conf.import_async_bytes()}


def too_large(request: HttpRequest, *, size: int, limit: int) -> HttpResponse:
    return page(
        request, "too_large.html", {"size": size, "limit": limit, "back": "/trading/import/"}, status=413
    )


@require_http_methods(["GET", "POST"])
@staff_only
def upload(request: HttpRequest) -> HttpResponse:
    """Step 1: choose a trainers or pokemon CSV; it is checked and previewed, nothing is written."""
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if not form.is_valid():
            status = 422
        else:
            try:
                preview = services.import_preview_create(
                    upload=form.cleaned_data["file"],
                    kind=form.cleaned_data["kind"] or None,
                    actor=request.user,
                )
            except PayloadTooLarge as exc:
                details = exc.details if isinstance(exc.details, dict) else {}
                return too_large(
                    request, size=int(details.get("size", 0)), limit=int(details.get("limit", 0))
                )
            except DomainError as exc:
                form.add_error("file", exc.message)
                status = exc.status
            else:
                return redirect("trading:import_preview", preview_id=preview.pk)
    recent = reads.recent_previews()
    return page(
        request, "trading/import_upload.html", {"form": form, "recent": recent, **_limits()}, status=status
    )


def _preview_page(
    request: HttpRequest, preview_id: int, *, error: str = "", status: int = 200
) -> HttpResponse:
    try:
        preview = reads.preview_get(preview_id)
    except NotFound:
        raise Http404("No such preview.")
    show = request.GET.get("show", "all")
    show = show if show in reads.PREVIEW_FILTERS else "all"
    context: dict[str, Any] = {
        "preview": preview,
        "error": error,
        "show": show,
        "query": f"show={show}",
        "filters": reads.PREVIEW_FILTERS,
        "rows": reads.preview_rows(preview, show=show, page=page_number(request)),
        "background": preview.size > conf.import_async_bytes(),
        **_limits(),
    }
    return page(request, "trading/import_preview.html", context, status=status)


@require_GET
@staff_only
def preview(request: HttpRequest, preview_id: int) -> HttpResponse:
    """Step 2: what the import would do, row by row; Confirm or start over."""
    return _preview_page(request, preview_id)


def _preview_action(request: HttpRequest, preview_id: int, act: Callable[[], Any]) -> Any:
    """Run a preview action; a refusal re-renders the preview with the service's words and status."""
    try:
        return act()
    except NotFound:
        raise Http404("No such preview.")
    except DomainError as exc:
        return _preview_page(request, preview_id, error=exc.message, status=exc.status)


@require_POST
@staff_only
def confirm(request: HttpRequest, preview_id: int) -> HttpResponse:
    """Step 3: import exactly what was previewed (409 with a fresh-preview button if the data changed since)."""
    done = _preview_action(
        request,
        preview_id,
        lambda: services.import_preview_confirm(preview_id=preview_id, actor=request.user),
    )
    if isinstance(done, HttpResponse):
        return done
    return redirect("trading:import_job", job_id=done.pk)


@require_POST
@staff_only
def again(request: HttpRequest, preview_id: int) -> HttpResponse:
    """A fresh preview of the same file (after the data changed)."""
    fresh = _preview_action(
        request, preview_id, lambda: services.import_preview_again(preview_id=preview_id, actor=request.user)
    )
    if isinstance(fresh, HttpResponse):
        return fresh
    messages.success(request, "A fresh preview of the same file, against the data as it is now.")
    return redirect("trading:import_preview", preview_id=fresh.pk)


def _job(job_id: int) -> tuple[ImportJob, ImportPreview | None]:
    try:
        return reads.import_job_for_page(job_id)
    except NotFound:
        raise Http404("No such import job.")


@require_GET
@staff_only
def job(request: HttpRequest, job_id: int) -> HttpResponse:
    """Step 4: the live progress of a background import (it survives a reload), then its results."""
    found, preview = _job(job_id)
    progress = reads.import_job_progress(found, preview)
    errors = found.errors or {}
    details = errors.get("details") if isinstance(errors.get("details"), dict) else {}
    context = {
        "job": found,
        "preview": preview,
        "progress": progress,
        "errors": errors,
        "row_errors": (details or {}).get("errors", []),
        "result": found.result or {},
    }
    return page(request, "trading/import_job.html", context)


@require_GET
@staff_only
def job_progress(request: HttpRequest, job_id: int) -> HttpResponse:
    """The progress bar's JSON (polled by the job page)."""
    found, preview = _job(job_id)
    response = JsonResponse(reads.import_job_progress(found, preview))
    response["Cache-Control"] = "private, no-store"
    return response
