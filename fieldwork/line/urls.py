from django.urls import path

from . import webhook

app_name = "line"

urlpatterns = [
    # The URL to enter in the LINE Developers console (README, "The LINE channel").
    path("webhook/", webhook.webhook, name="webhook"),
]
