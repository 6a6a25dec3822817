"""The Content-Security-Policy header (Django 5.2 has no built-in one; 6.0's ``ContentSecurityPolicyMiddleware``
can replace this when we move).

The pages run only scripts served by this site (htmx, plotly, app.js); figures travel as ``json_script`` data
blocks, which are not executed and need no exception. Styles allow ``'unsafe-inline'``: plotly writes style
attributes and a ``<style>`` element at run time, htmx adds its indicator style, and templates use a few
``style=`` attributes; inline *script* stays forbidden, which is what stops injected markup from running.
Not sent while DEBUG is on: Django's debug pages carry inline scripts.
"""
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.FLIGHTDECK_CONTENT_SECURITY_POLICY
        if policy and not settings.DEBUG and HEADER not in response:
            response[HEADER] = policy
        return response
