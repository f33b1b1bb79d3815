"""Signals ``surveys`` sends so that other apps (``kpi``) can react without being imported.

``response_submitted`` is sent after the submitting transaction has committed, with
``response_id`` and ``participant_id`` (both None for a bulk import, sent once per site),
``study_id`` and ``site_id``.

``participant_erasing`` is the hook for personal data kept outside ``surveys``' own tables
(a contact table, say): ``surveys.erasure.participant_erase`` sends it **inside** its
transaction, after erasing what ``surveys`` holds and before committing, with
``participant`` (already pseudonymised), ``record`` (the new ``ErasureRecord``), ``by``
(the user, or None for the system) and ``reason``. A receiver erases its own data for that
participant the same way (its history too: ``appendonly.redaction_operation`` opens its
historical table to the redacting UPDATE). If a receiver raises, the whole erasure is
rolled back: nothing is half-erased. Receivers run again for each participant of a
retention purge.

``participant_withdrawing`` is sent **inside** ``surveys.services.participant_withdraw``'s
transaction, after the participant's status is saved, with ``participant``: a receiver
cancels what it still has queued for them, in that transaction (messages not yet sent).


``study_copied`` is sent **inside** ``surveys.copying.study_copy``'s transaction, after the
study, its sites and its draft instrument are written, with ``source``, ``copy``,
``instrument`` (the copy's draft instrument, or None when the source had none) and
``user``: a receiver copies what it keeps of the study (``kpi``: segments and KPIs), in
that transaction. If it raises, nothing is copied.
"""

from django.dispatch import Signal

response_submitted = Signal()
participant_erasing = Signal()
participant_withdrawing = Signal()
study_copied = Signal()
