from django.urls import path

from inbox import views

app_name = "inbox"

urlpatterns = [
    path("", views.index, name="index"),
    path("read-all/", views.mark_all_read, name="mark_all_read"),
    path("email/", views.email_preference, name="email_preference"),
    path("<int:message_id>/", views.message_open, name="open"),
    path("<int:message_id>/read/", views.message_read, name="read"),
]
