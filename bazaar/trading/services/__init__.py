"""Trading writes. Each service owns its transaction; see the submodules for the rules they enforce."""

from bazaar.trading.services.crud import (
    pokemon_create,
    pokemon_delete,
    pokemon_update,
    trainer_create,
    trainer_delete,
    trainer_update,
)
from bazaar.trading.services.import_preview import (
    import_preview_again,
    import_preview_confirm,
    import_preview_create,
)
from bazaar.trading.services.imports import ImportResult, import_csv
from bazaar.trading.services.jobs import (
    import_job_run,
    import_job_status,
    import_job_submit,
    import_jobs_reap,
)
from bazaar.trading.services.offers import offer_counter, offer_propose
from bazaar.trading.services.trades import (
    exchange,
    offer_accept,
    offer_cancel,
    offer_create,
    offer_decline,
    offers_expire,
)

__all__ = [
    "ImportResult",
    "exchange",
    "import_csv",
    "import_job_run",
    "import_job_status",
    "import_job_submit",
    "import_jobs_reap",
    "import_preview_again",
    "import_preview_confirm",
    "import_preview_create",
    "offer_accept",
    "offer_cancel",
    "offer_counter",
    "offer_create",
    "offer_decline",
    "offer_propose",
    "offers_expire",
    "pokemon_create",
    "pokemon_delete",
    "pokemon_update",
    "trainer_create",
    "trainer_delete",
    "trainer_update",
]
