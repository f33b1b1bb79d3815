"""Campaigns: an invitation wave and its reminders, per study or some of its sites.

- ``rules.py``: who is due what when, as plain functions over plain values (no ORM);
- ``templating.py``: the managers' message texts and their placeholders;
- ``scheduling.py``: the beat's service that turns what is due into deliveries, and a
  failed delivery into one on the next channel;
- ``messages.py``: a campaign's text for a delivery (used by the e-mail and LINE channels)
  and the admin's preview.
"""
