"""Fieldwork's admin, scoped like the survey admin (``surveys/admin/common.py``):
senders (who a site's messages come from), contact details (imported from CSV, listed
without their values), deliveries (read-only), and the participants' action "Send
invitations by e-mail"."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from surveys import scoping
from surveys.admin.common import (
    MANAGER,
    ScopedAdminMixin,
    SiteFilter,
    by_site,
    narrow_choices,
    register_scope,
)
from surveys.admin.history import HistoryAdmin
from surveys.admin.participants import ParticipantAdmin
from surveys.errors import ImportRejected
from surveys.models import Participant, Study

from . import contacts, services
from .errors import NoSender
from .models import Contact, Delivery, Sender

register_scope(Sender, by_site("site_id"))
register_scope(Contact, by_site("participant__site_id"))
register_scope(Delivery, by_site("participant__site_id"))

IMPORT_MAX_BYTES = 5 * 1024 * 1024


@admin.register(Sender)
class SenderAdmin(HistoryAdmin):
    list_display = ("site", "display_name_ja", "from_address", "reply_to")
    list_select_related = ("site__study",)
    list_filter = (SiteFilter,)
    fields = (
        "site",
        "display_name_ja",
        "display_name_en",
        "from_address",
        "reply_to",
        "postal_block_ja",
        "postal_block_en",
    )


@admin.register(Contact)
class ContactAdmin(ScopedAdminMixin, admin.ModelAdmin):
    """Contact details are listed by participant, with which channels they have, never
    their values; a manager opens one row to read or correct it."""

    list_display = ("participant", "site_column", "language", "has_email", "has_line", "has_post")
    list_select_related = ("participant__site",)
    list_filter = ("language",)
    search_fields = ("participant__reference",)
    fields = ("participant", "email", "line_user_id", "postal_name", "postal_address", "language")
    readonly_fields = ("participant",)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:fieldwork_contact_import"))

    def save_model(self, request: HttpRequest, obj: Contact, form: Any, change: bool) -> None:
        contacts.contact_set(
            participant=obj.participant,
            values=contacts.ContactValues(
                email=obj.email,
                line_user_id=obj.line_user_id,
                postal_name=obj.postal_name,
                postal_address=obj.postal_address,
                language=obj.language,
            ),
        )

    @admin.display(description=_("site"), ordering="participant__site__code")
    def site_column(self, obj: Contact) -> str:
        return str(obj.participant.site)

    @admin.display(description=_("e-mail"), boolean=True)
    def has_email(self, obj: Contact) -> bool:
        return bool(obj.email)

    @admin.display(description=_("LINE"), boolean=True)
    def has_line(self, obj: Contact) -> bool:
        return bool(obj.line_user_id)

    @admin.display(description=_("post"), boolean=True)
    def has_post(self, obj: Contact) -> bool:
        return bool(obj.postal_address)

    def get_urls(self) -> list:
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="fieldwork_contact_import",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        user = request.user
        rejected: ImportRejected | None = None
        done: contacts.ContactImport | None = None
        if request.method == "POST":
            form = ContactImportForm(request.POST, request.FILES)
            narrow_choices(form.fields.values(), user, at_least=MANAGER)
            if form.is_valid():
                study = form.cleaned_data["study"]
                # Only the sites the caller manages exist for the import (as for participants).
                mine = (
                    None
                    if scoping.sees_everything(user)
                    else scoping.sites(user, study.sites.all(), at_least=MANAGER)
                )
                try:
                    done = contacts.contacts_import_csv(
                        study=study,
                        data=form.cleaned_data["file"].read(),
                        sites=mine,
                        create_participants=form.cleaned_data["create_participants"],
                    )
                except ImportRejected as exc:
                    rejected = exc
                else:
                    self.message_user(
                        request,
                        gettext("Contact details imported: %(created)d new, %(updated)d replaced.")
                        % {"created": done.created, "updated": done.updated},
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(reverse("admin:fieldwork_contact_changelist"))
        else:
            form = ContactImportForm()
            narrow_choices(form.fields.values(), user, at_least=MANAGER)
        row_errors = sorted(
            (rejected.errors if rejected else {}).items(),
            key=lambda item: int(item[0]) if str(item[0]).isdigit() else 0,
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Import contact details"),
            "form": form,
            "rejected": rejected,
            "row_errors": row_errors,
            "columns": ",".join(contacts.IMPORT_COLUMNS),
        }
        return TemplateResponse(request, "admin/fieldwork/contact/import.html", context)


class ContactImportForm(forms.Form):
    study = forms.ModelChoiceField(
        label=_("Study"), queryset=Study.objects.order_by("-period_start", "code")
    )
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "Columns reference,email,line_user_id,postal_name,postal_address,language "
            "(and site, if a reference is used at several sites), UTF-8."
        ),
    )

    create_participants = forms.BooleanField(
        label=_("Also create the participants not yet in the study"),
        required=False,
        help_text=_(
            "A row whose reference is not yet at the site its site column names creates "
            "that participant, as the participants import does."
        ),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > IMPORT_MAX_BYTES:
            raise ValidationError(
                _("The file is larger than %(max)d MB; is it the right file?")
                % {"max": IMPORT_MAX_BYTES // (1024 * 1024)}
            )
        return upload


@admin.register(Delivery)
class DeliveryAdmin(ScopedAdminMixin, admin.ModelAdmin):
    """Every message, as the log of what was sent, when, and why not."""

    list_display = (
        "created_at",
        "participant",
        "channel",
        "kind",
        "status",
        "attempts",
        "due_at",
        "sent_at",
        "last_error",
    )
    list_filter = ("status", "channel", "kind", "campaign")
    list_select_related = ("participant",)
    search_fields = ("participant__reference",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- The participants' action ------------------------------------------------------------


class FieldworkParticipantAdmin(ParticipantAdmin):
    """The survey admin's participants, with fieldwork's action (``surveys`` does not know
    fieldwork: the model admin is registered again here, extended)."""

    # One more than the survey admin's three (mypy infers their tuple's exact length).
    actions = (*ParticipantAdmin.actions, "send_invitations_by_email")  # type: ignore[assignment]

    def has_send_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("fieldwork.add_delivery")) and self.has_role(
            request, None, MANAGER
        )

    @admin.action(description=_("Send invitations by e-mail"), permissions=["send"])
    def send_invitations_by_email(
        self, request: HttpRequest, queryset: QuerySet[Participant]
    ) -> None:
        try:
            queued = services.email_deliveries_queue(participants=queryset)
        except NoSender as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(
            request,
            ngettext(
                "%(count)d invitation queued for sending by e-mail.",
                "%(count)d invitations queued for sending by e-mail.",
                len(queued.ids),
            )
            % {"count": len(queued.ids)},
            messages.SUCCESS if queued.ids else messages.WARNING,
        )
        if queued.skipped:
            skipped = ", ".join(
                f"{SKIP_WORDS[reason]}: {count}" for reason, count in sorted(queued.skipped.items())
            )
            self.message_user(
                request, gettext("Not invited (%(reasons)s).") % {"reasons": skipped}, messages.INFO
            )


SKIP_WORDS = {
    services.Skip.NOT_ACTIVE: _("withdrawn"),
    services.Skip.ERASED: _("personal data erased"),
    services.Skip.SUBMITTED: _("already answered"),
    services.Skip.NO_ADDRESS: _("no e-mail address"),
    services.Skip.PENDING: _("an invitation is already queued"),
}

if admin.site.is_registered(Participant):
    admin.site.unregister(Participant)
admin.site.register(Participant, FieldworkParticipantAdmin)

from .campaigns import admin as campaigns_admin  # noqa: E402, F401  (registers CampaignAdmin)
