"""Signals ``surveys`` sends so that other apps (``kpi``) can react without being imported.

``response_submitted`` is sent after the submitting transaction has committed, with
``response_id``, ``study_id`` and ``site_id``.
"""

from django.dispatch import Signal

response_submitted = Signal()
