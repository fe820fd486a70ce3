from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db import models


def linked_items(record: models.Model) -> list[Any]:
    """The register's links (SourceLink, with their item and its owner) to an ITSM record."""
    from django.contrib.contenttypes.models import ContentType

    from .models import SourceLink

    ct = ContentType.objects.get_for_model(record)
    return list(
        SourceLink.objects.filter(content_type=ct, object_id=str(record.pk))
        .select_related("item", "item__owner")
        .order_by("-item__id")
    )


class ImprovementConfig(AppConfig):
    name = "tikting.improvement"
    label = "improvement"

    def ready(self) -> None:
        from tikting.records.registry import register_linker

        register_linker(linked_items)

        from .hooks import register

        register()
