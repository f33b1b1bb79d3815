"""Participants: importing them from CSV, exporting invitation links, withdrawing them,
erasing their personal data."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .. import erasure, links, scoping, services
from ..bidi import strip_bidi_controls
from ..errors import ImportRejected, LinkUnavailable, RuleViolation
from ..models import ErasureRecord, Participant, Response, Study
from ..text import no_control_characters
from .common import MANAGER, SiteFilter, narrow_choices
from .history import HistoryAdmin
from .pagination import EstimatedCountPaginator

# An import larger than this is almost certainly the wrong file (352 rows are ~10 kB).
IMPORT_MAX_BYTES = 5 * 1024 * 1024


class ResponseStatusFilter(admin.SimpleListFilter):
    title = _("response")
    parameter_name = "response"
    NOT_STARTED = "none"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [(self.NOT_STARTED, _("Not started")), *Response.Status.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == self.NOT_STARTED:
            return queryset.filter(response__isnull=True)
        if value in Response.Status.values:
            return queryset.filter(response__status=value)
        return queryset


def _csv_filename(prefix: str, study_codes: Iterable[str]) -> str:
    codes = "-".join(sorted(set(study_codes))) or "participants"
    return f"{prefix}-{codes}-{timezone.localtime():%Y%m%d-%H%M}.csv"


class ParticipantForm(forms.ModelForm):
    class Meta:
        model = Participant
        fields = ("site", "reference", "invited_at", "reminded_at")

    def clean_reference(self) -> str:
        reference = strip_bidi_controls(self.cleaned_data["reference"]).strip()
        if "@" in reference:
            raise ValidationError(_("The reference looks like an e-mail address; use a pseudonym."))
        # Once created a participant's site is read-only, so the model form's own check
        # of (site, reference) is skipped and a taken reference would reach the database.
        # Only the participant's own site is looked at: references are unique per site.
        site_id = self.instance.site_id
        if "site" not in self.fields and site_id is not None:
            others = Participant.objects.filter(site_id=site_id, reference=reference)
            if others.exclude(pk=self.instance.pk).exists():
                raise ValidationError(_("This participant already exists at this site."))
        return reference


class ImportForm(forms.Form):
    study = forms.ModelChoiceField(
        label=_("Study"), queryset=Study.objects.order_by("-period_start", "code")
    )
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "Columns reference,site (the site by its code), UTF-8 with or without BOM: "
            "in Excel, save as “CSV UTF-8 (comma delimited)”."
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


class EraseForm(forms.Form):
    """Erasing is irreversible: a reason for the record, and the manager's password again
    (as for signing off an evaluation)."""

    reason = forms.CharField(
        label=_("Reason"),
        max_length=2000,
        validators=[no_control_characters],
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Kept in the erasure record, for example “the resident's request of 3 May (phone)”. "
            "Write no personal data here."
        ),
    )
    password = forms.CharField(
        label=_("Your password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("Erasing cannot be undone: confirm it with your password."),
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise ValidationError(_("The password is not correct."))
        return password


@admin.register(Participant)
class ParticipantAdmin(HistoryAdmin):
    """The caller's sites' participants. Importing, exporting links and withdrawing take
    the manager role on every site concerned."""

    form = ParticipantForm
    list_display = (
        "reference",
        "site_column",
        "study_column",
        "status",
        "response_column",
        "invited_at",
        "reminded_at",
        "token_issued_at",
    )
    list_filter = ("site__study", SiteFilter, "status", ResponseStatusFilter)
    search_fields = ("reference",)
    # By site, then reference: the order of the (site, reference) unique index, so a page
    # is read from it rather than sorting every participant of the manager's sites.
    ordering = ("site_id", "reference")
    list_per_page = 100
    # A million participants: no exact count of every row on each page (pagination.py).
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    actions = ("export_links", "replace_links", "withdraw", "erase")
    allow_revert = False  # withdrawing and new links are acts of their own
    readonly_fields = ("status", "response_link", "token_issued_at", "created_at")
    fieldsets = (
        (None, {"fields": ("site", "reference", "status", "response_link")}),
        (_("Invitation"), {"fields": ("invited_at", "reminded_at", "token_issued_at")}),
        (_("Record"), {"fields": ("created_at",), "classes": ("collapse",)}),
    )

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        # The study column only tells studies apart; with one study it is noise.
        if not scoping.studies(request.user)[1:2].exists():
            return tuple(c for c in self.list_display if c != "study_column")
        return tuple(self.list_display)

    def base_queryset(self, request: HttpRequest) -> QuerySet[Participant]:
        return (
            super()
            .base_queryset(request)
            .select_related("site__study")
            .annotate(response_status=F("response__status"), response_pk=F("response__pk"))
        )

    def get_readonly_fields(
        self, request: HttpRequest, obj: Participant | None = None
    ) -> tuple[str, ...]:
        # Participants are created by import; a participant never changes site; an erased
        # one keeps their pseudonym.
        if obj is not None and _is_erased(obj):
            return (*self.readonly_fields, "site", "reference", "invited_at", "reminded_at")
        return (*self.readonly_fields, "site") if obj is not None else self.readonly_fields

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        participant = self.get_object(request, unquote(object_id))
        extra = {
            **(extra_context or {}),
            "erasure_record": ErasureRecord.objects.filter(participant=participant).first(),
            "can_erase": self.has_delete_permission(request, participant),
        }
        return super().change_view(request, object_id, form_url, extra)

    @admin.display(description=_("site"), ordering="site__code")
    def site_column(self, obj: Participant) -> str:
        return obj.site.name

    @admin.display(description=_("study"), ordering="site__study__code")
    def study_column(self, obj: Participant) -> str:
        return obj.site.study.code

    @admin.display(description=_("response"), ordering="response_status")
    def response_column(self, obj: Participant) -> str:
        status = obj.response_status  # type: ignore[attr-defined]
        if status is None:
            return str(_("Not started"))
        return str(Response.Status(status).label)

    @admin.display(description=_("response"))
    def response_link(self, obj: Participant) -> str:
        if obj.response_pk is None:  # type: ignore[attr-defined]
            return str(_("Not started"))
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:surveys_response_change", args=[obj.response_pk]),  # type: ignore[attr-defined]
            Response.Status(obj.response_status).label,  # type: ignore[attr-defined]
        )

    # Creating participants is importing them: a single one is a one-line CSV.

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:surveys_participant_import"))

    def get_urls(self) -> list:
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="surveys_participant_import",
            ),
            path(
                "<path:object_id>/erase/",
                self.admin_site.admin_view(self.erase_view),
                name="surveys_participant_erase",
            ),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, **extra: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.opts, **extra}

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        user = request.user
        rejected: ImportRejected | None = None
        if request.method == "POST":
            form = ImportForm(request.POST, request.FILES)
            narrow_choices(form.fields.values(), user, at_least=MANAGER)
            if form.is_valid():
                study = form.cleaned_data["study"]
                data = form.cleaned_data["file"].read()
                # Only the sites the caller manages exist for the import (see the service).
                mine = (
                    None
                    if scoping.sees_everything(user)
                    else scoping.sites(user, study.sites.all(), at_least=MANAGER)
                )
                try:
                    invitations = services.participants_import_csv(
                        study=study, data=data, sites=mine
                    )
                except ImportRejected as exc:
                    rejected = exc
                else:
                    return self._import_done(request, study, invitations)
        else:
            form = ImportForm()
            narrow_choices(form.fields.values(), user, at_least=MANAGER)
            studies = list(form.fields["study"].queryset[:2])  # type: ignore[attr-defined]
            if len(studies) == 1:
                form.initial["study"] = studies[0]
        row_errors = sorted(
            (rejected.errors if rejected else {}).items(),
            key=lambda item: int(item[0]) if str(item[0]).isdigit() else 0,
        )
        sites = (
            scoping.sites(user, at_least=MANAGER)
            .select_related("study")
            .order_by("study__code", "code")
        )
        template = "\ufeffreference,site\r\n"
        context = self._context(
            request,
            title=_("Import participants"),
            form=form,
            rejected=rejected,
            row_errors=row_errors,
            sites=sites,
            template_csv=_data_uri(template),
        )
        return TemplateResponse(request, "admin/surveys/participant/import.html", context)

    def _import_done(
        self, request: HttpRequest, study: Study, invitations: list[services.Invitation]
    ) -> HttpResponse:
        text = links.invitations_csv(invitations)
        context = self._context(
            request,
            title=_("Participants imported"),
            study=study,
            invitations=invitations,
            csv_text=text.lstrip("\ufeff"),
            csv_uri=_data_uri(text),
            csv_filename=_csv_filename("invitation-links", [study.code]),
        )
        # The links are credentials: no cache keeps the page (no-store, as every page:
        # config.security.NoStoreMiddleware). "Export invitation links" gives them again.
        return TemplateResponse(request, "admin/surveys/participant/import_done.html", context)

    # Actions

    def _confirmation(
        self,
        request: HttpRequest,
        queryset: QuerySet[Participant],
        *,
        action: str,
        title: str,
        warning: str,
        button: str,
        participants: list[Participant],
        skipped: int,
        skipped_text: str,
    ) -> TemplateResponse:
        select_across = request.POST.get("select_across") == "1"
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        context = self._context(
            request,
            title=title,
            warning=warning,
            button=button,
            action=action,
            select_across=select_across,
            # With "select all", the action runs again on the filtered list (the form posts
            # to this same URL); otherwise on exactly the ticked participants.
            selected=selected[:1] if select_across else selected,
            action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
            participants=participants[:50],
            more=max(0, len(participants) - 50),
            count=len(participants),
            skipped=skipped,
            skipped_text=skipped_text,
        )
        return TemplateResponse(request, "admin/surveys/participant/confirm_action.html", context)

    def _linkable(self, queryset: QuerySet[Participant]) -> tuple[list[Participant], int]:
        """The selection's participants who have a link (active, not erased; an erased one
        gets no link again: it would give them back a way in), and how many are left out."""
        active = list(
            queryset.filter(status=Participant.Status.ACTIVE, erasure__isnull=True)
            .select_related("site__study")
            .order_by("site__study__code", "site__code", "reference")
        )
        return active, queryset.count() - len(active)

    def _links_download(
        self, request: HttpRequest, invitations: list[services.Invitation]
    ) -> HttpResponse:
        response = HttpResponse(
            links.invitations_csv(invitations), content_type="text/csv; charset=utf-8"
        )
        codes = (i.participant.site.study.code for i in invitations)
        filename = _csv_filename("invitation-links", codes)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    @admin.action(description=_("Export invitation links"), permissions=["change"])
    def export_links(
        self, request: HttpRequest, queryset: QuerySet[Participant]
    ) -> HttpResponseBase | None:
        active, skipped = self._linkable(queryset)
        if request.POST.get("confirmed") != "yes":
            return self._confirmation(
                request,
                queryset,
                action="export_links",
                title=str(_("Export invitation links")),
                warning=str(
                    _(
                        "Each participant keeps the same link: these are the links of earlier "
                        "exports and letters, and exporting changes nothing. To give "
                        "participants new links, use “Replace invitation links”."
                    )
                ),
                button=str(_("Download the links")),
                participants=active,
                skipped=skipped,
                skipped_text=str(
                    _("Withdrawn and erased participants have no link and are left out.")
                ),
            )
        if not active:
            self.message_user(request, _("No active participants were selected."), messages.WARNING)
            return None
        try:
            invitations = links.invitations(active)
        except LinkUnavailable as exc:
            self.message_user(request, _refusal(exc, active), messages.ERROR)
            return None
        return self._links_download(request, invitations)

    @admin.action(
        description=_("Replace invitation links (the current links stop working)"),
        permissions=["change"],
    )
    def replace_links(
        self, request: HttpRequest, queryset: QuerySet[Participant]
    ) -> HttpResponseBase | None:
        active, skipped = self._linkable(queryset)
        if request.POST.get("confirmed") != "yes":
            return self._confirmation(
                request,
                queryset,
                action="replace_links",
                title=str(_("Replace invitation links")),
                warning=str(
                    _(
                        "Each selected participant gets a NEW link. Their current links stop "
                        "working at once, including the links in letters and messages already "
                        "sent: send them the new ones. Do this only when a link has gone astray "
                        "or the link key has leaked. The replacement is recorded in each "
                        "participant's history."
                    )
                ),
                button=str(_("Yes, replace the links and download the new ones")),
                participants=active,
                skipped=skipped,
                skipped_text=str(
                    _("Withdrawn and erased participants get no link and are left out.")
                ),
            )
        if not active:
            self.message_user(request, _("No active participants were selected."), messages.WARNING)
            return None
        try:
            invitations = links.participant_replace_links(participants=active, by=request.user)
        except LinkUnavailable as exc:
            self.message_user(request, _refusal(exc, active), messages.ERROR)
            return None
        return self._links_download(request, invitations)

    @admin.action(description=_("Withdraw the selected participants"), permissions=["change"])
    def withdraw(
        self, request: HttpRequest, queryset: QuerySet[Participant]
    ) -> HttpResponseBase | None:
        active = list(queryset.filter(status=Participant.Status.ACTIVE))
        skipped = queryset.count() - len(active)
        if request.POST.get("confirmed") != "yes":
            return self._confirmation(
                request,
                queryset,
                action="withdraw",
                title=str(_("Withdraw participants")),
                warning=str(
                    _(
                        "Withdrawn participants leave the study: their links stop working and "
                        "they no longer count in the response rate. Answers they already gave "
                        "are kept."
                    )
                ),
                button=str(_("Yes, withdraw them")),
                participants=active,
                skipped=skipped,
                skipped_text=str(_("Already withdrawn participants are left as they are.")),
            )
        for participant in active:
            services.participant_withdraw(participant=participant)
        self.message_user(
            request,
            ngettext(
                "%(count)d participant withdrawn.", "%(count)d participants withdrawn.", len(active)
            )
            % {"count": len(active)},
            messages.SUCCESS,
        )
        return None

    # Erasure: from the list (an action) or from a participant's page (a view of its own).

    @admin.action(
        description=_("Erase the personal data of the selected participants"),
        permissions=["delete"],
    )
    def erase(
        self, request: HttpRequest, queryset: QuerySet[Participant]
    ) -> HttpResponseBase | None:
        participants = list(queryset.select_related("site__study").order_by("pk"))
        form = EraseForm(
            request.POST if request.POST.get("confirmed") == "yes" else None, user=request.user
        )
        if not form.is_valid():
            select_across = request.POST.get("select_across") == "1"
            selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
            return self._erase_page(
                request,
                form,
                participants,
                action="erase",
                select_across=select_across,
                # As in _confirmation: "select all" runs again on the filtered list.
                selected=selected[:1] if select_across else selected,
            )
        self._erase(request, participants, form.cleaned_data["reason"])
        return None

    def erase_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """One participant's erasure: 404 outside the caller's scope, 403 without the
        delete permission and the manager role on their site."""
        participant = self.get_object(request, unquote(object_id))
        if not self.has_delete_permission(request, participant):
            raise PermissionDenied
        form = EraseForm(request.POST or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            self._erase(request, [participant], form.cleaned_data["reason"])
            return HttpResponseRedirect(
                reverse("admin:surveys_participant_change", args=[participant.pk])
            )
        return self._erase_page(request, form, [participant], original=participant)

    def _erase(self, request: HttpRequest, participants: list[Participant], reason: str) -> None:
        erased = already = 0
        try:
            for participant in participants:
                done = erasure.participant_erase(
                    participant=participant, by=request.user, reason=reason
                )
                erased += done.new
                already += not done.new
        except RuleViolation as exc:
            self.message_user(request, exc.message, messages.ERROR)
        if erased:
            self.message_user(
                request,
                ngettext(
                    "The personal data of %(count)d participant was erased.",
                    "The personal data of %(count)d participants was erased.",
                    erased,
                )
                % {"count": erased},
                messages.SUCCESS,
            )
        if already:
            self.message_user(
                request,
                ngettext(
                    "%(count)d participant had already been erased: nothing was done.",
                    "%(count)d participants had already been erased: nothing was done.",
                    already,
                )
                % {"count": already},
                messages.WARNING,
            )

    def _erase_page(
        self,
        request: HttpRequest,
        form: EraseForm,
        participants: list[Participant],
        **extra: Any,
    ) -> TemplateResponse:
        context = self._context(
            request,
            title=gettext("Erase personal data"),
            form=form,
            participants=participants[:50],
            more=max(0, len(participants) - 50),
            count=len(participants),
            action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
            **extra,
        )
        return TemplateResponse(request, "admin/surveys/participant/erase.html", context)


def _refusal(exc: LinkUnavailable, participants: list[Participant]) -> str:
    """Why no link was given, naming the participants concerned (the first ten)."""
    named = [str(p) for p in participants if p.pk in exc.errors]
    if not named:
        return exc.message
    more = len(named) - 10
    listed = ", ".join(named[:10]) + (f", +{more}" if more > 0 else "")
    return f"{exc.message} ({listed})"


def _is_erased(participant: Participant) -> bool:
    return ErasureRecord.objects.filter(participant=participant).exists()


def _data_uri(text: str) -> str:
    """A ``data:`` URI of a UTF-8 CSV: the download lives in the page, not on the server."""
    payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return f"data:text/csv;charset=utf-8;base64,{payload}"
