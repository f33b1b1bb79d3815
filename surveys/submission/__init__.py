"""The submission pipeline: where a participant's answers are checked and stored.

- ``lookup.py``: the token lookup; a link's participant, their response and the study's
  current instrument as one value, ``Link``.
- ``pipeline.py``: ``response_save_draft`` and ``response_submit``, top to bottom: refuse,
  clean once, one statement on PostgreSQL, else the general locked path.
- ``statements.py``: the hand-written SQL (the lookup, a draft's answers, the two
  one-statement writes) and why it is hand-written.
- ``records.py``: what a history record of a response or an answer is, and the one
  writer of them.
"""

from .lookup import Link, link_for_token, link_of
from .pipeline import response_save_draft, response_submit

__all__ = ["Link", "link_for_token", "link_of", "response_save_draft", "response_submit"]
