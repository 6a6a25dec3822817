"""Error pages shared by every app (wired as ``handler400`` in config/urls.py)."""
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import defaults


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` gets a page in the site's frame saying so (413) instead of
    Django's bare "Bad Request"; what the browser sent is still in its form when the user goes back."""
    if isinstance(exception, RequestDataTooBig):
        limit_mb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / (1024 * 1024)
        return render(request, "413.html", {"limit_mb": limit_mb}, status=413)
    return defaults.bad_request(request, exception)
