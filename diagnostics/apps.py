"""App config for the diagnostics side of VR Console."""

from django.apps import AppConfig


class DiagnosticsConfig(AppConfig):
    name = "diagnostics"
    verbose_name = "VR Console diagnostics"
    default_auto_field = "django.db.models.BigAutoField"
