"""Rentals writes: one function per use case, each owning its transaction (see the modules)."""

from bazaar.rentals.services.catalogue import (
    copies_add,
    copy_set_state,
    plan_terms,
    plan_update,
    title_create,
    title_update,
)
from bazaar.rentals.services.customers import (
    copy_pass_on,
    customer_create,
    customer_link_user,
    customer_set_history,
    customer_update,
    hold_cancel,
    hold_notice_send,
    hold_place,
    hold_put_aside,
    holds_expire,
    payment_record,
)
from bazaar.rentals.services.desk import (
    rental_checkin,
    rental_renew,
    rental_renew_all,
    rental_rent,
    rental_return,
    rental_return_copy,
)
from bazaar.rentals.services.exports import export_run, export_start, export_status, exports_reap
from bazaar.rentals.services.reminders import reminders_send

__all__ = [
    "copies_add",
    "copy_pass_on",
    "copy_set_state",
    "customer_create",
    "customer_link_user",
    "customer_set_history",
    "customer_update",
    "export_run",
    "export_start",
    "export_status",
    "exports_reap",
    "hold_cancel",
    "hold_notice_send",
    "hold_place",
    "hold_put_aside",
    "holds_expire",
    "payment_record",
    "plan_terms",
    "plan_update",
    "reminders_send",
    "rental_checkin",
    "rental_renew",
    "rental_renew_all",
    "rental_rent",
    "rental_return",
    "rental_return_copy",
    "title_create",
    "title_update",
]
