"""A study's response exports in the admin: the "Export responses" page (a format, a
language, the caller's earlier exports with their state and a download link) and the
download. Any member of the study with the permission to view responses may export; the
file holds their sites' responses only, and only they may download it."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..exports import records as exports
from ..exports.services import export_request
from ..models import Language, ResponseExport, Study


class ExportForm(forms.Form):
    format = forms.ChoiceField(
        label=gettext_lazy("Format"),
        choices=ResponseExport.Format.choices,
        initial=ResponseExport.Format.XLSX,
        widget=forms.RadioSelect,
    )
    language = forms.ChoiceField(
        label=gettext_lazy("Labels in"),
        choices=Language.choices,
        help_text=gettext_lazy("Choice labels and variable labels; the codebook has both."),
    )


class StudyExportsMixin:
    """Adds the export page and the download to ``StudyAdmin``."""

    admin_site: Any
    opts: Any

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/export/",
                view(self.export_view),
                name="surveys_study_export",
            ),
            path(
                "<path:object_id>/export/<int:export_id>/download/",
                view(self.export_download_view),
                name="surveys_study_export_download",
            ),
            *super().get_urls(),  # type: ignore[misc]
        ]

    def _study(self, request: HttpRequest, object_id: str) -> Study:
        study = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        if study is None:
            raise Http404
        if not request.user.has_perm("surveys.view_response"):
            raise PermissionDenied
        return study

    def export_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        study = self._study(request, object_id)
        here = reverse("admin:surveys_study_export", args=[study.pk])
        initial = {"language": (translation.get_language() or Language.JA)[:2]}
        form = ExportForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            export_request(
                user=request.user,
                study=study,
                format=form.cleaned_data["format"],
                language=form.cleaned_data["language"],
            )
            self.message_user(  # type: ignore[attr-defined]
                request,
                _("The export is being written: it appears below when it is ready."),
                messages.SUCCESS,
            )
            return HttpResponseRedirect(here)
        rows = list(
            exports.exports_of(request.user).filter(study=study).order_by("-requested_at")[:20]
        )
        pending = any(
            r.status in (ResponseExport.Status.QUEUED, ResponseExport.Status.RUNNING) for r in rows
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": study,
            "title": _("Export responses"),
            "form": form,
            "exports": rows,
            "pending": pending,
            "file_days": settings.HYOKA_EXPORT_FILE_DAYS,
        }
        return TemplateResponse(request, "admin/surveys/study/export.html", context)

    def export_download_view(
        self, request: HttpRequest, object_id: str, export_id: int
    ) -> HttpResponseBase:
        study = self._study(request, object_id)
        export = exports.exports_of(request.user).filter(study=study, pk=export_id).first()
        path = exports.export_path(export) if export else None
        if export is None or path is None:
            raise Http404
        return FileResponse(
            path.open("rb"),
            as_attachment=True,
            filename=exports.filename(export),
            content_type=exports.CONTENT_TYPES[export.format],
        )
