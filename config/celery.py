"""The Celery application. Messages only say "look at row N now"; the database holds the truth."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("flightdeck")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
