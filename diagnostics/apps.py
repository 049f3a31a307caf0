"""App config for the diagnostics side of VR Console."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DiagnosticsConfig(AppConfig):
    name = "diagnostics"
    verbose_name = "VR Console diagnostics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from vrconsole.roles import ensure_roles

        # After this app's permissions exist (auth creates them on the same signal, earlier).
        post_migrate.connect(ensure_roles, sender=self, dispatch_uid="vrconsole-ensure-roles")
