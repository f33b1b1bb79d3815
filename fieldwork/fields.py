"""A text column stored encrypted (``crypto.py``): the ORM reads and writes plain text,
the database holds only Fernet tokens. It cannot be searched or compared in SQL (each
encryption of the same value differs); the LINE user id has a blind index for that."""

from __future__ import annotations

from typing import Any

from django.db import models

from . import crypto


class EncryptedTextField(models.TextField):
    description = "Text encrypted at rest (Fernet, HYOKA_CONTACT_KEYS)"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return value if value is None else crypto.decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return value if value is None else crypto.encrypt(str(value))
