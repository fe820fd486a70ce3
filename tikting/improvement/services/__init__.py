"""Every operation that changes the register: one function per verb (Zulip's `do_*` actions).

Each runs in a transaction, takes the acting user as keyword-only `actor` (None: the system),
checks permission, validates, writes an audit row (and a status-change row on transitions).
Edits of an item or indicator take `expected_version`: when the row changed since the caller read
it, ConflictError is raised and nothing is written.

One module per concern: `items` (submit, edit, rank, comment, link), `lifecycle` (assess and undo
an acceptance, steps, block, evaluate, close, follow-ups, reopen, sustainment), `indicators` (with
measurements and metric binding), `actions` (with cancellation), `housekeeping` (daily).
Callers use the names re-exported here (`services.create_item`).
"""

from .actions import (
    PLANNING_STATUSES,
    add_action,
    cancel_action,
    reinstate_action,
    remove_action,
    update_action,
)
from .common import ACTION_FIELDS, INDICATOR_FIELDS, ITEM_FIELDS, MANAGER_FIELDS, read_only_message
from .housekeeping import announce_due_work, check_sustainment, take_computed_measurements, wake_deferred
from .indicators import (
    add_indicator,
    bind_indicator,
    metric_value,
    record_measurement,
    remove_indicator,
    update_indicator,
)
from .items import add_comment, create_item, link_source, rank_items, update_item
from .lifecycle import (
    assess_item,
    check_item_sustainment,
    close_item,
    default_outcome,
    escalate_item,
    evaluate_item,
    has_slipped,
    measured_delta,
    raise_follow_up,
    reopen_item,
    set_blocked,
    slip_limit,
    transition_item,
    undo_acceptance,
    value_at_closure,
)

__all__ = [
    "ACTION_FIELDS",
    "INDICATOR_FIELDS",
    "ITEM_FIELDS",
    "MANAGER_FIELDS",
    "PLANNING_STATUSES",
    "add_action",
    "add_comment",
    "add_indicator",
    "assess_item",
    "bind_indicator",
    "cancel_action",
    "check_item_sustainment",
    "check_sustainment",
    "close_item",
    "create_item",
    "default_outcome",
    "escalate_item",
    "evaluate_item",
    "has_slipped",
    "link_source",
    "measured_delta",
    "metric_value",
    "raise_follow_up",
    "read_only_message",
    "rank_items",
    "record_measurement",
    "reinstate_action",
    "remove_action",
    "remove_indicator",
    "reopen_item",
    "set_blocked",
    "slip_limit",
    "take_computed_measurements",
    "transition_item",
    "undo_acceptance",
    "update_action",
    "update_indicator",
    "update_item",
    "value_at_closure",
    "wake_deferred",
    "announce_due_work",
]
