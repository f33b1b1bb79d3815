"""Response exports through the API: in the request (``GET /responses/export/?format=``)
or as a task (``POST /exports/``, then ``GET /exports/{id}/`` until ``succeeded``, then
``GET /exports/{id}/download/``). Every export is recorded (``surveys/exports/services.py``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.db.models import QuerySet
from django.http import FileResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response as APIResponse

from .. import scoping
from ..exports import csv_file
from ..exports import records as exports
from ..exports.reading import Reader
from ..exports.services import export_request
from ..history import Reason, acting
from ..models import Language, Response, ResponseExport, Site, Study
from .filters import ResponseFilter
from .negotiation import FileContentNegotiation
from .permissions import ModelPermissions, ScopedRelatedField

FORMAT_HELP = (
    "`csv` (the default): codes and `<code>__label` columns, streamed. `xlsx`: a data sheet "
    "(one 0/1 column per choice of a multiple choice) and a codebook sheet. `sav` (SPSS) "
    "and `dta` (Stata 14+, release 118): Japanese variable and value labels, 'not shown' and "
    "'not answered' as user-defined (.sav: -1, -9) or extended (.dta: .a, .b) missing "
    "values. Large exports: `POST /api/v1/exports/`."
)

FILE_RESPONSES = {
    (200, content_type.split(";")[0]): OpenApiResponse(OpenApiTypes.BINARY)
    for content_type in exports.CONTENT_TYPES.values()
    if not content_type.startswith("text/")
}


class ExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(
        choices=ResponseExport.Format.choices, default=ResponseExport.Format.CSV
    )


def _language(request: Request) -> str:
    from django.utils import translation

    return (translation.get_language() or Language.JA)[:2]


def _filters(request: Request) -> dict[str, Any]:
    """The filters the list applied, as the record keeps them: only the filter set's own
    parameters (their values have passed its validation); anything else in the query is
    ignored by the list and not recorded (a NUL byte in an unknown parameter once reached
    PostgreSQL's JSON column and failed the request)."""
    applied = ResponseFilter.base_filters
    return {k: v for k, v in request.query_params.items() if k in applied}


def _study(queryset: QuerySet[Response], request: Request) -> Study | None:
    """The study the export was filtered to, for the record (the filter checked the id)."""
    study_id = request.query_params.get("study", "")
    if not study_id.isdigit():
        return None
    return scoping.studies(request.user).filter(pk=int(study_id)).first()


def export_response(request: Request, queryset: QuerySet[Response]) -> Any:
    """The export of ``queryset`` (scoped and filtered) in the request, recorded."""
    query = ExportQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    format = query.validated_data["format"]
    language = _language(request)
    export = exports.export_begin(
        user=request.user,
        study=_study(queryset, request),
        format=format,
        language=language,
        filters=_filters(request),
    )
    reader = Reader(queryset, language=language)
    if format == ResponseExport.Format.CSV:
        response: Any = StreamingHttpResponse(
            _recorded(export, reader), content_type=exports.CONTENT_TYPES[format]
        )
    else:
        # Written to a temporary file (XLSX with flat memory), then sent from it; the
        # file is opened only when the body is read and removed when the response is
        # closed (a WSGI server always closes it), so no handle waits for the collector.
        descriptor, name = tempfile.mkstemp(suffix=f".{format}")
        os.close(descriptor)
        path = Path(name)
        try:
            rows = exports.WRITERS[format](reader, path)
        except Exception as error:
            path.unlink(missing_ok=True)
            exports.export_fail(
                export=export, error=getattr(error, "message", "failed"), rows=reader.rows_written
            )
            raise
        exports.export_finish(export=export, rows=rows)
        response = StreamingHttpResponse(_chunks(path), content_type=exports.CONTENT_TYPES[format])
        response["Content-Length"] = str(path.stat().st_size)
        response._resource_closers.append(lambda: path.unlink(missing_ok=True))
    response["Content-Disposition"] = f'attachment; filename="{exports.filename(export)}"'
    response["X-Export-Id"] = str(export.pk)
    return response


def _chunks(path: Path, size: int = 1 << 16) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def _recorded(export: ResponseExport, reader: Reader) -> Iterator[str]:
    """The CSV stream; the export is recorded as finished, with its row count, once the
    last row is sent (a client that stops reading leaves it ``running``)."""
    yield from csv_file.stream(reader)
    # Sent after the view returned: the request is no longer there to name the channel.
    with acting(Reason.API.value):
        exports.export_finish(export=export, rows=reader.rows_written)


class ExportSerializer(serializers.ModelSerializer):
    study = ScopedRelatedField(
        scope=scoping.studies, at_least="viewer", queryset=Study.objects.all()
    )
    site = ScopedRelatedField(
        scope=scoping.sites,
        at_least="viewer",
        queryset=Site.objects.all(),
        required=False,
        write_only=True,
        help_text="Only this site's responses (one of the caller's sites).",
    )
    response_status = serializers.ChoiceField(
        choices=Response.Status.choices,
        required=False,
        write_only=True,
        help_text="Only draft or only submitted responses.",
    )
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ResponseExport
        fields = [
            "id",
            "study",
            "site",
            "response_status",
            "format",
            "language",
            "filters",
            "status",
            "rows",
            "requested_at",
            "finished_at",
            "error",
            "expired_at",
            "expired_because",
            "download_url",
        ]
        read_only_fields = [
            "filters",
            "status",
            "rows",
            "requested_at",
            "finished_at",
            "error",
            "expired_at",
            "expired_because",
        ]
        extra_kwargs = {"language": {"required": False}}

    def get_download_url(self, obj: ResponseExport) -> str | None:
        if obj.status != ResponseExport.Status.SUCCEEDED or not obj.file:
            return None  # not ready, or sent in the request (never stored)
        return reverse("api:export-download", args=[obj.pk])

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        site = attrs.get("site")
        if site is not None and site.study_id != attrs["study"].pk:
            raise serializers.ValidationError({"site": _("This site is not in that study.")})
        return attrs


class ExportViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's own response exports, made by a background task: ask with ``POST``
    (202), poll until ``status`` is ``succeeded``, then download. Another user's export
    does not exist for the caller (404)."""

    serializer_class = ExportSerializer
    permission_classes = [ModelPermissions]
    queryset = ResponseExport.objects.none()
    action_permissions = {
        "create": ["surveys.view_response"],
        "list": ["surveys.view_response"],
        "retrieve": ["surveys.view_response"],
        "download": ["surveys.view_response"],
    }

    def get_queryset(self) -> QuerySet[ResponseExport]:
        return exports.exports_of(self.request.user).order_by("-requested_at", "-pk")

    @extend_schema(
        responses={202: ExportSerializer},
        description="Queue an export of the study's responses on the caller's sites. "
        + FORMAT_HELP,
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> APIResponse:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        filters: dict[str, Any] = {}
        if data.get("site") is not None:
            filters["site"] = data["site"].pk
        if data.get("response_status"):
            filters["status"] = data["response_status"]
        export = export_request(
            user=request.user,
            study=data["study"],
            format=data["format"],
            language=data.get("language") or _language(request),
            filters=filters,
        )
        export.refresh_from_db()
        body = self.get_serializer(export).data
        location = reverse("api:export-detail", args=[export.pk])
        return APIResponse(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})

    @extend_schema(
        responses={
            **FILE_RESPONSES,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR),
        },
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="download",
        url_name="download",
        content_negotiation_class=FileContentNegotiation,
    )
    def download(self, request: Request, pk: str | None = None) -> FileResponse:
        """The export's file, once it is ready (404 before)."""
        export = self.get_object()
        path = exports.export_path(export)
        if path is None:
            raise NotFound(_("This export is not ready, or its file is gone."))
        response = FileResponse(
            path.open("rb"),
            content_type=exports.CONTENT_TYPES[export.format],
            as_attachment=True,
            filename=exports.filename(export),
        )
        return response


EXPORT_PARAMETERS = [
    OpenApiParameter(
        "format",
        str,
        enum=[c for c, _label in ResponseExport.Format.choices],
        description=FORMAT_HELP,
    )
]
