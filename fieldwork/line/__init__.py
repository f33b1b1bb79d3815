"""The LINE channel: the Messaging API client (``client.py``), the one-time link codes
printed on letters (``codes.py``), linking a participant's LINE account and unlinking it
(``linking.py``), the webhook LINE calls (``webhook.py``) and the texts participants read
there (``texts.py``). LINE is optional: without ``LINE_CHANNEL_SECRET`` and
``LINE_CHANNEL_ACCESS_TOKEN`` the channel is off (README, "The LINE channel")."""
