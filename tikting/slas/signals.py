"""An SLA definition saved or deleted (record pages, API, admin, shell) re-applies itself, through
a background task, to the incidents it covered before and covers after (its priority; its service
unless it is a general definition). Bulk writes bypass signals: the generic importer enqueues the
task itself after an `sla` import.

A deleted service takes its SLA definitions out of use: they are deactivated (the foreign key then
empties them, and an active service-less definition would silently become a general one), and
the incidents of their priorities are re-evaluated (the service's incidents, now without a
service, fall to the general definitions)."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from tikting.cmdb.models import Service

from .models import SLADefinition
from .services import scope_of
from .tasks import schedule_reapply

_FIELDS = ("service_id", "priority", "response_minutes", "resolution_minutes", "calendar", "day_start",
           "day_end", "weekdays", "active")  # fmt: skip


@receiver(pre_delete, sender=Service, dispatch_uid="slas_service_deleted")
def _service_deleted(sender, instance: Service, **kwargs) -> None:
    own = SLADefinition.objects.filter(service=instance)
    priorities = sorted(set(own.filter(active=True).values_list("priority", flat=True)))
    if not priorities:
        return
    own.update(active=False)
    schedule_reapply([scope_of(None, priority) for priority in priorities])


@receiver(pre_save, sender=SLADefinition, dispatch_uid="slas_remember_scope")
def _remember(sender, instance: SLADefinition, raw=False, **kwargs) -> None:
    instance._sla_before = None
    if instance.pk and not raw:
        instance._sla_before = sender.objects.filter(pk=instance.pk).values(*_FIELDS).first()


@receiver(post_save, sender=SLADefinition, dispatch_uid="slas_reapply_on_save")
def _saved(sender, instance: SLADefinition, created: bool, raw=False, **kwargs) -> None:
    if raw:
        return
    before = getattr(instance, "_sla_before", None)
    if before is not None and all(before[f] == getattr(instance, f) for f in _FIELDS):
        return  # only the name changed: no incident is affected
    scopes = [scope_of(instance.service_id, instance.priority)]
    if before is not None and (before["service_id"], before["priority"]) != (
        instance.service_id,
        instance.priority,
    ):
        scopes.append(scope_of(before["service_id"], before["priority"]))
    schedule_reapply(scopes)


@receiver(post_delete, sender=SLADefinition, dispatch_uid="slas_reapply_on_delete")
def _deleted(sender, instance: SLADefinition, **kwargs) -> None:
    schedule_reapply([scope_of(instance.service_id, instance.priority)])
