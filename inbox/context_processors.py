"""The unread count for the nav badge of every page."""
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from inbox import selectors


def unread(request: HttpRequest) -> dict[str, object]:
    # Lazy: only pages that show the badge (signed in, full page) pay its one COUNT query.
    def count() -> int:
        user = request.user
        return selectors.unread_count(user) if user.is_authenticated else 0

    return {"inbox_unread": SimpleLazyObject(count)}
