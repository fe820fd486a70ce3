"""The ITSM record kinds, registered once, and the services that change any of them.

Every record kind (incident, problem, change …) is described by a RecordKind: its URL slug, its
model, the columns its list shows, the fields its filters, forms and imports use. The generic
pages (`/records/<slug>/`), the API (`/api/records/<slug>`) and `tikting import <slug> FILE` are
driven by this registry, so a new kind is one entry here, not a new set of views.

Services (`create_record`, `update_record`, `delete_record`) check permission, validate, write the
audit trail (who, when, old → new) and guard concurrent edits with the record's `version`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import connections, models, transaction
from django.db.models.fields.reverse_related import ForeignObjectRel

from tikting.accounts.models import Actor, Role, User
from tikting.core import audit, events, writes
from tikting.core.bounds import check_long_text
from tikting.core.exceptions import ConflictError, PermissionDeniedError, in_use_message
from tikting.core.prepared import Prepared
from tikting.incidents import search as incident_search

DEFAULT_EXCLUDED = ("raw", "version", "created_at", "updated_at")
SLA_DERIVED = ("response_due_at", "resolution_due_at", "response_met", "resolution_met")


@dataclass(frozen=True)
class Access:
    """Who may write records of a kind: the lowest role that may create and edit them, and the
    lowest that may delete them (every signed-in viewer reads them). docs/permissions.md."""

    name: str
    write: Role
    delete: Role
    why: str


# Operational records are logged and worked by frontline staff; findings received from auditors
# are recorded by the improvement manager, who brings them to the register; configuration and
# customers' survey answers define what every figure counts (SLA targets, services, groups, the
# catalogue, CIs, CSAT), so only administrators change them: an improvement is judged by those
# figures and must not be able to move them by editing the ruler.
OPERATIONAL = Access("operational", Role.CONTRIBUTOR, Role.MANAGER, "logged and worked by frontline staff")
FINDINGS = Access(
    "findings", Role.MANAGER, Role.MANAGER, "audit findings the improvement manager brings to the register"
)
REFERENCE = Access(
    "reference",
    Role.ADMIN,
    Role.ADMIN,
    "reference data every figure is computed against (targets, services, groups, catalogue, CIs, "
    "customers' survey answers)",
)


@dataclass(frozen=True)
class FullText:
    """A kind's full-text index, in two steps so that a compiled query can be reused with another
    text (tikting.core.prepared): `query(text, vendor)` is the database's query for the words of a
    text (None: no words), `matching(qs, query)` filters a queryset of the kind by such a query and
    annotates `search_rank` (higher is more relevant)."""

    query: Callable[[str, str], str | None]
    matching: Callable[[models.QuerySet[Any], str | None], models.QuerySet[Any]]

    def __call__(self, qs: models.QuerySet[Any], text: str) -> models.QuerySet[Any]:
        """The records of `qs` matching `text`, annotated with `search_rank`."""
        return self.matching(qs, self.query(text, connections[qs.db].vendor))


@dataclass(frozen=True)
class RecordKind:
    slug: str
    model_label: str  # "incidents.Incident"
    label: str
    label_plural: str
    practice: str  # the register practice an improvement raised from it concerns
    source_channel: str  # the register source channel for an improvement raised from it
    key_field: str = "number"  # the human reference, unique
    list_fields: tuple[str, ...] = ()
    filter_fields: tuple[str, ...] = ()
    search_fields: tuple[str, ...] = ()
    date_field: str = ""  # the field "opened from/to" filters on
    exclude_from_forms: tuple[str, ...] = field(default=DEFAULT_EXCLUDED)
    # Computed by tikting, never written by a user: out of forms and API writes, exported but
    # ignored on import.
    derived: tuple[str, ...] = ()
    access: Access = OPERATIONAL
    # The source channel of an improvement raised from one record, where the record says more than
    # its kind (an incident: major, or missed its SLA); None: always `source_channel`.
    channel_of: Callable[[models.Model], str] | None = None
    # Full-text search by an index (`q`): filters a queryset of the kind by the text and annotates
    # `search_rank`; None: `q` matches search_fields by substring.
    full_text: FullText | None = None

    @property
    def model(self) -> type[models.Model]:
        return apps.get_model(self.model_label)

    def title_of(self, obj: models.Model) -> str:
        for name in ("short_description", "title", "name"):
            value = getattr(obj, name, "")
            if value:
                return str(value)
        return str(obj)

    def key_of(self, obj: models.Model) -> str:
        """The record's human reference: INC0001, a CI's name, or #pk."""
        return (
            str(getattr(obj, self.key_field, "") or f"#{obj.pk}") if self.key_field != "id" else f"#{obj.pk}"
        )

    def improvement_draft(self, obj: models.Model) -> dict[str, str]:
        """Title, description and source channel of an improvement raised from `obj`: the record's
        title (or its text's first line), and a description naming the record with what it says
        (its long texts: description, root cause, review notes, a survey comment …)."""
        key = self.key_of(obj)
        title = self.title_of(obj)
        texts = [
            (str(f.verbose_name), str(value).strip())
            for f in self.model._meta.concrete_fields
            if isinstance(f, models.TextField) and f.name not in DEFAULT_EXCLUDED
            for value in [getattr(obj, f.attname)]
            if value and str(value).strip()
        ]
        if title in (str(obj), key) and texts:  # no title of its own (a survey response)
            title = texts[0][1].splitlines()[0]
        named = f"{self.label} {key}" + (f" ({title})" if title and title != key else "")
        parts = [f"Raised from {named}."] + [
            f"{label[:1].upper()}{label[1:]}: {text}" for label, text in texts
        ]
        return {
            "title": title[:DRAFT_TITLE_LENGTH],
            "description": "\n\n".join(parts)[:DRAFT_TEXT_LENGTH],
            "source_channel": self.channel_of(obj) if self.channel_of else self.source_channel,
        }


DRAFT_TITLE_LENGTH = 200  # the register's title
DRAFT_TEXT_LENGTH = 5_000  # enough to say what the record says; the person raising it edits it


def incident_channel(incident: models.Model) -> str:
    """A major incident's (or one reviewed after the fact) improvements come from its post-incident
    review, an incident that missed its SLA is an SLA breach, any other what frontline staff saw."""
    if getattr(incident, "major", False) or getattr(incident, "post_incident_review", ""):
        return "post_incident_review"
    if getattr(incident, "response_met", None) is False or getattr(incident, "resolution_met", None) is False:
        return "sla_breach"
    return "staff_feedback"


KINDS: dict[str, RecordKind] = {
    kind.slug: kind
    for kind in (
        RecordKind(
            "incident",
            "incidents.Incident",
            "Incident",
            "Incidents",
            "incident",
            "post_incident_review",
            list_fields=(
                "number",
                "short_description",
                "status",
                "priority",
                "service",
                "ci",
                "assignment_group",
                "opened_at",
                "resolved_at",
            ),
            filter_fields=(
                "status",
                "priority",
                "service",
                "ci",
                "assignment_group",
                "category",
                "major",
                "source",
                "contact_channel",
            ),
            search_fields=("number", "short_description", "description"),
            date_field="opened_at",
            # The SLA due times and met flags are derived from the SLA definitions on every save
            # (tikting/slas/services.py): shown, never typed in.
            derived=SLA_DERIVED,
            channel_of=incident_channel,
            full_text=FullText(incident_search.query_for, incident_search.matching),
        ),
        RecordKind(
            "interaction",
            "incidents.Interaction",
            "Interaction",
            "Interactions",
            "service_desk",
            "staff_feedback",
            list_fields=(
                "number",
                "channel",
                "opened_at",
                "handle_time_seconds",
                "first_contact_resolution",
                "incident",
                "service",
            ),
            filter_fields=("channel", "first_contact_resolution", "service", "source"),
            search_fields=("number", "category"),
            date_field="opened_at",
        ),
        RecordKind(
            "problem",
            "problems.Problem",
            "Problem",
            "Problems",
            "problem",
            "problem",
            list_fields=("number", "title", "status", "priority", "service", "known_error", "opened_at"),
            filter_fields=("status", "priority", "service", "known_error", "source"),
            search_fields=("number", "title", "description", "root_cause"),
            date_field="opened_at",
        ),
        RecordKind(
            "change",
            "changes.Change",
            "Change",
            "Changes",
            "change",
            "change_review",
            list_fields=(
                "number",
                "title",
                "change_type",
                "status",
                "outcome",
                "service",
                "assignment_group",
                "planned_start",
                "opened_at",
            ),
            filter_fields=(
                "change_type",
                "status",
                "outcome",
                "unplanned",
                "service",
                "assignment_group",
                "source",
            ),
            search_fields=("number", "title", "description"),
            date_field="opened_at",
        ),
        RecordKind(
            "request",
            "service_requests.ServiceRequest",
            "Service request",
            "Service requests",
            "request",
            "request_analysis",
            list_fields=(
                "number",
                "short_description",
                "catalog_item",
                "status",
                "opened_at",
                "fulfilled_at",
                "manual_steps",
            ),
            filter_fields=("status", "catalog_item", "service", "assignment_group", "source"),
            search_fields=("number", "short_description"),
            date_field="opened_at",
        ),
        RecordKind(
            "catalog-item",
            "service_requests.CatalogItem",
            "Catalogue item",
            "Catalogue items",
            "request",
            "request_analysis",
            key_field="name",
            list_fields=("name", "service", "automated", "manual_minutes"),
            filter_fields=("service", "automated"),
            search_fields=("name",),
            access=REFERENCE,
        ),
        RecordKind(
            "article",
            "knowledge.Article",
            "Knowledge article",
            "Knowledge articles",
            "knowledge",
            "knowledge",
            list_fields=(
                "number",
                "title",
                "status",
                "service",
                "views",
                "uses",
                "helpful_yes",
                "helpful_no",
                "review_due",
            ),
            filter_fields=("status", "service", "source"),
            search_fields=("number", "title", "body"),
        ),
        RecordKind(
            "survey",
            "surveys.SurveyResponse",
            "Survey response",
            "Survey responses",
            "service_desk",
            "survey",
            key_field="id",
            list_fields=("id", "score", "comment", "responded_at", "incident", "service"),
            filter_fields=("score", "service", "source"),
            search_fields=("comment",),
            date_field="responded_at",
            access=REFERENCE,
        ),
        RecordKind(
            "audit-finding",
            "audits.AuditFinding",
            "Audit finding",
            "Audit findings",
            "asset",
            "audit_finding",
            list_fields=("number", "title", "audit", "severity", "status", "found_at", "due_date"),
            filter_fields=("severity", "status", "service", "source"),
            search_fields=("number", "title", "description", "audit"),
            date_field="found_at",
            access=FINDINGS,
        ),
        RecordKind(
            "ci",
            "cmdb.ConfigurationItem",
            "Configuration item",
            "Configuration items",
            "asset",
            "asset_data",
            key_field="name",
            list_fields=(
                "name",
                "ci_class",
                "ci_type",
                "service",
                "status",
                "ip_address",
                "last_seen_at",
                "source",
            ),
            filter_fields=("ci_class", "status", "service", "source", "discovery_source"),
            search_fields=(
                "name",
                "ci_type",
                "fqdn",
                "hostname",
                "serial_number",
                "asset_tag",
                "system_uuid",
                "mac_address",
                "ip_address",
            ),
            # Kept by discovery (tikting/discovery/reconcile.py): shown, never typed in.
            derived=("first_seen_at", "last_seen_at", "discovery_source", "attribute_sources"),
            access=REFERENCE,
        ),
        RecordKind(
            "service",
            "cmdb.Service",
            "Service",
            "Services",
            "sla",
            "other",
            key_field="name",
            list_fields=("name", "criticality", "owner", "active"),
            filter_fields=("criticality", "active"),
            search_fields=("name", "description"),
            exclude_from_forms=(),
            access=REFERENCE,
        ),
        RecordKind(
            "sla",
            "slas.SLADefinition",
            "SLA definition",
            "SLA definitions",
            "sla",
            "sla_breach",
            key_field="name",
            list_fields=("name", "service", "priority", "response_minutes", "resolution_minutes", "calendar"),
            filter_fields=("service", "priority", "calendar"),
            search_fields=("name",),
            exclude_from_forms=(),
            access=REFERENCE,
        ),
        RecordKind(
            "group",
            "accounts.Team",
            "Assignment group",
            "Assignment groups",
            "service_desk",
            "other",
            key_field="name",
            list_fields=("name", "description", "source"),
            search_fields=("name",),
            exclude_from_forms=(),
            access=REFERENCE,
        ),
    )
}


def kind_for(obj_or_model: Any) -> RecordKind | None:
    model = obj_or_model if isinstance(obj_or_model, type) else type(obj_or_model)
    for kind in KINDS.values():
        if kind.model is model:
            return kind
    return None


def related_model(f: models.Field[Any, Any] | ForeignObjectRel) -> type[models.Model]:
    """The model a relation points to (every relation of a record kind names its model)."""
    model = f.related_model
    assert model is not None, f"{f} is not a relation"
    return model


def get_kind(slug: str) -> RecordKind:
    try:
        return KINDS[slug]
    except KeyError as exc:
        raise ValidationError(
            {"kind": f"Unknown record kind '{slug}'; choose from {', '.join(KINDS)}."}
        ) from exc


# --- Permissions ----------------------------------------------------------------------------------


def _has(user: User | AnonymousUser | None, role: str) -> bool:
    return bool(user is not None and user.is_authenticated and user.has_role(role))


def can_view_records(user: User | AnonymousUser | None) -> bool:
    return _has(user, Role.VIEWER)


def can_edit_records(user: User | AnonymousUser | None, kind: RecordKind) -> bool:
    """Create, edit and import records of `kind`: its `access.write` role or above (contributors
    log operational records, managers audit findings, administrators reference data)."""
    return _has(user, kind.access.write)


def can_delete_records(user: User | AnonymousUser | None, kind: RecordKind) -> bool:
    return _has(user, kind.access.delete)


def can_raise_from_records(user: User | AnonymousUser | None) -> bool:
    """Raise an improvement from a record of any kind: the register's rule for submitting one
    (contributors and above, tikting/improvement/permissions.py can_submit)."""
    return _has(user, Role.CONTRIBUTOR)


def _require(
    actor: Actor,
    predicate: Callable[[User | AnonymousUser, RecordKind], bool],
    kind: RecordKind,
    what: str,
) -> None:
    if actor is not None and not predicate(actor, kind):
        raise PermissionDeniedError(f"You may not {what} {kind.label_plural.lower()}.")


# --- Services -------------------------------------------------------------------------------------


def _editable(kind: RecordKind) -> set[str]:
    model = kind.model
    names = {f.name for f in model._meta.concrete_fields if f.editable and not f.primary_key}
    names |= {f.name for f in model._meta.many_to_many}
    return names - set(kind.exclude_from_forms) - set(kind.derived) - {"version"}


def _check_fields(kind: RecordKind, data: dict[str, Any]) -> None:
    unknown = sorted(set(data) - _editable(kind))
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be set here."))


def _split_m2m(kind: RecordKind, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    m2m_names = {f.name for f in kind.model._meta.many_to_many}
    return {k: v for k, v in data.items() if k not in m2m_names}, {
        k: v for k, v in data.items() if k in m2m_names
    }


def _derive_slas(obj: models.Model) -> None:
    """An incident's SLA due times and met flags, from the active SLA definitions, set before the
    save and before the audit snapshot: the one audit row of the create / update shows them (they
    are stored values that changed in this transaction). SLA definitions re-apply themselves to
    the incidents they cover when saved or deleted (tikting/slas/signals.py)."""
    from tikting.incidents.models import Incident
    from tikting.slas.verdicts import set_slas

    if isinstance(obj, Incident):
        set_slas(obj)


def _check_texts(obj: models.Model) -> None:
    """Long texts (descriptions, notes, root causes …) within the cap every app shares
    (core.bounds.LONG_TEXT_LIMIT), each field named: the record kinds' TextFields carry no
    validator of their own."""
    check_long_text(
        **{
            f.name: getattr(obj, f.attname)
            for f in obj._meta.concrete_fields
            if isinstance(f, models.TextField)
        }
    )


def _full_clean(obj: models.Model, unchanged: Iterable[str] = ()) -> None:
    """full_clean(), without the queries that cannot find anything:

    - the condition of the (source, external_key) unique constraint when the record has no
      external key: that constraint holds only for a non-empty key, so it cannot be broken (records
      typed in or created over the API have none);
    - the uniqueness of a single unique field (a number, a name) an edit did not change (`unchanged`).

    The errors of every check are given together, each under its field, as full_clean() does."""
    keyless = not getattr(obj, "external_key", None)
    only_source_key = all(c.name.endswith("_source_key") for c in obj._meta.constraints)
    errors: dict[str, Any] = {}
    try:
        obj.full_clean(validate_unique=False, validate_constraints=not (keyless and only_source_key))
    except ValidationError as exc:
        errors = exc.update_error_dict(errors)
    together = {name for group in obj._meta.unique_together for name in group}
    skip = {name for name in unchanged if name not in together} | set(errors)
    unique = [f for f in obj._meta.concrete_fields if f.unique and not f.primary_key]
    if any(f.name not in skip for f in unique) or together:
        try:
            obj.validate_unique(exclude=skip)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def create_record(kind: RecordKind | str, *, actor: Actor, **data: Any) -> models.Model:
    """Create a record of `kind`. Validates every field (errors name them), writes an audit row."""
    kind = get_kind(kind) if isinstance(kind, str) else kind
    _require(actor, can_edit_records, kind, "create")
    _check_fields(kind, data)
    plain, m2m = _split_m2m(kind, data)
    obj = kind.model(**plain)
    _check_texts(obj)
    _full_clean(obj)
    _derive_slas(obj)
    writes.insert(obj)
    for name, values in m2m.items():
        getattr(obj, name).set(values)
    audit.record(obj, action="create", actor=actor, changes=audit.diff({}, audit.snapshot(obj)))
    _announce(kind, obj, {}, actor=actor)
    return obj


@transaction.atomic
def update_record(
    obj: models.Model, *, actor: Actor, expected_version: int | None = None, **changes: Any
) -> models.Model:
    """Change fields of a record; a stale `expected_version` raises ConflictError, nothing written."""
    kind = kind_for(obj)
    if kind is None:
        raise ValidationError({"kind": f"{type(obj).__name__} is not an ITSM record."})
    return update_record_by_pk(kind, obj.pk, actor=actor, expected_version=expected_version, **changes)


@functools.cache
def _locked_by_pk(slug: str) -> Prepared[models.Model]:
    model = KINDS[slug].model
    # no ORDER BY, as get() leaves it out: a Meta.ordering across a relation would be an outer
    # join, which PostgreSQL refuses to lock
    return Prepared(lambda pk: model._default_manager.select_for_update().filter(pk=pk).order_by())


def _locked(kind: RecordKind) -> Callable[[int], models.Model | None]:
    """The record of `kind` with a primary key, locked (FOR UPDATE where the database has it),
    or None: its SELECT compiled once per connection (an incident's names 45 columns)."""
    return _locked_by_pk(kind.slug).first


@transaction.atomic
def update_record_by_pk(
    kind: RecordKind, pk: Any, *, actor: Actor, expected_version: int | None = None, **changes: Any
) -> models.Model:
    """update_record() of the record of `kind` with primary key `pk`, read once, locked, inside the
    transaction; `kind.model.DoesNotExist` when there is none."""
    _require(actor, can_edit_records, kind, "edit")
    _check_fields(kind, changes)
    locked: Any = _locked(kind)(pk) if isinstance(pk, int) else None
    if locked is None:
        locked = kind.model._default_manager.select_for_update().get(pk=pk)
    has_version = hasattr(locked, "version")
    if expected_version is not None and has_version and locked.version != int(expected_version):
        raise ConflictError(locked, expected_version)
    before = audit.snapshot(locked)
    plain, m2m = _split_m2m(kind, changes)
    for name, value in plain.items():
        setattr(locked, name, value)
    if has_version:
        locked.version += 1
    _check_texts(locked)
    _full_clean(locked, unchanged=[name for name in before if name not in plain])
    _derive_slas(locked)
    # Only the columns that changed, with the version and the update time: an UPDATE of every
    # column would make PostgreSQL compute an incident's search vector again (its generated column
    # depends on the texts) for a change of status.
    after = audit.snapshot(locked)
    columns = {name for name, value in after.items() if before.get(name) != value}
    columns |= {f.name for f in locked._meta.concrete_fields if getattr(f, "auto_now", False)}
    if has_version:
        columns.add("version")
    if columns:
        writes.save_fields(locked, columns)
    for name, values in m2m.items():
        getattr(locked, name).set(values)
    # The snapshot after the save is `after` but for the update time, which the history leaves out.
    diff = audit.diff(before, after)
    diff.pop("updated_at", None)
    if diff or m2m:
        audit.record(locked, action="update", actor=actor, changes=diff)
    _announce(kind, locked, before, actor=actor)
    return locked


def _announce(kind: RecordKind, obj: models.Model, before: dict[str, Any], *, actor: Actor) -> None:
    """A record given to someone (its `assigned_to`) tells them; a status change tells the
    assignee and the followers (core.events; the notifications app listens)."""
    label = f"{kind.label} {obj}"[:200]
    assignee = getattr(obj, "assigned_to_id", None)
    if assignee is not None and before.get("assigned_to") != assignee:
        events.emit(
            events.Kind.ASSIGNED, obj, actor=actor, summary=f"{label}: assigned to you", recipients=[assignee]
        )
    status = getattr(obj, "status", None)
    if before and status is not None and before.get("status") != status:
        labels = dict(getattr(obj._meta.get_field("status"), "flatchoices", ()))
        old = before.get("status")
        events.emit(
            events.Kind.STATUS_CHANGED,
            obj,
            actor=actor,
            summary=f"{label}: {labels.get(old, old)} → {labels.get(status, status)}",
            data={"old": before.get("status"), "new": status},
        )


@transaction.atomic
def delete_record(obj: models.Model, *, actor: Actor) -> None:
    kind = kind_for(obj)
    if kind is None:
        raise ValidationError({"kind": f"{type(obj).__name__} is not an ITSM record."})
    _require(actor, can_delete_records, kind, "delete")
    audit.record(obj, action="delete", actor=actor, changes=audit.diff(audit.snapshot(obj), {}))
    try:
        obj.delete()
    except (models.ProtectedError, models.RestrictedError) as exc:
        raise ValidationError({"record": in_use_message(obj, exc)}) from exc


# --- Links from above ----------------------------------------------------------------------------
# An app above the records (the register's SourceLink) says what links to a record: it registers a
# function in its AppConfig.ready(), so this layer shows the links without importing that app.
_linkers: list[Callable[[models.Model], list[Any]]] = []


def register_linker(linker: Callable[[models.Model], list[Any]]) -> None:
    """`linker(record)` returns the objects linked to that record (shown on its page)."""
    if linker not in _linkers:
        _linkers.append(linker)


def links_to(obj: models.Model) -> list[Any]:
    """Everything the registered linkers link to `obj`, in their order."""
    return [link for linker in _linkers for link in linker(obj)]
