"""Small facts about an HTTP request that pages of every app ask."""
from django.http import HttpRequest


def is_htmx(request: HttpRequest) -> bool:
    """The request came from htmx (the page wants a fragment, not the whole page)."""
    return request.headers.get("HX-Request") == "true"
