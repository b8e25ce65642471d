"""Signup, login (throttled), logout and the API token page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from bazaar.accounts import selectors, services
from bazaar.accounts.forms import LoginForm, SignupForm, TokenForm
from bazaar.accounts.models import User
from bazaar.core.errors import DomainError
from bazaar.core.http import client_ip


def _next_url(request: HttpRequest, default: str = "/") -> str:
    target = request.POST.get("next") or request.GET.get("next") or default
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_signup(
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password"],
                email=form.cleaned_data.get("email") or "",
            )
        except DomainError as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            for msg in details.get("password", []) or [exc.message]:
                form.add_error("password" if "password" in details else "username", msg)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome, {user.username}.")
            return redirect(_next_url(request))
    return render(request, "accounts/signup.html", {"form": form, "next": _next_url(request, "")})


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        username = form.cleaned_data["username"]
        ip = client_ip(request)
        try:
            services.login_attempt_start(username=username, ip=ip)
        except DomainError as exc:
            form.add_error(None, exc.message)
            status = 429
        else:
            user = authenticate(request, username=username, password=form.cleaned_data["password"])
            if isinstance(user, User):
                services.login_succeeded(username=username)
                login(request, user)
                return redirect(_next_url(request))
            services.login_failed(username=username, ip=ip)
            form.add_error(None, "Wrong username or password.")
            status = 400
    return render(
        request, "accounts/login.html", {"form": form, "next": _next_url(request, "")}, status=status
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "You are signed out.")
    return redirect("home")


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    form = TokenForm(request.POST or None)
    secret = None
    if request.method == "POST" and form.is_valid():
        issued = services.token_create(user=user, name=form.cleaned_data["name"])
        secret = issued.secret
        form = TokenForm()
    return render(
        request,
        "accounts/tokens.html",
        {"form": form, "tokens": selectors.token_list(user=user), "secret": secret},
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    try:
        services.token_revoke(user=user, token_id=token_id)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("accounts:tokens")
    messages.success(request, "Token revoked.")
    return redirect("accounts:tokens")
