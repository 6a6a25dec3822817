"""Mounted at /accounts/ before django.contrib.auth.urls, so these rate-limited `login` and `password_reset`
win; logout and the rest of the password views stay Django's own."""
from django.urls import path

from accounts import views

urlpatterns = [
    path("login/", views.RateLimitedLoginView.as_view(), name="login"),
    path("password_reset/", views.RateLimitedPasswordResetView.as_view(), name="password_reset"),
    path("tokens/", views.token_list, name="token_list"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
    path("sessions/end-all/", views.sign_out_everywhere, name="sign_out_everywhere"),
]
