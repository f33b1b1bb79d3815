"""Enrol a manager's authenticator app (TOTP) for the admin's second factor."""

from __future__ import annotations

import io

import qrcode
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = (
        "Give a staff user a TOTP device for the admin's second factor (HYOKA_ADMIN_OTP) "
        "and print its otpauth:// link and QR code, to scan once with an authenticator app."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator app", help="the device's name")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="delete the user's other TOTP devices (a lost or replaced phone)",
        )
        parser.add_argument("--no-qr", action="store_true", help="print the link only")

    def handle(
        self, *args: object, username: str, name: str, replace: bool, no_qr: bool, **options: object
    ) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None or not user.is_staff:
            raise CommandError(f"No staff user named {username!r}.")
        with transaction.atomic():
            if replace:
                TOTPDevice.objects.filter(user=user).delete()
            device = TOTPDevice.objects.create(user=user, name=name, confirmed=True)
        url = device.config_url
        self.stdout.write(
            f"TOTP device {device.pk} for {username}. Scan the QR code (or enter the link) in "
            "an authenticator app now: it is shown only here. Keep it out of chats and e-mail."
        )
        if not no_qr:
            picture = io.StringIO()
            code = qrcode.QRCode(border=1)
            code.add_data(url)
            code.print_ascii(out=picture)
            self.stdout.write(picture.getvalue())
        self.stdout.write(url)
