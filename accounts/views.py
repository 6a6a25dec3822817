"""Sign-in behind rate limits, personal API token pages, and "sign out everywhere"."""
import logging
import math

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, PasswordResetView
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import ratelimit, selectors, services
from accounts.forms import ApiTokenForm, QueuedPasswordResetForm

logger = logging.getLogger(__name__)


def _wait_text(seconds: int) -> str:
    return f"{seconds} seconds" if seconds < 90 else f"{math.ceil(seconds / 60)} minutes"


class RateLimitedLoginView(LoginView):
    """Django's LoginView (which rotates the session key on success) behind the sign-in limits of
    accounts.ratelimit: a locked username or address gets HTTP 429 with Retry-After, and its password is not
    even checked, so a locked-out guesser learns nothing. Redis down → 503 (fails closed, see ratelimit)."""

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        form = self.get_form()
        username = form.data.get("username", "")
        ip = ratelimit.client_ip(request)
        try:
            if retry_after := ratelimit.login_retry_after(username=username, ip=ip):
                return self._refused(username, retry_after)
            if form.is_valid():
                ratelimit.login_succeeded(username=username)
                return self.form_valid(form)
            if retry_after := ratelimit.login_failed(username=username, ip=ip):
                return self._refused(username, retry_after)
        except ratelimit.Unavailable as error:
            logger.error("sign-in refused: rate limit store unavailable: %s", error)
            return self._refusal(username, "Sign-in is unavailable for a moment. Please try again shortly.",
                                 status=503, retry_after=30)
        return self.form_invalid(form)

    def _refused(self, username: str, retry_after: int) -> HttpResponse:
        message = ("Too many failed sign-ins for this account or from your network. "
                   f"Try again in {_wait_text(retry_after)}.")
        return self._refusal(username, message, status=429, retry_after=retry_after)

    def _refusal(self, username: str, message: str, *, status: int, retry_after: int) -> HttpResponse:
        # A fresh, unbound form: rendering the bound one would validate it, i.e. check the password.
        form = self.get_form_class()(self.request, initial={"username": username})
        response = self.render_to_response(self.get_context_data(form=form, refusal=message), status=status)
        response["Retry-After"] = str(retry_after)
        return response


class RateLimitedPasswordResetView(PasswordResetView):
    """Django's reset view behind per-address and per-client limits (every request counts: each may send an
    email), with the email sent by a Celery worker. Over the limit: 429 with Retry-After, nothing sent;
    Redis down: 503, as sign-in."""

    form_class = QueuedPasswordResetForm

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        email = str(request.POST.get("email", ""))
        try:
            retry_after = ratelimit.password_reset_hit(email=email, ip=ratelimit.client_ip(request))
        except ratelimit.Unavailable as error:
            logger.error("password reset refused: rate limit store unavailable: %s", error)
            return self._refusal("Password reset is unavailable for a moment. Please try again shortly.",
                                 status=503, retry_after=30)
        if retry_after:
            return self._refusal(f"Too many reset requests. Try again in {_wait_text(retry_after)}.",
                                 status=429, retry_after=retry_after)
        return super().post(request, *args, **kwargs)

    def _refusal(self, message: str, *, status: int, retry_after: int) -> HttpResponse:
        response = self.render_to_response(self.get_context_data(form=self.get_form_class()(), refusal=message),
                                           status=status)
        response["Retry-After"] = str(retry_after)
        return response


def _token_page(request: HttpRequest, form: ApiTokenForm, *, status: int = 200) -> HttpResponse:
    context = {"tokens": selectors.api_tokens_of(request.user), "form": form,
               "session_count": len(selectors.session_keys_of(request.user))}
    return render(request, "accounts/token_list.html", context, status=status)


@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _token_page(request, ApiTokenForm())
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        try:
            issued = services.api_token_create(owner=request.user, name=form.cleaned_data["name"],
                                               expires_at=form.expires_at())
        except ValidationError as error:
            for field, field_errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, field_errors)
        else:
            response = render(request, "accounts/token_created.html", {"issued": issued}, status=201)
            response["Cache-Control"] = "no-store"  # the secret must not linger in a cache or the back button
            return response
    return _token_page(request, form, status=400)


@login_required
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = selectors.api_token_get_for_user(pk=pk, user=request.user)
    if request.method == "POST":
        services.api_token_revoke(token=token)
        messages.success(request, f"Token “{token.name}” revoked; requests with it are refused from now on.")
        return redirect("token_list")
    return render(request, "accounts/token_revoke.html", {"token": token})


@login_required
@require_POST
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    ended = services.sessions_end_all(user=request.user)
    logout(request)
    messages.success(request, f"Signed out everywhere ({ended} session{'s' if ended != 1 else ''} ended).")
    return redirect("login")
