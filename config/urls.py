from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.api_index import ApiIndexView

api_patterns = [
    path("", ApiIndexView.as_view(), name="api-index"),
    path("", include("ideas.api_urls")),
    path("", include("compute.api_urls")),
    path("", include("experiments.api_urls")),
    path("", include("accounts.api_urls")),
    path("", include("inbox.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file: the Content-Security-Policy allows no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

urlpatterns = [
    # The admin's own sign-in form would bypass the rate limits; send it to the limited one (keeps ?next=).
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),  # first: its rate-limited `login` replaces Django's
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include(api_patterns)),
    path("", include("operations.urls")),
    path("compute/", include("compute.urls")),
    path("experiments/", include("experiments.urls")),
    path("inbox/", include("inbox.urls")),
    path("", include("ideas.urls")),
]

# Error pages in the site's frame (a body over the upload limit says so instead of "Bad Request").
handler400 = "core.views.bad_request"
