"""Invariant checks over the trading data (used by tests, the CLI and the benchmarks)."""

from __future__ import annotations

from typing import Any

from django.db import connection


def invariants() -> dict[str, Any]:
    """Count violations: pokemon without an owner (impossible by schema, checked anyway), pokemon whose latest
    history row does not name their current owner, history rows that do not chain (from != previous to)."""
    with connection.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM trading_pokemon")
        pokemon = int(cur.fetchone()[0])
        cur.execute("SELECT COUNT(*) FROM trading_pokemon WHERE owner_id IS NULL")
        no_owner = int(cur.fetchone()[0])
        cur.execute(
            "SELECT COUNT(*) FROM trading_pokemon p JOIN trading_ownershipchange h ON h.id = "
            "(SELECT MAX(id) FROM trading_ownershipchange x WHERE x.pokemon_id = p.id) "
            "WHERE h.to_trainer_id IS DISTINCT FROM p.owner_id"
            if connection.vendor == "postgresql"
            else "SELECT COUNT(*) FROM trading_pokemon p JOIN trading_ownershipchange h ON h.id = "
            "(SELECT MAX(id) FROM trading_ownershipchange x WHERE x.pokemon_id = p.id) "
            "WHERE h.to_trainer_id IS NOT p.owner_id"
        )
        history_mismatch = int(cur.fetchone()[0])
        cur.execute(
            "SELECT COUNT(*) FROM (SELECT from_trainer_id, LAG(to_trainer_id) OVER (PARTITION BY pokemon_id "
            "ORDER BY id) AS prev, ROW_NUMBER() OVER (PARTITION BY pokemon_id ORDER BY id) AS n "
            "FROM trading_ownershipchange) q WHERE n > 1 AND (from_trainer_id <> prev OR from_trainer_id IS NULL)"
        )
        broken_chain = int(cur.fetchone()[0])
        cur.execute(
            "SELECT COUNT(*) FROM trading_ownershipchange h "
            "WHERE NOT EXISTS (SELECT 1 FROM trading_pokemon p WHERE p.id = h.pokemon_id) "
            "OR (h.from_trainer_id IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM trading_trainer t WHERE t.id = h.from_trainer_id)) "
            "OR (h.to_trainer_id IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM trading_trainer t WHERE t.id = h.to_trainer_id)) "
            "OR (h.offer_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM trading_tradeoffer o WHERE o.id = h.offer_id))"
        )
        dangling = int(cur.fetchone()[0])
    return {
        "pokemon": pokemon,
        "no_owner": no_owner,
        "history_mismatch": history_mismatch,
        "broken_chain": broken_chain,
        "dangling_history": dangling,
        "violations": no_owner + history_mismatch + broken_chain + dangling,
    }
