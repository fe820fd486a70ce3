"""Attachments over HTTP (mounted at /api/attachments): list a target's files, upload, download, remove.

A target is named `<app>.<model>:<id>` (`improvement.item:12`, `incidents.incident:40`,
`improvement.comment:7`, `governance.minute:3`). Who may not see the target gets 404, as for a
file that does not exist.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, File, Form, Router, Schema, Status, UploadedFile
from ninja.errors import HttpError

from tikting.core.api import UserBrief, errors
from tikting.core.exceptions import PermissionDeniedError

from . import registry
from . import services as S
from .models import Attachment
from .serving import file_response

router = Router(tags=["attachments"])


class AttachmentOut(Schema):
    id: int
    target: str
    name: str
    mime_type: str
    size: int = Field(description="Bytes")
    sha256: str
    uploaded_by: UserBrief | None
    uploaded_at: str
    download_url: str

    @staticmethod
    def resolve_target(obj: Attachment) -> str:
        return f"{obj.content_type.app_label}.{obj.content_type.model}:{obj.object_id}"

    @staticmethod
    def resolve_uploaded_at(obj: Attachment) -> str:
        return obj.uploaded_at.isoformat()

    @staticmethod
    def resolve_download_url(obj: Attachment) -> str:
        return f"/api/attachments/{obj.pk}/download"


def _actor(request: HttpRequest) -> Any:
    return request.auth  # type: ignore[attr-defined]


def _target(request: HttpRequest, key: str) -> Any:
    try:
        obj, target = registry.resolve(key)
    except ValidationError as exc:
        raise HttpError(404, " ".join(m for msgs in exc.message_dict.values() for m in msgs)) from exc
    if not target.can_view(_actor(request), obj):
        raise HttpError(404, "Not found.")
    return obj


def _visible(request: HttpRequest, attachment_id: int) -> Attachment:
    attachment = get_object_or_404(
        Attachment.objects.select_related("content_type", "uploaded_by"), pk=attachment_id
    )
    obj = attachment.target
    if obj is None or not S.can_view(_actor(request), obj):
        raise HttpError(404, "Not found.")
    return attachment


@router.get("", response={200: list[AttachmentOut], **errors(404)}, summary="List a target's attachments")
def list_attachments(request: HttpRequest, target: str):
    """The files attached to `target` (e.g. `improvement.item:12`), oldest first."""
    return list(S.for_target(_target(request, target)).select_related("content_type"))


@router.post("", response={201: AttachmentOut, **errors(403, 404, 413)}, summary="Attach a file")
def upload_attachment(request: HttpRequest, file: File[UploadedFile], target: str = Form(...)):
    """Multipart form: `target` and `file`. Refused (422, on `file`) past TIKTING_ATTACHMENT_MAX_BYTES,
    for a type outside TIKTING_ATTACHMENT_TYPES, or when the content is not what its extension says."""
    obj = _target(request, target)
    if not S.can_attach(_actor(request), obj):
        raise PermissionDeniedError("You may not attach files here.")
    attachment = S.attach(obj, file, actor=_actor(request))
    return Status(201, attachment)


@router.get("/{attachment_id}/download", response={200: None, **errors(404)}, summary="Download a file")
def download_attachment(request: HttpRequest, attachment_id: int) -> FileResponse:
    """The file as a download (`Content-Disposition: attachment`, `X-Content-Type-Options: nosniff`)."""
    return file_response(_visible(request, attachment_id))


@router.delete("/{attachment_id}", response={204: None, **errors(403, 404)}, summary="Remove a file")
def delete_attachment(request: HttpRequest, attachment_id: int):
    """The uploader or a manager; the target's history keeps that the file was there."""
    S.remove(_visible(request, attachment_id), actor=_actor(request))
    return Status(204, None)
