"""Planning one import row: match it to an item (ref, else external_id), check every value, and say
what it will create or change, in the item and in its nested indicators, measurements and actions."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from tikting.accounts.models import User
from tikting.cmdb.models import Service
from tikting.core.audit import diff, plain, snapshot
from tikting.core.bounds import check_long_text
from tikting.lib import untrusted
from tikting.records.registry import KINDS, can_edit_records, create_record

from .. import bounds
from .. import choices as C
from ..models import Action, Indicator, Item, Measurement
from ..services import read_only_message
from .columns import CSV_FIELDS, IMPLIED_ATTRS, PARENT_REF_RE, _ref
from .parse import (
    BLANK_CHOICES,
    DEFAULT_CHOICES,
    TEXT_FIELDS,
    TEXT_LIMITS,
    RowInvalid,
    _parse_bool,
    _parse_date,
    _parse_datetime,
    _parse_decimal,
    _parse_int,
    _parse_ref,
    _s,
)


@dataclass
class Plan:
    """What one valid row will do: create or update an item, and its nested records."""

    line: int
    item: Item
    is_new: bool
    changes: dict[str, list[Any]]
    old_status: str = ""
    indicators: list[dict[str, Any]] | None = None
    actions: list[dict[str, Any]] | None = None
    parent_token: str = ""  # a parent not known yet (later in the file): resolved at the end
    explicit_pk: bool = False  # a new item keeping the ref given in the file
    version: int = 1
    saved_versions: list[tuple[Any, int]] = field(default_factory=list)
    changed_attrs: set[str] = field(default_factory=set)
    nested_changes: bool = False
    new_indicators: list[Indicator] = field(default_factory=list)
    new_measurements: list[tuple[Indicator, Measurement]] = field(default_factory=list)
    changed_indicators: list[tuple[Indicator, dict[str, list[Any]]]] = field(default_factory=list)
    new_actions: list[Action] = field(default_factory=list)
    changed_actions: list[tuple[Action, dict[str, list[Any]]]] = field(default_factory=list)

    def nested_versions(self) -> list[tuple[Indicator | Action, int]]:
        changed: list[Indicator | Action] = [obj for obj, _c in self.changed_indicators]
        changed += [obj for obj, _c in self.changed_actions]
        return [(obj, obj.version) for obj in changed]


class RowPlanner:
    """Turns a raw row into a Plan, checked against lookups loaded once per run (services, users,
    item ids and external ids) and per chunk (the nested records of the matched items, filled by
    the Importer)."""

    def __init__(self, *, actor: User | None, create_services: bool) -> None:
        self.actor = actor
        self.create_services = create_services
        # Services are reference data: only an administrator (or the system) creates them.
        self.may_create_services = actor is None or can_edit_records(actor, KINDS["service"])
        self.now = timezone.now()
        self.services = dict(Service.objects.values_list("name", "id"))
        self.services_folded = {name.casefold(): pk for name, pk in self.services.items()}
        self.users = dict(User.objects.values_list("username", "id"))
        self.ids: set[int] = set(Item.objects.values_list("id", flat=True))
        known = Item.objects.exclude(external_id=None).exclude(external_id="")
        self.external_ids: dict[str, int] = {
            ext: pk for ext, pk in known.values_list("external_id", "id") if ext is not None
        }
        self.nested_indicators: dict[int, dict[str, Indicator]] = {}  # item pk → name → indicator
        self.nested_times: dict[int, set[dt.datetime]] = {}  # indicator pk → measurement times
        self.nested_actions: dict[int, dict[str, Action]] = {}  # item pk → title → action

    # -- planning one row --

    def plan(self, line: int, raw: dict[str, Any], existing: dict[int, Item]) -> Plan | None:
        errors: dict[str, str] = {}
        unknown = [k for k in raw if k not in CSV_FIELDS]
        if unknown:
            errors["row"] = f"Unknown field(s): {', '.join(sorted(unknown))}."
        try:
            ref = _parse_ref(raw.get("ref"))
        except ValueError as exc:
            raise RowInvalid({"ref": str(exc)}) from exc
        ext = _s(raw.get("external_id"))
        if len(ext) > TEXT_LIMITS["external_id"]:
            raise RowInvalid({"external_id": f"At most {TEXT_LIMITS['external_id']} characters."})
        item: Item | None = None
        if ref is not None and ref in self.ids:
            item = existing[ref]
            if ext and item.external_id and item.external_id != ext:
                raise RowInvalid(
                    {
                        "external_id": f"{item.ref} has external_id '{item.external_id}', the row says "
                        f"'{ext}': refusing to guess which item is meant."
                    }
                )
            if ext and self.external_ids.get(ext, item.pk) != item.pk:
                raise RowInvalid(
                    {"external_id": f"'{ext}' already belongs to {_ref(self.external_ids[ext])}."}
                )
        elif ref is not None:
            if ext and ext in self.external_ids:
                raise RowInvalid(
                    {
                        "ref": f"{_ref(ref)} does not exist, but external_id '{ext}' belongs to "
                        f"{_ref(self.external_ids[ext])}."
                    }
                )
        elif ext:
            if ext in self.external_ids:
                item = existing[self.external_ids[ext]]
        else:
            raise RowInvalid({"ref": "Give a ref (CI-00012) or an external_id to match the row on."})

        is_new = item is None
        if is_new:
            item = Item(pk=ref) if ref is not None else Item()
            item.submitted_by_id = self.actor.pk if self.actor else None
        assert item is not None
        old_status = "" if is_new else item.status
        values = self._values(raw, errors, item, is_new)
        if ext:  # a blank external_id never clears one
            values["external_id"] = ext
        parent_token = values.pop("_parent_token", "")
        if errors:
            raise RowInvalid(errors)

        # Only the attributes a row can touch are compared (a full snapshot per row is slow).
        touched = {*values, *IMPLIED_ATTRS}
        before = {} if is_new else {attr: getattr(item, attr) for attr in touched}
        previously_closed_at = item.closed_at
        for name, value in values.items():
            setattr(item, name, value)
        # State the status implies, for rows migrated from a spreadsheet.
        if item.status == C.Status.CLOSED and not item.closed_at:
            item.closed_at = previously_closed_at or self.now
        if item.blocked and not item.blocker.strip():
            raise RowInvalid({"blocker": "Say what blocks the item (blocked is true)."})
        if item.blocked and not item.blocked_since:
            item.blocked_since = self.now
        if not item.blocked:
            item.blocked_since = None
            item.escalated_at = None
        if not item.title.strip():
            raise RowInvalid({"title": "A title is required."})
        if item.pk and item.parent_id == item.pk:
            raise RowInvalid({"parent": "An item cannot be its own parent."})
        item.derive()
        changed_attrs: set[str] = set()
        changes: dict[str, list[Any]] = {}
        if not is_new:
            for attr in touched:
                old, new = before[attr], getattr(item, attr)
                if old != new:
                    changed_attrs.add(attr)
                    if attr != "due_soon_from":  # derived from the target date: noise in the history
                        changes[attr.removesuffix("_id")] = [plain(old), plain(new)]
        if not is_new and item.status != old_status:
            changed_attrs.add("status_changed_at")
            # closed_at is set above for a closed item: the status changed when it closed.
            closed_at = item.closed_at if item.status == C.Status.CLOSED else None
            item.status_changed_at = closed_at or self.now
        plan = Plan(
            line=line,
            item=item,
            is_new=is_new,
            changes=changes,
            old_status=old_status,
            parent_token=parent_token,
            explicit_pk=is_new and ref is not None,
            version=item.version,
            changed_attrs=changed_attrs,
        )
        if is_new:
            item.status_changed_at = (
                item.closed_at if item.status == C.Status.CLOSED and item.closed_at else item.identified_at
            )
            item.last_activity_at = self.now
        self._plan_nested(plan, raw)
        if not is_new and old_status in C.ENDED_STATUSES:
            self._check_record(plan)
        return plan

    @staticmethod
    def _check_record(plan: Plan) -> None:
        """A closed or rejected item is a record (services: read-only): a row may add only
        sustainment measurements to it, as the UI and the API do; any other change is refused."""
        item = plan.item
        changed = (
            plan.changes
            or plan.new_indicators
            or plan.changed_indicators
            or plan.new_actions
            or plan.changed_actions
        )
        if changed:
            raise RowInvalid({"status": read_only_message(item, "change it by import")})
        watched = item.status == C.Status.CLOSED and item.sustainment in {
            C.Sustainment.HOLDING,
            C.Sustainment.SLIPPED,
        }
        if plan.new_measurements and not watched:
            raise RowInvalid({"status": read_only_message(item, "add measurements to it")})
        for _indicator, measurement in plan.new_measurements:
            if item.closed_at and measurement.measured_at <= item.closed_at:
                raise RowInvalid(
                    {
                        "indicators": f"{item.ref} closed on {item.closed_at:%Y-%m-%d %H:%M}: a sustainment "
                        "measurement is dated after the closure."
                    }
                )

    def _values(
        self, raw: dict[str, Any], errors: dict[str, str], item: Item, is_new: bool
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}

        def has(name: str) -> bool:
            return name in raw

        for name in TEXT_FIELDS:
            if not has(name):
                continue
            text = "" if raw[name] is None else str(raw[name])
            text = text.strip() if name in TEXT_LIMITS else text
            limit = TEXT_LIMITS.get(name)
            if limit and len(text) > limit:
                errors[name] = f"At most {limit} characters ({len(text)} given)."
                continue
            try:
                check_long_text(**{name: text})  # the cap of the model, as in the UI and the API
            except ValidationError as exc:
                errors[name] = exc.messages[0]
                continue
            values[name] = text
        if is_new and not _s(raw.get("title")):
            errors["title"] = "A title is required."
        elif has("title") and not _s(raw.get("title")):
            errors["title"] = "A title cannot be blank."
        for name, allowed in BLANK_CHOICES.items():
            if has(name):
                value = _s(raw[name])
                if value and value not in allowed:
                    errors[name] = f"'{value}' is not one of: {', '.join(allowed)}."
                else:
                    values[name] = value
        for name, allowed in DEFAULT_CHOICES.items():
            if has(name):
                value = _s(raw[name])
                if not value:
                    continue  # blank: the default (new) or the current value (update)
                if value not in allowed:
                    errors[name] = f"'{value}' is not one of: {', '.join(allowed)}."
                else:
                    values[name] = value
        for name in ("impact", "effort"):
            if has(name) and _s(raw[name]):
                try:
                    values[name] = _parse_int(raw[name], 1, 5)
                except ValueError as exc:
                    errors[name] = str(exc)
        if has("rank"):
            try:
                values["rank"] = _parse_int(raw["rank"], 1, None)
            except ValueError as exc:
                errors["rank"] = str(exc)
        for name in ("target_date", "revisit_date"):
            if has(name):
                try:
                    values[name] = _parse_date(raw[name])
                except ValueError as exc:
                    errors[name] = str(exc)
        if has("identified_at") and _s(raw["identified_at"]):
            try:
                values["identified_at"] = _parse_datetime(raw["identified_at"])
            except ValueError as exc:
                errors["identified_at"] = str(exc)
        if has("closed_at"):
            try:
                values["closed_at"] = _parse_datetime(raw["closed_at"])
            except ValueError as exc:
                errors["closed_at"] = str(exc)
        if has("realised_delta"):
            try:
                values["realised_delta"] = _parse_decimal(raw["realised_delta"])
            except ValueError as exc:
                errors["realised_delta"] = str(exc)
        if has("blocked"):
            try:
                values["blocked"] = _parse_bool(raw["blocked"])
            except ValueError as exc:
                errors["blocked"] = str(exc)
        if has("owner"):
            username = _s(raw["owner"])
            if not username:
                values["owner_id"] = None
            elif username in self.users:
                values["owner_id"] = self.users[username]
            else:
                errors["owner"] = f"No user '{username}'."
        if has("service"):
            name = _s(raw["service"])
            if not name:
                values["service_id"] = None
            else:
                pk = self.services.get(name) or self.services_folded.get(name.casefold())
                if pk is None and self.create_services and self.may_create_services and not errors:
                    service = create_record("service", actor=self.actor, name=name[:120])
                    assert isinstance(service, Service)
                    self.services[service.name] = service.pk
                    self.services_folded[service.name.casefold()] = service.pk
                    pk = service.pk
                if pk is None and self.create_services and not self.may_create_services:
                    errors["service"] = f"No service '{name}': only an administrator creates services."
                elif pk is None:
                    errors["service"] = f"No service '{name}' (use --create-services to create it)."
                else:
                    values["service_id"] = pk
        if has("parent"):
            token = _s(raw["parent"])
            if not token:
                values["parent_id"] = None
            else:
                pk = None
                if PARENT_REF_RE.match(token):
                    candidate = _parse_ref(token)
                    if candidate in self.ids:
                        pk = candidate
                elif token in self.external_ids:
                    pk = self.external_ids[token]
                if pk is not None:
                    values["parent_id"] = pk
                elif not is_new and item.parent_id and _ref(item.parent_id) == token:
                    pass
                else:
                    values["_parent_token"] = token  # later in the file, perhaps
        return values

    # -- nested indicators, measurements, actions --

    def _nested_list(self, raw: dict[str, Any], name: str) -> list[dict[str, Any]] | None:
        if name not in raw:
            return None
        value = raw[name]
        if value in (None, ""):
            return []
        if isinstance(value, str):  # JSON text in a CSV cell: checked as JSON rows are
            try:
                value = untrusted.loads(value)
            except json.JSONDecodeError as exc:
                raise RowInvalid({name: f"Not valid JSON: {exc.msg}."}) from exc
            except untrusted.UntrustedInputError as exc:
                raise RowInvalid({name: str(exc)}) from exc
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise RowInvalid({name: "Give a list of objects."})
        return value

    def _plan_nested(self, plan: Plan, raw: dict[str, Any]) -> None:
        indicators = self._nested_list(raw, "indicators")
        actions = self._nested_list(raw, "actions")
        item = plan.item
        errors: dict[str, str] = {}
        if indicators:
            current = {} if plan.is_new else self.nested_indicators.get(item.pk, {})
            seen: set[str] = set()
            for n, data in enumerate(indicators, start=1):
                prefix = f"indicators[{n}]"
                name = _s(data.get("name"))
                if not name or len(name) > 200:
                    errors[f"{prefix}.name"] = "An indicator needs a name (at most 200 characters)."
                    continue
                if name in seen:
                    errors[f"{prefix}.name"] = f"Indicator '{name}' is given twice."
                    continue
                seen.add(name)
                values = self._indicator_values(data, prefix, errors)
                indicator = current.get(name)
                if indicator is None:
                    indicator = Indicator(name=name, **values)
                    if indicator.min_value is None and indicator.max_value is None:
                        indicator.min_value, indicator.max_value = bounds.infer_range(indicator.unit)
                    plan.new_indicators.append(indicator)
                    existing_times: set[dt.datetime] = set()
                else:
                    before = snapshot(indicator)
                    for key, value in values.items():
                        setattr(indicator, key, value)
                    changes = diff(before, snapshot(indicator))
                    changes.pop("updated_at", None)
                    if changes:
                        plan.changed_indicators.append((indicator, changes))
                    existing_times = self.nested_times.setdefault(indicator.pk, set())
                for field, message in bounds.range_errors(
                    min_value=indicator.min_value,
                    max_value=indicator.max_value,
                    unit=indicator.unit,
                    values={
                        "baseline_value": indicator.baseline_value,
                        "target_value": indicator.target_value,
                    },
                ).items():
                    errors[f"{prefix}.{field}"] = message
                for k, m in enumerate(data.get("measurements") or [], start=1):
                    mprefix = f"{prefix}.measurements[{k}]"
                    if not isinstance(m, dict):
                        errors[mprefix] = "Give an object."
                        continue
                    try:
                        value = _parse_decimal(m.get("value"))
                        at = _parse_datetime(m.get("measured_at"))
                    except ValueError as exc:
                        errors[mprefix] = str(exc)
                        continue
                    if value is None or at is None:
                        errors[mprefix] = "A measurement needs a value and measured_at."
                        continue
                    note = _s(m.get("note"))
                    if len(note) > 300:
                        errors[f"{mprefix}.note"] = f"At most 300 characters ({len(note)} given)."
                        continue
                    bad = bounds.measurement_errors(
                        indicator, item, value=value, measured_at=at, now=self.now
                    )
                    if bad:
                        errors.update({f"{mprefix}.{field}": message for field, message in bad.items()})
                        continue
                    source = _s(m.get("source")) or Measurement.Source.IMPORTED
                    if source not in Measurement.Source.values:
                        errors[f"{mprefix}.source"] = (
                            f"'{source}' is not one of: {', '.join(Measurement.Source.values)}."
                        )
                        continue
                    if at in existing_times:
                        continue  # measurements are matched on their time: never duplicated
                    existing_times.add(at)
                    plan.new_measurements.append(
                        (
                            indicator,
                            Measurement(
                                value=value,
                                measured_at=at,
                                note=note,
                                source=source,
                                recorded_by_id=self.actor.pk if self.actor else None,
                            ),
                        )
                    )
        if actions:
            current_actions = {} if plan.is_new else self.nested_actions.get(item.pk, {})
            for n, data in enumerate(actions, start=1):
                prefix = f"actions[{n}]"
                title = _s(data.get("title"))
                if not title or len(title) > 200:
                    errors[f"{prefix}.title"] = "An action needs a title (at most 200 characters)."
                    continue
                values = {}
                owner = _s(data.get("owner"))
                if owner and owner not in self.users:
                    errors[f"{prefix}.owner"] = f"No user '{owner}'."
                    continue
                values["owner_id"] = self.users.get(owner) if owner else None
                try:
                    values["due_date"] = _parse_date(data.get("due_date"))
                    values["done"] = _parse_bool(data.get("done", False))
                    values["done_at"] = _parse_datetime(data.get("done_at"))
                    values["cancelled"] = _parse_bool(data.get("cancelled", False))
                    values["cancelled_at"] = _parse_datetime(data.get("cancelled_at"))
                except ValueError as exc:
                    errors[prefix] = str(exc)
                    continue
                values["cancel_reason"] = _s(data.get("cancel_reason"))
                if values["done"] and values["cancelled"]:
                    errors[f"{prefix}.cancelled"] = "An action is done or cancelled, not both."
                    continue
                if values["cancelled"] and not values["cancel_reason"]:
                    errors[f"{prefix}.cancel_reason"] = "Say why the action is cancelled."
                    continue
                try:
                    check_long_text(cancel_reason=values["cancel_reason"])
                except ValidationError as exc:
                    errors[f"{prefix}.cancel_reason"] = exc.messages[0]
                    continue
                if values["done"] and not values["done_at"]:
                    values["done_at"] = self.now
                if values["cancelled"] and not values["cancelled_at"]:
                    values["cancelled_at"] = self.now
                if not values["cancelled"]:
                    values["cancel_reason"], values["cancelled_at"] = "", None
                action = current_actions.get(title)
                if action is None:
                    action = Action(title=title, **values)
                    plan.new_actions.append(action)
                    current_actions[title] = action
                else:
                    before = snapshot(action)
                    for key, value in values.items():
                        setattr(action, key, value)
                    changes = diff(before, snapshot(action))
                    if changes:
                        plan.changed_actions.append((action, changes))
        if errors:
            raise RowInvalid(errors)
        plan.saved_versions = plan.nested_versions()
        plan.nested_changes = bool(
            plan.new_indicators
            or plan.new_measurements
            or plan.changed_indicators
            or plan.new_actions
            or plan.changed_actions
        )

    @staticmethod
    def _indicator_values(data: dict[str, Any], prefix: str, errors: dict[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, limit in (("unit", 30), ("baseline_method", 300), ("metric_key", 60)):
            if name in data:
                text = _s(data[name])
                if len(text) > limit:
                    errors[f"{prefix}.{name}"] = f"At most {limit} characters."
                values[name] = text
        for name, allowed in (("direction", C.Direction.values), ("role", C.IndicatorRole.values)):
            if _s(data.get(name)):
                if data[name] not in allowed:
                    errors[f"{prefix}.{name}"] = f"'{data[name]}' is not one of: {', '.join(allowed)}."
                else:
                    values[name] = data[name]
        try:
            for name in ("baseline_value", "target_value", "min_value", "max_value"):
                if name in data:
                    values[name] = _parse_decimal(data[name])
            for name in ("baseline_date", "target_date"):
                if name in data:
                    values[name] = _parse_date(data[name])
        except ValueError as exc:
            errors[f"{prefix}.{name}"] = str(exc)
        if "metric_scope" in data:
            scope = data["metric_scope"] or {}
            if not isinstance(scope, dict):
                errors[f"{prefix}.metric_scope"] = "Give an object."
            else:
                values["metric_scope"] = scope
        return values
