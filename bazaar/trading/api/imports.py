"""CSV import: small files answer inline (200 with counts, or 422 with row errors), large ones run as a job (202)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import File, Router, Status
from ninja.files import UploadedFile

from bazaar.accounts.auth import current_user, user_auth
from bazaar.core.codes import answers
from bazaar.core.errors import PayloadTooLarge
from bazaar.core.schemas import Int64
from bazaar.trading import conf, services
from bazaar.trading.api.catalog import ERRORS
from bazaar.trading.codes import Code
from bazaar.trading.models import ImportJob
from bazaar.trading.schemas import ImportOut, JobOut
from bazaar.trading.services.common import require_staff

router = Router()


def job_dict(job: ImportJob) -> dict[str, Any]:
    return {
        "id": job.pk,
        "url": f"/api/trading/import/jobs/{job.pk}",
        "kind": job.kind,
        "state": job.state,
        "dry_run": job.dry_run,
        "size": job.size,
        "rows_validated": job.rows_validated,
        "rows_written": job.rows_written,
        "result": job.result,
        "errors": job.errors,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }


def _import(request: HttpRequest, kind: str, file: UploadedFile, dry_run: bool) -> Any:
    user = current_user(request)
    require_staff(user)
    limit = conf.import_max_bytes()
    if (file.size or 0) > limit:
        raise PayloadTooLarge(
            f"The file is larger than the import limit of {limit} bytes.",
            code="import_too_large",
            details={"limit": limit, "size": file.size},
        )
    if (file.size or 0) > conf.import_async_bytes():
        job = services.import_job_submit(upload=file, kind=kind, dry_run=dry_run, user=user)
        job.refresh_from_db()
        return Status(202, job_dict(job))
    file.open("rb")
    return services.import_csv(source=file, kind=kind, dry_run=dry_run).as_dict()


RESPONSES: dict[int, Any] = {200: ImportOut, 202: JobOut, 413: ERRORS[400], **ERRORS}


@router.post("/import/trainers", response=RESPONSES, auth=user_auth, summary="Import trainers CSV (staff)")
@answers(
    {
        403: [Code.STAFF_REQUIRED],
        409: [Code.IMPORT_CONFLICT],  # another request created one of the file's ids meanwhile (RACE_ONLY)
        413: [Code.IMPORT_TOO_LARGE],
        422: [Code.EMPTY_FILE, Code.IMPORT_INVALID, Code.INVALID_ENCODING, Code.NOT_CSV, Code.WRONG_COLUMNS],
    }
)
def import_trainers(request: HttpRequest, file: File[UploadedFile], dry_run: bool = False) -> Any:
    """Columns ``id,firstName,lastName,dateOfBirth`` (any case/order; dates DD-MM-YYYY or YYYY-MM-DD). All or
    nothing: 422 ``import_invalid`` lists row errors. Large files answer 202 with a job URL."""
    return _import(request, "trainers", file, dry_run)


@router.post("/import/pokemon", response=RESPONSES, auth=user_auth, summary="Import pokemon CSV (staff)")
@answers(
    {
        403: [Code.STAFF_REQUIRED],
        409: [Code.IMPORT_CONFLICT],  # another request created one of the file's ids meanwhile (RACE_ONLY)
        413: [Code.IMPORT_TOO_LARGE],
        422: [Code.EMPTY_FILE, Code.IMPORT_INVALID, Code.INVALID_ENCODING, Code.NOT_CSV, Code.WRONG_COLUMNS],
    }
)
def import_pokemon(request: HttpRequest, file: File[UploadedFile], dry_run: bool = False) -> Any:
    """Columns ``id,nickname,species,level,owner,dateOfOwnership``; owners must be existing trainers."""
    return _import(request, "pokemon", file, dry_run)


@router.get("/import/jobs/{job_id}", response={200: JobOut, **ERRORS}, auth=user_auth)
@answers({403: [Code.STAFF_REQUIRED], 404: [Code.JOB_NOT_FOUND]})
def import_job(request: HttpRequest, job_id: Int64) -> dict[str, Any]:
    require_staff(current_user(request))
    return job_dict(services.import_job_status(job_id=job_id))
