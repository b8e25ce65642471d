"""A large upload answers 202 and a real Celery worker (real broker) runs the import job."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from bazaar.trading import services
from bazaar.trading.models import OwnershipChange, Pokemon


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_upload_runs_on_real_worker(
    celery_worker_process: Any, client: Any, make_user: Any, token_for: Any, settings: Any, tmp_path: Any
) -> None:
    settings.TRADING_IMPORT_ASYNC_BYTES = 100
    settings.TRADING_IMPORT_DIR = str(tmp_path)
    tok = token_for(make_user("oak", is_staff=True))
    services.trainer_create(
        public_id="w1", first_name="W", last_name="One", date_of_birth=dt.date(2000, 1, 1)
    )
    rows = b"".join(b"wp%d,n%d,Eevee,%d,w1,01-01-2024\n" % (i, i, 1 + i % 100) for i in range(2000))
    csv = b"id,nickname,species,level,owner,dateOfOwnership\n" + rows
    r = client.post(
        "/api/trading/import/pokemon",
        {"file": SimpleUploadedFile("p.csv", csv)},
        HTTP_AUTHORIZATION=f"Bearer {tok}",
    )
    assert r.status_code == 202, r.content
    url = r.json()["url"]
    deadline = time.monotonic() + 60
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(url, HTTP_AUTHORIZATION=f"Bearer {tok}").json()
        if body["state"] in ("succeeded", "failed"):
            break
        time.sleep(0.3)
    assert body["state"] == "succeeded", body
    assert (body["rows_validated"], body["rows_written"], body["result"]["created"]) == (2000, 2000, 2000)
    assert Pokemon.objects.count() == 2000
    assert OwnershipChange.objects.filter(cause="import").count() == 2000
