"""App config of the dev cloud (installed only when VRCONSOLE_DEVCLOUD is true)."""

from django.apps import AppConfig


class DevcloudConfig(AppConfig):
    name = "devcloud"
    verbose_name = "VR Console dev cloud (simulator and lab)"
    default_auto_field = "django.db.models.BigAutoField"
