"""The campaigns' admin: the form (Japanese first, plain help texts), the preview of each
text for a sample participant, and the list of the messages due next. A manager sees the
campaigns of their studies, and changes only those whose every site they manage."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from surveys import scoping
from surveys.admin.common import MANAGER, by_study, register_scope
from surveys.admin.history import HistoryAdmin
from surveys.models import Site

from ..models import Campaign, Delivery
from . import preview as previews
from . import scheduling, services
from .rules import JAPAN

register_scope(Campaign, by_study("study_id"))

UPCOMING_SHOWN = 30


def _sites_reached(campaign: Campaign) -> list[int]:
    chosen = list(campaign.sites.values_list("pk", flat=True))
    return chosen or list(
        Site.objects.filter(study_id=campaign.study_id).values_list("pk", flat=True)
    )


class CampaignForm(forms.ModelForm):
    request: HttpRequest  # set by CampaignAdmin.get_form

    class Meta:
        model = Campaign
        fields = (
            "name",
            "study",
            "sites",
            "active",
            "starts_at",
            "reminder_after_days",
            "max_reminders",
            "quiet_from",
            "quiet_until",
            "audience",
            "channel_order",
            "invitation_ja",
            "reminder_ja",
            "invitation_en",
            "reminder_en",
        )
        widgets = {
            "invitation_ja": forms.Textarea(attrs={"rows": 8}),
            "invitation_en": forms.Textarea(attrs={"rows": 8}),
            "reminder_ja": forms.Textarea(attrs={"rows": 8}),
            "reminder_en": forms.Textarea(attrs={"rows": 8}),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        study, sites = data.get("study"), list(data.get("sites") or [])
        user = self.request.user
        if study is not None and not sites and not scoping.sees_everything(user):
            mine = scoping.sites(user, study.sites.all(), at_least=MANAGER).count()
            if mine != study.sites.count():
                self.add_error(
                    "sites",
                    _(
                        "Choose the sites this campaign is for: you manage only some "
                        "sites of this study."
                    ),
                )
        if study is not None and any(site.study_id != study.pk for site in sites):
            self.add_error("sites", services.OTHER_STUDY)
        for name, message in services.start_problems(
            starts_at=data.get("starts_at"),
            quiet_from=data.get("quiet_from"),
            quiet_until=data.get("quiet_until"),
            previous=self.initial.get("starts_at") if self.instance.pk else None,
            now=timezone.now(),
        ).items():
            self.add_error(name, message)
        return data


@admin.register(Campaign)
class CampaignAdmin(HistoryAdmin):
    form = CampaignForm
    allow_revert = False  # a saved version goes back only through the checks of the form
    list_display = ("name", "study", "sites_column", "starts_at", "active", "next_due")
    list_filter = ("active", "study")
    search_fields = ("name",)
    filter_horizontal = ("sites",)
    readonly_fields = ("preview", "upcoming")
    fieldsets = (
        (None, {"fields": ("name", "study", "sites", "active")}),
        (
            _("When"),
            {
                "fields": (
                    "starts_at",
                    "reminder_after_days",
                    "max_reminders",
                    "quiet_from",
                    "quiet_until",
                )
            },
        ),
        (_("Who and how"), {"fields": ("audience", "channel_order")}),
        (
            _("Messages"),
            {"fields": ("invitation_ja", "reminder_ja", "invitation_en", "reminder_en")},
        ),
        (_("Preview and next messages"), {"fields": ("preview", "upcoming")}),
    )

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        form.request = request
        return form

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fieldsets if obj is not None else self.fieldsets[:-1]

    # A manager changes a campaign only if they manage every site it reaches.
    def _manages_all(self, request: HttpRequest, obj: Campaign | None) -> bool:
        if obj is None or scoping.sees_everything(request.user):
            return True
        reached = _sites_reached(obj)
        mine = scoping.sites(request.user, Site.objects.filter(pk__in=reached), at_least=MANAGER)
        return mine.count() == len(reached)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self._manages_all(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_delete_permission(request, obj) and self._manages_all(request, obj)
        return allowed and (obj is None or not obj.deliveries.exists())

    def save_model(self, request: HttpRequest, obj: Campaign, form: Any, change: bool) -> None:
        services.campaign_save(campaign=obj, sites=form.cleaned_data["sites"], now=timezone.now())

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        for formset in formsets:  # the sites were saved with the campaign (campaign_save)
            self.save_formset(request, form, formset, change=change)

    @admin.display(description=_("sites"))
    def sites_column(self, obj: Campaign) -> str:
        return ", ".join(str(s) for s in obj.sites.all()) or gettext("every site")

    @admin.display(description=_("next message due"))
    def next_due(self, obj: Campaign) -> str:
        upcoming = scheduling.campaign_upcoming(campaign=obj, limit=1)
        if not obj.active or not upcoming:
            return "\u2014"
        return date_format(upcoming[0].due.at.astimezone(JAPAN), "DATETIME_FORMAT")

    @admin.display(description=_("preview"))
    def preview(self, obj: Campaign) -> SafeString:
        site = (
            Site.objects.filter(pk__in=_sites_reached(obj))
            .select_related("study", "sender")
            .first()
        )
        if site is None:
            return format_html("{}", gettext("The study has no site yet."))
        shown = previews.campaign_preview(obj, site=site)
        standard = gettext("standard text")
        own = gettext("this campaign's text")
        rows = format_html_join(
            "",
            "<h4>{}</h4>{}",
            (
                (
                    f"{KIND_WORDS[kind]} ({LANGUAGE_WORDS[language]})",
                    format_html_join(
                        "",
                        '<p class="hyoka-preview-channel"><strong>{}</strong> ({}){}</p>'
                        '<pre style="white-space: pre-wrap; overflow-wrap: anywhere; '
                        'max-width: 60em; font-family: inherit;">{}</pre>',
                        (
                            (
                                Delivery.Channel(item.channel).label,
                                standard if item.standard else own,
                                format_html("<br>{}", item.subject) if item.subject else "",
                                item.text,
                            )
                            for item in items
                        ),
                    ),
                )
                for (kind, language), items in shown.items()
            ),
        )
        return format_html(
            "<p>{}</p>{}",
            gettext("As a participant of %(site)s would read it (the link is an example).")
            % {"site": site},
            rows,
        )

    @admin.display(description=_("next messages"))
    def upcoming(self, obj: Campaign) -> SafeString:
        planned = scheduling.campaign_upcoming(campaign=obj, limit=UPCOMING_SHOWN)
        letters = (
            reverse("admin:fieldwork_delivery_changelist")
            + f"?campaign__id__exact={obj.pk}&channel__exact=letter&status__exact=queued"
        )
        link = format_html('<p><a href="{}">{}</a></p>', letters, gettext("Letters to print"))
        if not planned:
            return format_html("<p>{}</p>{}", gettext("No message is due."), link)
        sites = dict(
            Site.objects.filter(pk__in={p.site_id for p in planned}).values_list("pk", "code")
        )
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    date_format(p.due.at.astimezone(JAPAN), "DATETIME_FORMAT"),
                    p.reference,
                    sites.get(p.site_id, ""),
                    step_words(p.due.step),
                    CHANNEL_WORDS[p.channel],
                )
                for p in planned
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>"
            "</thead><tbody>{}</tbody></table>{}",
            gettext("due (Japan time)"),
            gettext("participant"),
            gettext("site"),
            gettext("message"),
            gettext("channel"),
            body,
            link,
        )


KIND_WORDS: dict[str, Any] = {
    Delivery.Kind.INVITATION: _("Invitation"),
    Delivery.Kind.REMINDER: _("Reminder"),
}
LANGUAGE_WORDS = {"ja": _("Japanese"), "en": _("English")}
CHANNEL_WORDS = dict(Delivery.Channel.choices)


def step_words(step: int) -> str:
    if step == 0:
        return str(KIND_WORDS[Delivery.Kind.INVITATION])
    return str(pgettext_lazy("campaign step", "Reminder %(number)d") % {"number": step})
