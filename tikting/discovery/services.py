"""The CMDB health page's reconciliation actions, one service per verb (docs/discovery.md).

Each takes the acting user as `actor=` (None = the system: the CLI, scheduled work), checks that
they may act (administrators and managers; everyone else reads), locks the rows it changes,
refuses a stale `expected_version` with ConflictError, writes the CI's history (core.audit) and
runs in one transaction:

- register_ci / register_cis: a discovered, unregistered device becomes a registered CI;
- retire_ci: a CI discovery no longer sees (or any registered one) is retired;
- merge_duplicate / dismiss_duplicate: two CIs that are one device become one, or are not;
- accept_drift / reject_drift: take the discovered value, or keep the CI's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from tikting.accounts.models import Actor, Role, User
from tikting.cmdb.models import ConfigurationItem, Service
from tikting.core import audit
from tikting.core.exceptions import ConflictError, PermissionDeniedError

from .models import Decision, DiscoveredDevice, DriftItem, DuplicateCandidate, MacAddress

__all__ = [
    "accept_drift",
    "can_act",
    "dismiss_duplicate",
    "merge_duplicate",
    "register_ci",
    "register_cis",
    "reject_drift",
    "retire_ci",
]

CI = ConfigurationItem
Versioned = TypeVar("Versioned", ConfigurationItem, DriftItem, DuplicateCandidate)
# Discovery's own tables: moved by the merge itself, not by the generic re-pointing of references.
OWN_MODELS = (DiscoveredDevice, MacAddress, DriftItem, DuplicateCandidate)
# Identity and inventory values the kept CI takes from the merged one where it has none.
MERGED_ATTRIBUTES = (
    "fqdn",
    "hostname",
    "serial_number",
    "manufacturer",
    "model_name",
    "system_uuid",
    "asset_tag",
    "mac_address",
    "ip_address",
    "os_name",
    "os_version",
    "location",
)
# What a person may set when registering a device.
REGISTER_FIELDS = frozenset({"name", "ci_class", "service", "owner"})


def can_act(user: Actor) -> bool:
    """Administrators and managers act on the CMDB's health; every signed-in user reads it."""
    return isinstance(user, User) and user.has_role(Role.MANAGER)


def _check(actor: Actor, what: str) -> None:
    if actor is None:
        return  # the system
    if not can_act(actor):
        raise PermissionDeniedError(f"Only managers and administrators may {what}.")


def _user(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) and actor.pk else None


def _lock(model: type[Versioned], obj: Versioned, expected_version: int | None) -> Versioned:
    locked = model._default_manager.select_for_update().get(pk=obj.pk)
    if expected_version is not None and locked.version != int(expected_version):
        raise ConflictError(locked, expected_version)
    return locked


def _save_ci(ci: CI, before: dict[str, Any], *, actor: Actor, message: str) -> CI:
    """Save a CI changed in place: version, history (the fields that changed)."""
    ci.version += 1
    ci.full_clean()
    ci.save()
    changes = audit.diff(before, audit.snapshot(ci))
    changes.pop("updated_at", None)
    audit.record(ci, action="update", actor=_user(actor), changes=changes, message=message)
    return ci


def _set_status(ci: CI, status: str, *, actor: Actor, reason: str, extra: dict[str, Any] | None = None) -> CI:
    before = audit.snapshot(ci)
    old = ci.status
    ci.status = status
    for name, value in (extra or {}).items():
        setattr(ci, name, value)
    _save_ci(ci, before, actor=actor, message=reason)
    audit.record_status(ci, old=old, new=status, actor=_user(actor), reason=reason)
    return ci


# --- Unregistered devices ---------------------------------------------------------------------------


def _registration(data: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(data) - REGISTER_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be set when registering."))
    clean: dict[str, Any] = {}
    if data.get("name") not in (None, ""):
        clean["name"] = str(data["name"]).strip()[:200]
    if data.get("ci_class") not in (None, ""):
        if data["ci_class"] not in CI.CIClass.values:
            raise ValidationError({"ci_class": f"Choose a class: {', '.join(CI.CIClass.values)}."})
        clean["ci_class"] = data["ci_class"]
    for name, model in (("service", Service), ("owner", User)):
        value = data.get(name)
        if value in (None, ""):
            continue
        pk = getattr(value, "pk", value)
        found = model._default_manager.filter(pk=pk).first()
        if found is None:
            raise ValidationError({name: f"No {name} with id {pk}."})
        clean[name] = found
    return clean


@transaction.atomic
def register_ci(ci: CI, *, actor: Actor, expected_version: int | None = None, **data: Any) -> CI:
    """Register a discovered device: status "in service", with the name, class, service and
    owner given (REGISTER_FIELDS; the rest as discovered). ValidationError when it is not an
    unregistered device or a field is wrong; ConflictError when it changed since expected_version."""
    _check(actor, "register discovered devices")
    clean = _registration(data)
    locked = _lock(CI, ci, expected_version)
    if locked.status != CI.Status.DISCOVERED:
        raise ValidationError(
            {
                "status": f"{locked} is {locked.get_status_display().lower()}, "
                "not a discovered, unregistered device."
            }
        )
    return _set_status(locked, CI.Status.ACTIVE, actor=actor, reason="Registered from discovery", extra=clean)


@transaction.atomic
def register_cis(cis: list[CI], *, actor: Actor) -> list[CI]:
    """Register several discovered devices as they were discovered (all or none)."""
    _check(actor, "register discovered devices")
    return [register_ci(ci, actor=actor) for ci in cis]


# --- Stale CIs --------------------------------------------------------------------------------------


@transaction.atomic
def retire_ci(ci: CI, *, actor: Actor, reason: str = "", expected_version: int | None = None) -> CI:
    """Retire a CI (one discovery no longer sees, typically): status retired, out of coverage and
    out of identification; its history stays."""
    _check(actor, "retire configuration items")
    locked = _lock(CI, ci, expected_version)
    if locked.status == CI.Status.RETIRED:
        raise ValidationError({"status": f"{locked} is already retired."})
    seen = (
        f"last seen {timezone.localtime(locked.last_seen_at):%Y-%m-%d}"
        if locked.last_seen_at
        else "never seen by discovery"
    )
    why = reason.strip() or f"Retired from the CMDB health page ({seen})"
    return _set_status(locked, CI.Status.RETIRED, actor=actor, reason=why[:300])


# --- Duplicates -------------------------------------------------------------------------------------


def _decide(candidate: Any, status: str, actor: Actor, now: dt.datetime) -> None:
    candidate.status = status
    candidate.decided_at = now
    candidate.decided_by = _user(actor)
    candidate.version += 1
    candidate.save()


@transaction.atomic
def merge_duplicate(
    candidate: DuplicateCandidate,
    *,
    actor: Actor,
    keep: CI | None = None,
    expected_version: int | None = None,
) -> CI:
    """Make two CIs one: `keep` (default the older) takes the other's discovered devices, MACs,
    the references other records hold (incidents, changes, …) and the identity values it lacks;
    the other is retired, its history kept. Returns the CI kept."""
    _check(actor, "merge configuration items")
    locked = _lock(DuplicateCandidate, candidate, expected_version)
    if locked.status != Decision.OPEN:
        raise ValidationError(
            {"status": f"This duplicate candidate is {locked.get_status_display().lower()}."}
        )
    pair = {locked.ci_id: locked.ci_id, locked.other_id: locked.other_id}
    keep_id = locked.ci_id if keep is None else keep.pk
    if keep_id not in pair:
        raise ValidationError({"keep": "Keep one of the two CIs of the candidate."})
    gone_id = locked.other_id if keep_id == locked.ci_id else locked.ci_id
    kept = CI.objects.select_for_update().get(pk=keep_id)
    gone = CI.objects.select_for_update().get(pk=gone_id)
    now = timezone.now()
    moved = _move_references(gone, kept)
    _move_discovery(gone, kept)
    before = audit.snapshot(kept)
    for name in MERGED_ATTRIBUTES:
        if not getattr(kept, name) and getattr(gone, name):
            setattr(kept, name, getattr(gone, name))
            if name in gone.attribute_sources:
                kept.attribute_sources[name] = gone.attribute_sources[name]
    for name in ("first_seen_at", "last_seen_at"):
        values = [v for v in (getattr(kept, name), getattr(gone, name)) if v is not None]
        if values:
            setattr(kept, name, min(values) if name == "first_seen_at" else max(values))
    if kept.status == CI.Status.DISCOVERED and gone.status not in (CI.Status.DISCOVERED, CI.Status.RETIRED):
        kept.status = gone.status  # the registered one's standing wins
    summary = ", ".join(f"{n} {label}" for label, n in moved.items() if n) or "no references"
    _save_ci(kept, before, actor=actor, message=f"Merged {gone} (#{gone.pk}) into it: {summary} moved")
    _set_status(gone, CI.Status.RETIRED, actor=actor, reason=f"Merged into {kept} (#{kept.pk})")
    _decide(locked, Decision.MERGED, actor, now)
    _repoint_candidates(gone, kept, actor, now)
    return kept


def _move_references(gone: CI, kept: CI) -> dict[str, int]:
    """Every record of another app that points at `gone` points at `kept` instead."""
    moved: dict[str, int] = {}
    for relation in CI._meta.related_objects:
        model = relation.related_model
        if not relation.one_to_many or model in OWN_MODELS or not isinstance(model, type):
            continue
        field = relation.field.name
        count = model._default_manager.filter(**{field: gone}).update(**{field: kept})
        if count:
            moved[str(model._meta.verbose_name_plural)] = count
    return moved


def _move_discovery(gone: CI, kept: CI) -> None:
    """The discovered devices (the newer one where both have one of a source), MACs and open
    drifts of `gone` go to `kept`."""
    for device in DiscoveredDevice.objects.filter(ci=gone):
        mine = DiscoveredDevice.objects.filter(ci=kept, source=device.source).first()
        if mine is None:
            DiscoveredDevice.objects.filter(pk=device.pk).update(ci=kept)
        elif device.last_seen_at > mine.last_seen_at:
            mine.delete()
            DiscoveredDevice.objects.filter(pk=device.pk).update(ci=kept)
        else:
            device.delete()
    known = set(MacAddress.objects.filter(ci=kept).values_list("mac", flat=True))
    MacAddress.objects.filter(ci=gone).exclude(mac__in=known).update(ci=kept)
    MacAddress.objects.filter(ci=gone).delete()
    # The next run decides the kept CI's attributes again; the merged one's open drifts end here.
    DriftItem.objects.filter(ci=gone, status=Decision.OPEN).update(
        status=Decision.RESOLVED, decided_at=timezone.now()
    )


def _repoint_candidates(gone: CI, kept: CI, actor: Actor, now: dt.datetime) -> None:
    """Other open candidates naming the merged CI now name the kept one (or end, when the kept
    CI already has that pair)."""
    candidates = DuplicateCandidate.objects.filter(status=Decision.OPEN).filter(
        models.Q(ci=gone) | models.Q(other=gone)
    )
    for candidate in candidates.select_for_update():
        third = candidate.other_id if candidate.ci_id == gone.pk else candidate.ci_id
        if third == kept.pk:
            _decide(candidate, Decision.MERGED, actor, now)
            continue
        low, high = min(third, kept.pk), max(third, kept.pk)
        if DuplicateCandidate.objects.filter(ci_id=low, other_id=high).exists():
            _decide(candidate, Decision.MERGED, actor, now)
        else:
            candidate.ci_id, candidate.other_id = low, high
            candidate.version += 1
            candidate.save()


@transaction.atomic
def dismiss_duplicate(
    candidate: DuplicateCandidate, *, actor: Actor, expected_version: int | None = None
) -> DuplicateCandidate:
    """Two different devices after all: the pair is closed and never raised again."""
    _check(actor, "dismiss duplicate candidates")
    locked = _lock(DuplicateCandidate, candidate, expected_version)
    if locked.status != Decision.OPEN:
        raise ValidationError(
            {"status": f"This duplicate candidate is {locked.get_status_display().lower()}."}
        )
    _decide(locked, Decision.DISMISSED, actor, timezone.now())
    audit.record(
        locked,
        action="update",
        actor=_user(actor),
        root=locked.ci,
        changes={"status": [Decision.OPEN, Decision.DISMISSED]},
        message=f"Not a duplicate of {locked.other} (#{locked.other_id})",
    )
    return locked


# --- Drifts -----------------------------------------------------------------------------------------


def _open_drift(drift: DriftItem, expected_version: int | None) -> DriftItem:
    locked = _lock(DriftItem, drift, expected_version)
    if locked.status != Decision.OPEN:
        raise ValidationError({"status": f"This drift is {locked.get_status_display().lower()}."})
    return locked


@transaction.atomic
def accept_drift(drift: DriftItem, *, actor: Actor, expected_version: int | None = None) -> CI:
    """Take the discovered value: the CI's attribute becomes it, held on the discovering source's
    authority from now on (its later changes are written). ConflictError when the CI's value
    changed since the drift was found."""
    _check(actor, "accept drifts")
    locked = _open_drift(drift, expected_version)
    ci = CI.objects.select_for_update().get(pk=locked.ci_id)
    if getattr(ci, locked.attribute) != locked.ci_value:
        raise ConflictError(ci, expected_version)
    before = audit.snapshot(ci)
    setattr(ci, locked.attribute, locked.discovered_value)
    ci.attribute_sources = {
        **ci.attribute_sources,
        locked.attribute: [locked.source, locked.discovered_value],
    }
    _save_ci(
        ci, before, actor=actor, message=f"Drift accepted: {locked.attribute} as {locked.source} found it"
    )
    _decide(locked, Decision.ACCEPTED, actor, timezone.now())
    return ci


@transaction.atomic
def reject_drift(drift: DriftItem, *, actor: Actor, expected_version: int | None = None) -> DriftItem:
    """Keep the CI's value: the drift is closed and not asked again while discovery finds the
    same value (a new discovered value opens a new drift)."""
    _check(actor, "reject drifts")
    locked = _open_drift(drift, expected_version)
    _decide(locked, Decision.REJECTED, actor, timezone.now())
    audit.record(
        locked,
        action="update",
        actor=_user(actor),
        root=locked.ci,
        changes={"status": [Decision.OPEN, Decision.REJECTED]},
        message=f"Drift rejected: {locked.attribute} stays {locked.ci_value!r} ({locked.source} found "
        f"{locked.discovered_value!r})"[:300],
    )
    return locked
