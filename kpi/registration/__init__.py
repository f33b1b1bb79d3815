"""Registration of a study's KPI specification before its fieldwork, the lock it puts on
what it registered, and the deviations that alone may change it afterwards.

- ``canonical``: the specification as canonical JSON (how an auditor recomputes it);
- ``services``: ``register`` (signed and timestamped) and ``kpi_deviate``;
- ``lock``: the check the definition services ask, and the database triggers;
- ``selectors``: ``registration_for(study)`` and the fieldwork test.
"""
