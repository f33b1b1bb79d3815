"""``manage.py reencrypt_contacts``: after a new key was put first in
``HYOKA_CONTACT_KEYS``, encrypt every contact again under it (fieldwork/crypto.py). Once
it has run, the old keys can be dropped."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from fieldwork.contacts import contacts_reencrypt


class Command(BaseCommand):
    help = (
        "Encrypt every contact's details again under the first key of HYOKA_CONTACT_KEYS "
        "(after a key rotation); then the older keys can be removed."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        changed = contacts_reencrypt()
        self.stdout.write(f"{changed} contact(s) encrypted again under the first key.")
