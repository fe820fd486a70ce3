"""Attaching files and taking them off: checked, stored through Django's storage, in the history.

`attach(target, upload, actor=)` checks that the actor may attach to the target, that the file is
within TIKTING_ATTACHMENT_MAX_BYTES and of an allowed type (its extension in
TIKTING_ATTACHMENT_TYPES and its first bytes of the kind that extension promises), keeps it under a
random name in the default storage with its sanitised name beside it, and records the upload on
the target's history (core.audit). `remove` lets the uploader or a manager take a file off.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import models, transaction
from django.db.models import QuerySet

from tikting.accounts.models import Actor, Role, User
from tikting.core import audit
from tikting.core.exceptions import PermissionDeniedError
from tikting.lib import display, files

from .models import Attachment
from .registry import Target, target_for

SNIFF_BYTES = 4096


def _user(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) else None


def _target(obj: models.Model) -> Target:
    target = target_for(obj)
    if target is None:
        raise ValidationError({"target": f"Files cannot be attached to {obj._meta.verbose_name}."})
    return target


def can_view(actor: Actor, obj: models.Model | None) -> bool:
    if obj is None:  # its target is gone
        return False
    target = target_for(obj)
    return actor is None or (target is not None and target.can_view(actor, obj))


def can_attach(actor: Actor, obj: models.Model) -> bool:
    target = target_for(obj)
    return target is not None and (actor is None or target.can_attach(actor, obj))


def can_remove(actor: Actor, attachment: Attachment) -> bool:
    """The uploader (who may still see the target) or a manager."""
    if actor is None:
        return True
    if not actor.is_authenticated or not can_view(actor, attachment.target):
        return False
    return actor.has_role(Role.MANAGER) or (
        attachment.uploaded_by_id is not None and attachment.uploaded_by_id == actor.pk
    )


def for_target(obj: models.Model) -> QuerySet[Attachment]:
    return Attachment.objects.filter(
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False),
        object_id=str(obj.pk),
    ).select_related("uploaded_by")


def allowed_extensions() -> list[str]:
    return sorted(settings.TIKTING_ATTACHMENT_TYPES)


def check_file(name: str, size: int, head: bytes) -> tuple[str, str]:
    """(the sanitised name, the type to serve it as), or ValidationError on `file` saying why."""
    clean = files.safe_name(name)
    limit = settings.TIKTING_ATTACHMENT_MAX_BYTES
    if size > limit:
        raise ValidationError(
            {
                "file": f"'{clean}' is {display.size(size)}; attachments may be at most "
                f"{display.size(limit)} (TIKTING_ATTACHMENT_MAX_BYTES)."
            }
        )
    if size == 0:
        raise ValidationError({"file": f"'{clean}' is empty."})
    ext = files.extension(clean)
    kinds: dict[str, tuple[str, str]] = settings.TIKTING_ATTACHMENT_TYPES
    if ext not in kinds:
        raise ValidationError(
            {
                "file": f"'{clean}': files of type '.{ext or '(none)'}' are not accepted; allowed: "
                f"{', '.join('.' + e for e in allowed_extensions())}."
            }
        )
    served, expected = kinds[ext]
    found = files.sniff(head)
    if found != expected:
        raise ValidationError(
            {"file": f"'{clean}' does not contain what a .{ext} file does: its content is not accepted."}
        )
    return clean, served


def _head(upload: UploadedFile) -> bytes:
    upload.seek(0)
    head = upload.read(SNIFF_BYTES)
    upload.seek(0)
    return head if isinstance(head, bytes) else head.encode()


def _digest(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def _record(attachment: Attachment, target_obj: models.Model, *, action: str, actor: Actor) -> None:
    target = _target(target_obj)
    what = f"{attachment.name} ({display.size(attachment.size)})"
    on = "" if target.root(target_obj) == target_obj else f" on the {target.label}"
    audit.record(
        attachment,
        action=action,
        actor=actor,
        root=target.root(target_obj),
        changes={"attachment": [None, what] if action == "create" else [what, None]},
        message=("Attached " if action == "create" else "Removed the attachment ") + what + on,
    )


def attach(target_obj: models.Model, upload: UploadedFile, *, actor: Actor) -> Attachment:
    """Keep `upload` as an attachment of `target_obj` (see the module's docstring)."""
    target = _target(target_obj)
    if not can_attach(actor, target_obj):
        raise PermissionDeniedError(f"You may not attach files to this {target.label}.")
    size = int(upload.size or 0)
    name, served = check_file(upload.name or "", size, _head(upload) if size else b"")
    digest = _digest(upload)
    attachment = Attachment(
        content_type=ContentType.objects.get_for_model(target_obj, for_concrete_model=False),
        object_id=str(target_obj.pk),
        name=name,
        mime_type=served,
        size=size,
        sha256=digest,
        uploaded_by=_user(actor),
    )
    attachment.file.save(name, upload, save=False)  # the storage's own (random) name
    try:
        with transaction.atomic():
            attachment.save()
            _record(attachment, target_obj, action="create", actor=actor)
    except Exception:
        attachment.file.delete(save=False)  # nothing kept of a failed upload
        raise
    return attachment


def remove(attachment: Attachment, *, actor: Actor) -> None:
    """Take a file off its target: the uploader or a manager; the history keeps that it was there."""
    if not can_remove(actor, attachment):
        raise PermissionDeniedError("Only who attached a file, or a manager, may remove it.")
    target_obj = attachment.target
    stored = attachment.file.name or ""
    with transaction.atomic():
        if target_obj is not None:
            _record(attachment, target_obj, action="delete", actor=actor)
        attachment.delete()
        storage = attachment.file.storage
        transaction.on_commit(lambda: storage.delete(stored))


def counts(objects: list[Any]) -> dict[Any, list[Attachment]]:
    """The attachments of several objects of one model, by pk, in one query (comments, minutes)."""
    if not objects:
        return {}
    ct = ContentType.objects.get_for_model(objects[0], for_concrete_model=False)
    found: dict[Any, list[Attachment]] = {obj.pk: [] for obj in objects}
    by_text = {str(obj.pk): obj.pk for obj in objects}
    for attachment in Attachment.objects.filter(content_type=ct, object_id__in=list(by_text)).select_related(
        "uploaded_by"
    ):
        found[by_text[attachment.object_id]].append(attachment)
    return found
