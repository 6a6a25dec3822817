"""Writes for tokens and sessions: keyword-only functions, one transaction each."""
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.tokens import default_token_generator
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import selectors
from accounts.models import ApiToken, TokenState

SECRET_PREFIX = "fd_"
SHOWN_PREFIX_LENGTH = len(SECRET_PREFIX) + 8
# last_used_at is for people ("used 3 minutes ago"), so one UPDATE a minute is plenty; a write on every
# request would turn each API read into a row lock.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenRejected(Exception):
    """The presented secret does not authenticate; the message is safe to show to the client."""


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def api_token_create(*, owner: AbstractBaseUser, name: str, expires_at: datetime | None = None) -> IssuedToken:
    name = name.strip()
    errors = {}
    if not name:
        errors["name"] = "Give the token a name, e.g. the script or machine that uses it."
    elif len(name) > ApiToken._meta.get_field("name").max_length:
        errors["name"] = "At most 100 characters."
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = "The expiry must be in the future."
    if errors:
        raise ValidationError(errors)
    secret = SECRET_PREFIX + secrets.token_urlsafe(30)
    token = ApiToken.objects.create(owner=owner, name=name, prefix=secret[:SHOWN_PREFIX_LENGTH],
                                    key_hash=hash_secret(secret), expires_at=expires_at)
    return IssuedToken(token=token, secret=secret)


@transaction.atomic
def api_token_revoke(*, token: ApiToken) -> ApiToken:
    """Idempotent: a second revoke keeps the first time."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def api_token_authenticate(*, secret: str) -> ApiToken:
    """The active token whose secret this is (owner joined), with last_used_at brought up to date."""
    token = ApiToken.objects.select_related("owner").filter(key_hash=hash_secret(secret)).first()
    if token is None or not token.owner.is_active:
        raise TokenRejected("Invalid token.")
    state = token.state()
    if state is not TokenState.ACTIVE:
        raise TokenRejected(f"Token {state.label.lower()}.")
    now = timezone.now()
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_RESOLUTION:
        # Conditional so that concurrent requests of one script write the row once, not once each.
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ApiToken.objects.filter(stale, pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


@transaction.atomic
def sessions_end_all(*, user: AbstractBaseUser) -> int:
    """Sign `user` out everywhere: delete every server-side session of theirs; returns how many."""
    deleted, _ = Session.objects.filter(session_key__in=selectors.session_keys_of(user)).delete()
    return deleted


def password_reset_email_send(*, user_id: int, domain: str, use_https: bool) -> bool:
    """Mail ``user_id`` a password reset link (Django's templates and token); False if they may not reset.

    No writes: the token is derived from the user's current password hash and last sign-in, so it stops
    working once used."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.has_usable_password() or not user.email:
        return False
    context = {
        "email": user.email, "domain": domain, "site_name": domain, "user": user,
        "uid": urlsafe_base64_encode(force_bytes(user.pk)), "token": default_token_generator.make_token(user),
        "protocol": "https" if use_https else "http",
    }
    PasswordResetForm().send_mail("registration/password_reset_subject.txt", "registration/password_reset_email.html",
                                  context, None, user.email)
    return True
