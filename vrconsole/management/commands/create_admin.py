"""create_admin: make sure an administrator account exists, for first start and for automation.

The password comes from --password or, better (it stays out of the process list and shell
history), the VRCONSOLE_ADMIN_PASSWORD environment variable. It must pass the project's
password validators. Running the command again with the same arguments changes nothing, so
it is safe in a container entrypoint.
"""

from __future__ import annotations

import os
from argparse import ArgumentParser

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

PASSWORD_ENV = "VRCONSOLE_ADMIN_PASSWORD"


class Command(BaseCommand):
    help = f"Create or update a superuser. The password is read from --password or ${PASSWORD_ENV}."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--username", default="admin", help="login name (default: admin)")
        parser.add_argument("--email", default="", help="e-mail address")
        parser.add_argument(
            "--password",
            default=None,
            help=f"password; prefer ${PASSWORD_ENV}, which does not show in the process list",
        )

    def handle(self, *args: object, username: str, email: str, password: str | None, **options: object) -> None:
        username = username.strip()
        if not username:
            raise CommandError("--username must not be empty")
        password = password if password is not None else os.environ.get(PASSWORD_ENV) or None
        user_model = get_user_model()
        with transaction.atomic():
            existing = user_model.objects.select_for_update().filter(username=username).first()
            created = existing is None
            if existing is None:
                if not password:
                    raise CommandError(f"No password: pass --password or set {PASSWORD_ENV}")
                user = user_model(username=username)
            else:
                user = existing
            if password:
                try:
                    validate_password(password, user)
                except ValidationError as exc:
                    raise CommandError("Password refused: " + " ".join(exc.messages)) from None
            changed = self._apply(user, email, password)
            if changed:
                user.save()
        if created:
            self.stdout.write(self.style.SUCCESS(f"Created admin user {username!r}"))
        elif changed:
            self.stdout.write(self.style.SUCCESS(f"Updated admin user {username!r}"))
        else:
            self.stdout.write(f"Admin user {username!r} already exists with these settings")

    def _apply(self, user: AbstractUser, email: str, password: str | None) -> bool:
        """Bring the user to the requested state; True when something had to change."""
        changed = user.pk is None
        for flag in ("is_superuser", "is_staff", "is_active"):
            if not getattr(user, flag):
                setattr(user, flag, True)
                changed = True
        if email and user.email != email:
            user.email = email
            changed = True
        if password and not user.check_password(password):
            user.set_password(password)
            changed = True
        return changed
