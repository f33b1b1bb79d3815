"""Signals ``surveys`` sends so that other apps (``kpi``) can react without being imported.

``response_submitted`` is sent after the submitting transaction has committed, with
``response_id`` (None for a bulk import, sent once per site), ``study_id`` and ``site_id``.
"""

from django.dispatch import Signal

response_submitted = Signal()
