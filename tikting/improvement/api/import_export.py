"""Import and export of the register as files (CSV, JSON, JSON Lines), over tikting.improvement.io."""

import codecs
import tempfile
from io import TextIOWrapper
from typing import IO, Literal, cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpRequest
from ninja import File, Form, Query, Status, UploadedFile

from tikting.core.api import errors

from .. import filtersets, io
from .. import permissions as P
from .common import _actor, _items, router
from .inputs import ItemFilters
from .schemas import ImportOut


@router.get(
    "/export",
    response={200: None, **errors(422)},
    summary="Export items (CSV, JSON, JSON Lines)",
    openapi_extra={
        "responses": {
            200: {
                "description": "The filtered register as a file",
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                    "application/x-ndjson": {"schema": {"type": "string"}},
                },
            }
        }
    },
)
def export_register(
    request: HttpRequest, filters: Query[ItemFilters], format: Literal["csv", "json", "jsonl"] = "csv"
):
    """The items matching the register filters, in the format `tikting register export` writes
    (docs/import-formats.md): the same file imports back with POST /items/import."""
    qs = filtersets.filter_items(_items(request), filters.dict(exclude={"sort"}), user=_actor(request))
    qs = filtersets.sort_items(qs, filters.sort)
    # Spooled to disk past 8 MB; FileResponse streams it out and closes it.
    raw = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115
    text = TextIOWrapper(raw, encoding="utf-8", newline="")
    io.export_items(text, fmt=format, qs=qs)
    text.flush()
    text.detach()
    raw.seek(0)
    content_type, ext = {
        "csv": ("text/csv", "csv"),
        "json": ("application/json", "json"),
        "jsonl": ("application/x-ndjson", "jsonl"),
    }[format]
    response = FileResponse(raw, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="tikting-register.{ext}"'
    return response


@router.post("/import", response={200: ImportOut, **errors(403, 413, 422)}, summary="Import items")
def import_register(
    request: HttpRequest,
    file: File[UploadedFile],
    format: Literal["csv", "json", "jsonl"] | None = Form(None),
    dry_run: bool = Form(False),
    create_services: bool = Form(False),
):
    """Create or update items from a CSV / JSON / JSON Lines file (improvement managers).

    Idempotent: rows match on `ref`, else `external_id`. Bad rows are reported by line and field
    and skipped; good rows are kept. `dry_run` checks everything and writes nothing. Files over
    TIKTING_MAX_UPLOAD_BYTES answer 413.
    """
    P.check(_actor(request), P.can_manage, what="import register items")
    if file.size and file.size > settings.TIKTING_MAX_UPLOAD_BYTES:
        return Status(413, {"detail": f"The file is over {settings.TIKTING_MAX_UPLOAD_BYTES} bytes."})
    fmt = io.format_for(file.name, format)
    # A StreamReader reads text as a text file does (read, readline, iteration); typeshed does not
    # declare it an IO[str].
    stream = cast(IO[str], codecs.getreader("utf-8-sig")(file, "strict"))
    try:
        result = io.import_items(
            stream, fmt=fmt, actor=_actor(request), dry_run=dry_run, create_services=create_services
        )
    except UnicodeDecodeError as exc:
        raise ValidationError({"file": "The file is not UTF-8 text."}) from exc
    if result.file_error:  # nothing imported: the whole request failed
        error = result.file_error
        raise ValidationError({"file": f"Line {error.line}: {error.message}"})
    return result.as_dict()
