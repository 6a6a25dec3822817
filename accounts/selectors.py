"""Reads for tokens and sessions."""
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.sessions.models import Session
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import ApiToken
from core.selectors import get_or_404


def api_tokens_of(user: AbstractBaseUser) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(owner=user)


def api_token_get_for_user(*, pk: int, user: AbstractBaseUser) -> ApiToken:
    """Another user's token is indistinguishable from a missing one (404), so ids leak nothing."""
    return get_or_404(api_tokens_of(user), "No such token.", pk=pk)


def session_keys_of(user: AbstractBaseUser) -> list[str]:
    """Keys of `user`'s live database sessions.

    Sessions store the user id inside their signed, encoded data, so each live one is decoded: linear in
    the number of live sessions, which is fine for a team's installation (hundreds), and unlike a side table
    it also finds sessions from the admin's own sign-in and from before this app existed."""
    user_id = str(user.pk)
    live = Session.objects.filter(expire_date__gt=timezone.now()).only("session_key", "session_data")
    return [session.session_key for session in live.iterator(chunk_size=500)
            if session.get_decoded().get("_auth_user_id") == user_id]
