"""Rentals pages: the public catalogue, the circulation desk (staff only) and the patron's own account."""

from django.urls import URLPattern, path

from bazaar.rentals.views import account, catalogue, desk

app_name = "rentals"

_P = "rentals/desk/patrons/<int:customer_id>/"

urlpatterns: list[URLPattern] = [
    path("rentals/", catalogue.catalogue, name="catalogue"),
    path("rentals/titles/<int:title_id>/", catalogue.title_detail, name="title"),
    path("rentals/titles/<int:title_id>/hold/", catalogue.hold_place, name="hold_place"),
    # the desk
    path("rentals/desk/", desk.desk, name="desk"),
    path("rentals/desk/rent/", desk.desk_rent, name="desk_rent"),
    path("rentals/desk/return/", desk.desk_return, name="desk_return"),
    path("rentals/desk/returns/<int:rental_id>/", desk.desk_receipt, name="desk_receipt"),
    path("rentals/desk/payments/<int:payment_id>/", desk.payment_receipt, name="desk_payment"),
    path("rentals/desk/patrons/", desk.patron_find, name="desk_patrons"),
    path("rentals/desk/patrons/suggest/", desk.patron_suggest, name="desk_patron_suggest"),
    path("rentals/desk/patrons/new/", desk.patron_new, name="desk_patron_new"),
    path(_P, desk.patron, name="desk_patron"),
    path(_P + "edit/", desk.patron_edit, name="desk_patron_edit"),
    path(_P + "checkout/", desk.checkout, name="desk_checkout"),
    path(_P + "done/", desk.checkout_done, name="desk_done"),
    path(_P + "renew/", desk.renew, name="desk_renew"),
    path(_P + "status/", desk.patron_status, name="desk_patron_status"),
    path(_P + "holds/", desk.hold_new, name="desk_hold"),
    path(_P + "holds/<int:hold_id>/cancel/", desk.hold_cancel, name="desk_hold_cancel"),
    path(_P + "payments/", desk.payment_new, name="desk_pay"),
    path(_P + "statement/", desk.statement, name="desk_statement"),
    # the patron's own account
    path("rentals/account/", account.account, name="account"),
    path("rentals/account/loans/<int:rental_id>/renew/", account.account_renew, name="account_renew"),
    path(
        "rentals/account/holds/<int:hold_id>/cancel/", account.account_hold_cancel, name="account_hold_cancel"
    ),
    path("rentals/account/history/", account.account_history, name="account_history"),
]
