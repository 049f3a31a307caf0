"""App config for the inventory side of VR Console."""

from django.apps import AppConfig


class VrconsoleConfig(AppConfig):
    name = "vrconsole"
    verbose_name = "VR Console inventory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the `any` lookup (one array parameter instead of one per value).
        from vrconsole import lookups  # noqa: F401
