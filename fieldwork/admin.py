"""Fieldwork's admin, scoped like the survey admin (``surveys/admin/common.py``):
senders (who a site's messages come from), contact details (imported from CSV, listed
without their values), deliveries (read-only), and the participants' action "Send
invitations by e-mail"."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import Truncator
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
from .letters.build import Built, letters_build
from .letters.printing import letter_deliveries_print, letters_pdf, skipped_summary
from .models import Contact, Delivery, Sender


def _short(value: Any) -> str:
    """A time as a narrow list column shows it."""
    return date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")


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

    def get_form(
        self, request: HttpRequest, obj: Contact | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        # Each field carries the value the manager saw (a hidden input): a field counts as
        # changed only if the manager changed it, not if the participant linked their
        # LINE account while the form was open.
        for field in form.base_fields.values():
            field.show_hidden_initial = True
        if "line_user_id" in form.base_fields:
            form.base_fields["line_user_id"].help_text = _(
                "Set when the participant sends their code to the official account in LINE. "
                "To unlink their LINE account, empty this field and save."
            )
        return form

    def save_model(self, request: HttpRequest, obj: Contact, form: Any, change: bool) -> None:
        # Only what the manager changed (emptying a field removes that value): a LINE
        # account the participant linked while the form was open is not undone.
        changed = set(form.changed_data)
        contacts.contact_set(
            participant=obj.participant,
            values=contacts.ContactValues(
                **{name: getattr(obj, name) for name in contacts.FIELDS if name in changed}
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
                        gettext("Contact details imported: %(created)d new, %(updated)d updated.")
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

    # Fits 1280 px in either language: the attempts under the status, one time (sent, or
    # else due), the error cut short (the delivery's page has all of it).
    list_display = (
        "queued_column",
        "participant",
        "channel",
        "kind",
        "status_column",
        "when_column",
        "error_column",
    )
    list_display_links = ("queued_column",)
    list_filter = ("status", "channel", "kind", "campaign")
    list_select_related = ("participant",)
    search_fields = ("participant__reference",)
    date_hierarchy = "created_at"
    actions = ("print_queued_letters",)

    def has_print_permission(self, request: HttpRequest) -> bool:
        return _may_print(self, request)

    @admin.display(description=_("queued"), ordering="created_at")
    def queued_column(self, obj: Delivery) -> str:
        return _short(obj.created_at)

    @admin.display(description=_("status"), ordering="status")
    def status_column(self, obj: Delivery) -> str:
        if not obj.attempts:
            return obj.get_status_display()
        attempts = ngettext("%(count)d attempt", "%(count)d attempts", obj.attempts) % {
            "count": obj.attempts
        }
        return format_html(
            '{}<span class="hyoka-second-line">{}</span>', obj.get_status_display(), attempts
        )

    @admin.display(description=_("sent / due"), ordering="due_at")
    def when_column(self, obj: Delivery) -> str:
        if obj.sent_at is not None:
            return _short(obj.sent_at)
        return format_html(
            '{}<span class="hyoka-second-line">{}</span>', _short(obj.due_at), gettext("due")
        )

    @admin.display(description=_("last error"))
    def error_column(self, obj: Delivery) -> str:
        if not obj.last_error:
            return "-"
        return format_html(
            '<span class="hyoka-cut" title="{}">{}</span>',
            obj.last_error,
            Truncator(obj.last_error).chars(80),
        )

    @admin.action(description=_("Print the selected queued letters (PDF)"), permissions=["print"])
    def print_queued_letters(
        self, request: HttpRequest, queryset: QuerySet[Delivery]
    ) -> HttpResponseBase | None:
        """The selected letter deliveries that are queued and due, of the sites the caller
        manages, as one PDF; they are marked sent once it is rendered (each printed once:
        two managers printing the same rows at once get each row in one PDF only)."""
        queryset = self.scoped(request, queryset, at_least=MANAGER)
        ids = list(
            queryset.filter(
                channel=Delivery.Channel.LETTER, status=Delivery.Status.QUEUED
            ).values_list("pk", flat=True)
        )
        if not ids:
            self.message_user(
                request, _("None of the selected deliveries is a queued letter."), messages.WARNING
            )
            return None
        if len(ids) > settings.HYOKA_LETTERS_ADMIN_MAX:
            self.message_user(request, _too_many(len(ids)), messages.ERROR)
            return None
        pdf: list[bytes] = []

        def write(built: Built, heartbeat: Any) -> None:
            pdf.append(letters_pdf(built.letters, on_batch=heartbeat))

        printed = letter_deliveries_print(
            deliveries=Delivery.objects.filter(pk__in=ids), write=write
        )
        if printed.failed:
            self.message_user(
                request,
                ngettext(
                    "%(count)d letter could not be printed and is marked failed (%(reasons)s).",
                    "%(count)d letters could not be printed and are marked failed (%(reasons)s).",
                    len(printed.failed),
                )
                % {"count": len(printed.failed), "reasons": skipped_summary(printed.built)},
                messages.WARNING,
            )
        if not pdf:
            self.message_user(request, _("No letters to print."), messages.WARNING)
            return None
        self.message_user(
            request,
            ngettext(
                "%(count)d queued letter printed and marked sent.",
                "%(count)d queued letters printed and marked sent.",
                len(printed.sent),
            )
            % {"count": len(printed.sent)},
            messages.SUCCESS,
        )
        return _pdf_download(pdf[0], "queued-letters")

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
    actions = (  # type: ignore[assignment]
        *ParticipantAdmin.actions,
        "send_invitations_by_email",
        "print_letters",
    )

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

    def has_print_permission(self, request: HttpRequest) -> bool:
        return _may_print(self, request)

    @admin.action(description=_("Print letters (PDF)"), permissions=["print"])
    def print_letters(
        self, request: HttpRequest, queryset: QuerySet[Participant]
    ) -> HttpResponseBase | None:
        """The selected participants' letters (of the sites the caller manages) as one
        PDF download. Printing records nothing: like exporting links, it shows each
        participant's one stable link and changes nothing."""
        mine = self.scoped(request, queryset, at_least=MANAGER)
        ids = list(mine.values_list("pk", flat=True))
        if len(ids) > settings.HYOKA_LETTERS_ADMIN_MAX:
            self.message_user(request, _too_many(len(ids)), messages.ERROR)
            return None
        built = letters_build(ids)
        if built.skipped:
            self.message_user(
                request,
                ngettext(
                    "No letter for %(count)d participant (%(reasons)s).",
                    "No letter for %(count)d participants (%(reasons)s).",
                    len(built.skipped),
                )
                % {"count": len(built.skipped), "reasons": skipped_summary(built)},
                messages.WARNING,
            )
        if not built.letters:
            self.message_user(request, _("No letters to print."), messages.WARNING)
            return None
        return _pdf_download(letters_pdf(built.letters), "letters")


def _may_print(model_admin: ScopedAdminMixin, request: HttpRequest) -> bool:
    """Letters show names and addresses: the manager role and the right to read contacts."""
    return bool(request.user.has_perm("fieldwork.view_contact")) and model_admin.has_role(
        request, None, MANAGER
    )


def _too_many(count: int) -> str:
    return gettext(
        "%(count)d letters are too many to print here (at most %(max)d): print them with "
        "“python manage.py letters --study CODE --out letters.pdf”, or select fewer."
    ) % {"count": count, "max": settings.HYOKA_LETTERS_ADMIN_MAX}


def _pdf_download(pdf: bytes, prefix: str) -> HttpResponse:
    response = HttpResponse(pdf, content_type="application/pdf")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="{prefix}-{stamp}.pdf"'
    return response


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

# The fieldwork watch (a page per study) and its links from the study's pages.
from . import watch_admin  # noqa: E402, F401
from .campaigns import admin as campaigns_admin  # noqa: E402, F401  (registers CampaignAdmin)
