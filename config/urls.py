from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

api_patterns = [
    path("", include("ideas.api_urls")),
    path("", include("compute.api_urls")),
    path("", include("experiments.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include(api_patterns)),
    path("", include("operations.urls")),
    path("compute/", include("compute.urls")),
    path("experiments/", include("experiments.urls")),
    path("", include("ideas.urls")),
]
