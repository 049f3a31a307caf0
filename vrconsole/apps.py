"""App config for the inventory side of VR Console."""

from django.apps import AppConfig


class VrconsoleConfig(AppConfig):
    name = "vrconsole"
    verbose_name = "VR Console inventory"
    default_auto_field = "django.db.models.BigAutoField"
