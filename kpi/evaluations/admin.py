"""Admin for evaluations: create one from a run, preview it, sign it off (permission,
password and statement), download the signed PDF, withdraw it. A signed-off evaluation is
read-only here; the services (``services``) refuse any change too.

Evaluations are study-wide: members of any site of the study see them. Their report shows
every site's results, so downloading it, and signing it off, take a role on every site of
the study (as the API asks). Creating one takes the manager role in the study; signing off
and withdrawing the same authority, worked out by ``evaluations.may_sign``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from kpi.scoring.models import EvaluationRun
from surveys.admin.common import (
    EMPTY,
    MANAGER,
    by_study,
    narrow_choices,
    register_scope,
    studies_seen_whole,
)
from surveys.admin.history import HistoryAdmin
from surveys.errors import RuleViolation, add_to_form
from surveys.text import no_control_characters

from . import rendering, review
from . import services as evaluations
from .models import Evaluation

VIEW = "kpi.view_evaluation"

register_scope(Evaluation, by_study("study_id"))  # study-wide, as the rest of the app


class CreateForm(forms.Form):
    run = forms.ModelChoiceField(
        label=_("Run"),
        queryset=EvaluationRun.objects.filter(status=EvaluationRun.Status.SUCCEEDED)
        .select_related("study")
        .order_by("-created_at"),
        help_text=_("The evaluation copies this run's results; later runs do not change it."),
    )
    language = forms.ChoiceField(
        label=_("Report language"), choices=[("ja", _("Japanese")), ("en", _("English"))]
    )


class SignOffForm(forms.Form):
    signer_name = forms.CharField(
        label=_("Your name, as printed in the report"),
        max_length=200,
        validators=[no_control_characters],
    )
    signer_role = forms.CharField(
        label=_("Your role"), max_length=200, required=False, validators=[no_control_characters]
    )
    statement = forms.CharField(
        label=_("Statement"),
        widget=forms.Textarea(attrs={"rows": 4}),
        validators=[no_control_characters],
        help_text=_("Printed in the report beside your name and the time."),
    )
    password = forms.CharField(
        label=_("Your password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("Signing off is an act of its own: confirm it with your password."),
    )


class WithdrawForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[no_control_characters],
    )


def default_statement(language: str) -> str:
    if language == "ja":
        return (
            "私は、本評価の集計結果、その母数、信頼区間および判定を確認し、"
            "その内容が事前に設定した評価指標に基づくものであることを確認しました。"
        )
    return (
        "I have reviewed the results of this evaluation, their bases, intervals and verdicts, "
        "and confirm that they judge the programme against the targets set before it began."
    )


@admin.register(Evaluation)
class EvaluationAdmin(HistoryAdmin):
    # Narrow columns (the study by its code, the rendering within the PDF column): the list
    # fits a 1280 px screen beside the filters.
    list_display = [
        "id",
        "study_column",
        "status",
        "language",
        "created_at",
        "signed_off_at",
        "signer_name",
    ]  # and the PDF (get_list_display)
    list_filter = ["status", "language", "study"]
    list_select_related = ["study"]
    search_fields = ["study__code", "study__name_ja", "signer_name"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "study",
        "run",
        "language",
        "status",
        "created_by",
        "created_at",
        "snapshot_sha256",
        "signed_off_by",
        "signed_off_at",
        "signer_name",
        "signer_role",
        "statement",
        "rendering",
        "rendering_error",
        "pdf_sha256",
        "pdf_size",
        "withdrawn_by",
        "withdrawn_at",
        "withdrawal_reason",
    ]
    fieldsets = [
        (None, {"fields": ["study", "run", "language", "status", "created_by", "created_at"]}),
        (
            _("Sign-off"),
            {
                "fields": [
                    "signed_off_by",
                    "signed_off_at",
                    "signer_name",
                    "signer_role",
                    "statement",
                ]
            },
        ),
        (
            _("Integrity"),
            {
                "fields": [
                    "snapshot_sha256",
                    "rendering",
                    "rendering_error",
                    "pdf_sha256",
                    "pdf_size",
                ]
            },
        ),
        (_("Withdrawal"), {"fields": ["withdrawn_by", "withdrawn_at", "withdrawal_reason"]}),
    ]
    change_form_template = "admin/kpi/evaluation/change_form.html"
    allow_revert = False  # it changes only by signing off and withdrawing

    def base_queryset(self, request: HttpRequest) -> QuerySet[Evaluation]:
        return super().base_queryset(request).select_related("study", "run")

    @admin.display(description=_("study"), ordering="study__code")
    def study_column(self, obj: Evaluation) -> str:
        return format_html('<span title="{}">{}</span>', obj.study.name, obj.study.code)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # every change is an act with its own view: sign off, withdraw

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # evaluations are records; a wrong one is withdrawn, not deleted

    # Who may do what with an evaluation the caller sees.

    def _sees_whole_study(self, request: HttpRequest, evaluation: Evaluation) -> bool:
        whole = studies_seen_whole(request.user)
        return whole is None or evaluation.study_id in whole

    def can_read_report(self, request: HttpRequest, evaluation: Evaluation) -> bool:
        return request.user.has_perm(VIEW) and self._sees_whole_study(request, evaluation)

    def can_sign_off(self, request: HttpRequest, evaluation: Evaluation) -> bool:
        return evaluations.may_sign(request.user, evaluation, permission=evaluations.SIGN_OFF)

    def can_withdraw(self, request: HttpRequest, evaluation: Evaluation) -> bool:
        return evaluations.may_sign(request.user, evaluation, permission=evaluations.WITHDRAW)

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        # The download column links only the reports the caller may read (worked out once
        # for the page, not per row).
        whole = studies_seen_whole(request.user)

        @admin.display(description=_("PDF"))
        def download_link(obj: Evaluation) -> str:
            if whole is not None and obj.study_id not in whole:
                return EMPTY
            url = reverse("admin:kpi_evaluation_download", args=[obj.pk])
            if obj.pdf:
                return format_html('<a href="{}">{}</a>', url, gettext("signed PDF"))
            if obj.rendering:  # signed off, its PDF being rendered or failed
                return obj.get_rendering_display()
            return format_html('<a href="{}">{}</a>', url, gettext("draft preview"))

        return [*self.list_display, download_link]

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/download/",
                wrap(self.download_view),
                name="kpi_evaluation_download",
            ),
            path(
                "<path:object_id>/sign-off/",
                wrap(self.sign_off_view),
                name="kpi_evaluation_sign_off",
            ),
            path(
                "<path:object_id>/withdraw/",
                wrap(self.withdraw_view),
                name="kpi_evaluation_withdraw",
            ),
            *super().get_urls(),
        ]

    def _get(self, request: HttpRequest, object_id: str) -> Evaluation:
        """The evaluation, in the caller's scope: 403 without the view permission (the same
        for every id), then 404 for one outside the scope."""
        if not request.user.has_perm(VIEW):
            raise PermissionDenied
        return self.get_object(request, unquote(object_id))

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = CreateForm(request.POST or None, initial={"run": request.GET.get("run")})
        narrow_choices(form.fields.values(), request.user, at_least=MANAGER)
        if request.method == "POST" and form.is_valid():
            try:
                evaluation = evaluations.evaluation_create(
                    run=form.cleaned_data["run"],
                    user=request.user,
                    language=form.cleaned_data["language"],
                )
            except RuleViolation as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, gettext("The draft evaluation was created."))
                return HttpResponseRedirect(
                    reverse("admin:kpi_evaluation_change", args=[evaluation.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Create an evaluation"),
            "form": form,
        }
        return TemplateResponse(request, "admin/kpi/evaluation/create.html", context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        evaluation = self._get(request, object_id)
        extra = {
            **(extra_context or {}),
            "evaluation": evaluation,
            "can_download": self.can_read_report(request, evaluation),
            "can_sign_off": evaluation.status == Evaluation.Status.DRAFT
            and self.can_sign_off(request, evaluation),
            "can_withdraw": evaluation.status == Evaluation.Status.SIGNED_OFF
            and self.can_withdraw(request, evaluation),
            "rendering_pending": evaluation.rendering == Evaluation.Rendering.PENDING,
        }
        return super().change_view(request, object_id, form_url, extra)

    def download_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        evaluation = self._get(request, object_id)
        if not self.can_read_report(request, evaluation):
            raise PermissionDenied
        name = rendering.download_name(evaluation)
        if evaluation.pdf:
            return FileResponse(
                evaluation.pdf.open("rb"),
                as_attachment=True,
                filename=name,
                content_type="application/pdf",
            )
        if evaluation.is_frozen:
            raise Http404(gettext("The signed PDF is not ready yet."))
        pdf = rendering.evaluation_preview(evaluation)
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def sign_off_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        evaluation = self._get(request, object_id)
        if not self.can_sign_off(request, evaluation):
            raise PermissionDenied
        initial = {
            "signer_name": request.user.get_full_name() or request.user.get_username(),  # type: ignore[union-attr]
            "statement": default_statement(evaluation.language),
        }
        form = SignOffForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                evaluations.evaluation_sign_off(
                    evaluation=evaluation,
                    user=request.user,  # type: ignore[arg-type]
                    password=form.cleaned_data["password"],
                    statement=form.cleaned_data["statement"],
                    signer_name=form.cleaned_data["signer_name"],
                    signer_role=form.cleaned_data["signer_role"],
                )
            except RuleViolation as exc:
                add_to_form(form, exc)
            else:
                messages.success(
                    request, gettext("Signed off. The signed PDF is being rendered and signed.")
                )
                return HttpResponseRedirect(
                    reverse("admin:kpi_evaluation_change", args=[evaluation.pk])
                )
        return self._act(
            request,
            evaluation,
            form,
            gettext("Sign off this evaluation"),
            "sign_off.html",
            review=review.review(evaluation),
            run_url=reverse("admin:kpi_evaluationrun_change", args=[evaluation.run_id]),
        )

    def withdraw_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        evaluation = self._get(request, object_id)
        if not self.can_withdraw(request, evaluation):
            raise PermissionDenied
        form = WithdrawForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                evaluations.evaluation_withdraw(
                    evaluation=evaluation,
                    user=request.user,  # type: ignore[arg-type]
                    reason=form.cleaned_data["reason"],
                )
            except RuleViolation as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, gettext("The evaluation was withdrawn."))
                return HttpResponseRedirect(
                    reverse("admin:kpi_evaluation_change", args=[evaluation.pk])
                )
        return self._act(
            request, evaluation, form, gettext("Withdraw this evaluation"), "withdraw.html"
        )

    def _act(
        self,
        request: HttpRequest,
        evaluation: Evaluation,
        form: forms.Form,
        title: str,
        template: str,
        **extra: Any,
    ) -> HttpResponse:
        context = {
            **extra,
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": evaluation,
            "evaluation": evaluation,
            "title": title,
            "form": form,
        }
        return TemplateResponse(request, f"admin/kpi/evaluation/{template}", context)
