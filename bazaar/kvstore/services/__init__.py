"""Kvstore writes (one function per use case; each owns its transaction)."""

from bazaar.kvstore.services.entries import (
    DeleteOp,
    SetOp,
    WriteResult,
    batch_apply,
    batch_ops,
    entries_purge_expired,
    entry_delete,
    entry_set,
    make_delete,
    make_set,
    revision_bump,
)
from bazaar.kvstore.services.history import changes_compact, tenant_set_retention
from bazaar.kvstore.services.imports import entries_import
from bazaar.kvstore.services.members import member_add, member_remove, member_set_role
from bazaar.kvstore.services.tenants import (
    IssuedKey,
    KeyPrincipal,
    apikey_authenticate,
    apikey_create,
    apikey_revoke,
    tenant_create,
)
from bazaar.kvstore.services.txn import TxnResult, entry_incr, txn_apply, txn_parse

__all__ = [
    "DeleteOp",
    "IssuedKey",
    "KeyPrincipal",
    "SetOp",
    "TxnResult",
    "WriteResult",
    "apikey_authenticate",
    "apikey_create",
    "apikey_revoke",
    "batch_apply",
    "batch_ops",
    "changes_compact",
    "entries_import",
    "entries_purge_expired",
    "entry_delete",
    "entry_incr",
    "entry_set",
    "make_delete",
    "make_set",
    "member_add",
    "member_remove",
    "member_set_role",
    "revision_bump",
    "tenant_create",
    "tenant_set_retention",
    "txn_apply",
    "txn_parse",
]
