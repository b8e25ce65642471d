from django.urls import path

from bazaar.accounts import password_reset, views

app_name = "accounts"

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke, name="token-revoke"),
    path("password-reset/", password_reset.ResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", password_reset.ResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", password_reset.ResetConfirmView.as_view(), name="password_reset_confirm"),
    path("reset/done/", password_reset.ResetCompleteView.as_view(), name="password_reset_complete"),
]
