from django.urls import path

from inbox import views

app_name = "inbox"

urlpatterns = [
    path("", views.index, name="index"),
    path("read-all/", views.mark_all_read, name="mark_all_read"),
    path("email/", views.email_preference, name="email_preference"),
    path("<int:message_id>/", views.message_open, name="open"),
    path("<int:message_id>/read/", views.message_read, name="read"),
    path("webhooks/", views.webhook_list, name="webhooks"),
    path("webhooks/<int:webhook_id>/", views.webhook_detail, name="webhook_detail"),
    path("webhooks/<int:webhook_id>/ping/", views.webhook_ping, name="webhook_ping"),
    path("webhooks/<int:webhook_id>/delete/", views.webhook_delete, name="webhook_delete"),
]
