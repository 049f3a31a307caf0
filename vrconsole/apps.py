"""App config for the inventory side of VR Console."""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class VrconsoleConfig(AppConfig):
    default = True
    name = "vrconsole"
    verbose_name = "VR Console inventory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the `any` lookup (one array parameter instead of one per value).
        from django.contrib.auth.models import User
        from django.db.models.signals import m2m_changed

        from vrconsole import lookups  # noqa: F401
        from vrconsole.accounts import audit_role_change

        # Role changes are audited wherever they are made (admin, shell, a command).
        m2m_changed.connect(audit_role_change, sender=User.groups.through, dispatch_uid="vrconsole-audit-roles")


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the console's own site (roles decide who gets in)."""

    default = False
    default_site = "vrconsole.admin_site.ConsoleAdminSite"
