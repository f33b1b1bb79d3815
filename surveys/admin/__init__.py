"""The programme managers' admin for the survey domain.

Writes go through ``services`` (import, links, withdrawal, publishing); reads that need
counts come from ``selectors``. Plain invitation tokens exist only in the one response
that shows or downloads them: never in the database, a message, a log or a session.

One module per subject; importing them here registers every model admin when Django's
admin autodiscovery imports ``surveys.admin``.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from . import erasure, instruments, memberships, participants, responses, studies

__all__ = ["erasure", "instruments", "memberships", "participants", "responses", "studies"]

admin.site.site_header = _("Hyoka administration")
admin.site.site_title = _("Hyoka")
admin.site.index_title = _("Programme management")
# No "View site" link: the only public pages are the participants' questionnaires, each
# reached by a private link (a manager has none), and "/" answers 404. The admin index
# (the dashboard) is the managers' home, linked by the header already.
admin.site.site_url = None
