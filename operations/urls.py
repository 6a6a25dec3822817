"""Operational endpoints (health, readiness, metrics), mounted at the site root."""
from django.urls import path

app_name = "operations"
urlpatterns: list = []
