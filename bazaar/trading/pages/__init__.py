"""The trading pages for people (a trainer's pokemon and offers, staff exchange and the import wizard).

Thin: each view checks the shape of what was sent and calls one service or selector; refusals are shown in words
with the service's status, nothing written. Never cached: signed-in pages send ``Cache-Control: private,
no-store``. The public trainer list stays in ``bazaar.trading.views`` (cached)."""
