"""The cross-tab page of a study in the admin, and its CSV and XLSX downloads.

Reached from the study's results page (``StudyResultsAdmin.get_urls``). A GET form: the
table's address says what it shows, so it can be bookmarked, and the downloads are links
with the same parameters. Only the caller's sites are counted (``surveys/scoping.py``):
their columns, and every total, segment and question breakdown, are over those sites.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import ModelAdmin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from surveys import scoping
from surveys.models import Site, Study

from . import crosstab as xt
from .counting import study_forms
from .crosstab_files import XLSX_TYPE, as_csv, as_xlsx
from .crosstab_form import CrosstabForm


def scoped_sites(user: Any, study: Study) -> tuple[list[Site], bool]:
    """The caller's sites of ``study``, and whether they are all of its sites."""
    every = list(Site.objects.filter(study=study).order_by("code"))
    mine = set(scoping.sites(user, Site.objects.filter(study=study)).values_list("pk", flat=True))
    sites = [s for s in every if s.pk in mine]
    return sites, len(sites) == len(every)


def build(user: Any, study: Study, form: CrosstabForm) -> xt.Table:
    sites, whole = scoped_sites(user, study)
    data = form.cleaned_data
    return xt.crosstab(
        study=study,
        sites=sites,
        whole=whole,
        forms=form.forms_,
        question=data["question"],
        by=data["by"],
        segment=data.get("segment"),
        by_question=data.get("by_question") or "",
        confidence=form.confidence_level,
    )


def crosstab_page(model_admin: ModelAdmin, request: HttpRequest, study: Study) -> HttpResponse:
    forms_ = study_forms(study.pk)
    bound = "question" in request.GET
    form = CrosstabForm(request.GET if bound else None, study=study, forms_=forms_)
    table = build(request.user, study, form) if bound and form.is_valid() else None
    download = request.GET.get("download", "")
    if table is not None and download in ("csv", "xlsx"):
        filename = f"{study.code}-{table.question.code}-{table.by}.{download}"
        if download == "csv":
            response = HttpResponse(as_csv(table), content_type="text/csv; charset=utf-8")
        else:
            response = HttpResponse(as_xlsx(table, xt.caption(table)), content_type=XLSX_TYPE)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    query = {k: str(v) for k, v in request.GET.items() if k != "download"}
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "original": study,
        "title": _("Frequencies and cross-tabs"),
        "subtitle": study.name,
        "form": form,
        "table": table,
        "caption": xt.caption(table) if table else "",
        "level": xt.level_text(table) if table else "",
        "cells": _cells(table) if table else [],
        "footers": _footers(table) if table else [],
        "legend": table.legend if table else "",
        "no_questions": not form.questions,
        "csv_url": "?" + urlencode({**query, "download": "csv"}),
        "xlsx_url": "?" + urlencode({**query, "download": "xlsx"}),
    }
    return TemplateResponse(request, "admin/kpi/studyresults/crosstab.html", context)


def _cells(table: xt.Table) -> list[tuple[xt.Item, list[dict[str, Any]]]]:
    """Each cell as the page shows it: a withheld count as its mark ("<5", "x"), and no
    share or interval (with its base, either gives the count back)."""
    out = []
    for row in table.rows:
        cells = []
        for column, c in zip(table.columns, row.cells, strict=True):
            shown = table.chosen(row.item.code, column)
            hidden = table.share_hidden(row.item.code, column)
            cells.append(
                {
                    "n": shown.text,
                    "withheld": shown.n is None,
                    "share": "" if hidden else xt.share_text(c),
                    "interval": "" if hidden else xt.interval_text(c),
                }
            )
        out.append((row.item, cells))
    return out


def _footers(table: xt.Table) -> list[tuple[str, list[str]]]:
    names = [("answered", _("Answered (base)")), ("unanswered", _("Shown, not answered"))]
    if table.question.conditional:
        names.append(("not_shown", _("Not shown")))
    return [
        (label, [table.figure(name, column).text for column in table.columns])
        for name, label in names
    ]
