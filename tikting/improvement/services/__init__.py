"""Every operation that changes the register: one function per verb (Zulip's `do_*` actions).

Each runs in a transaction, takes the acting user as keyword-only `actor` (None: the system),
checks permission, validates, writes an audit row (and a status-change row on transitions).
Edits of an item or indicator take `expected_version`: when the row changed since the caller read
it, ConflictError is raised and nothing is written.

One module per concern: `items` (submit, edit, rank, comment, link), `lifecycle` (assess, steps,
block, evaluate, close, reopen, sustainment), `indicators` (with measurements and metric binding),
`actions`, `housekeeping` (daily). Callers use the names re-exported here (`services.create_item`).
"""

from .actions import add_action, remove_action, update_action
from .common import ACTION_FIELDS, INDICATOR_FIELDS, ITEM_FIELDS, MANAGER_FIELDS
from .housekeeping import check_sustainment, take_computed_measurements, wake_deferred
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
    escalate_item,
    evaluate_item,
    measured_delta,
    reopen_item,
    set_blocked,
    transition_item,
)

__all__ = [
    "ACTION_FIELDS",
    "INDICATOR_FIELDS",
    "ITEM_FIELDS",
    "MANAGER_FIELDS",
    "add_action",
    "add_comment",
    "add_indicator",
    "assess_item",
    "bind_indicator",
    "check_item_sustainment",
    "check_sustainment",
    "close_item",
    "create_item",
    "escalate_item",
    "evaluate_item",
    "link_source",
    "measured_delta",
    "metric_value",
    "rank_items",
    "record_measurement",
    "remove_action",
    "remove_indicator",
    "reopen_item",
    "set_blocked",
    "take_computed_measurements",
    "transition_item",
    "update_action",
    "update_indicator",
    "update_item",
    "wake_deferred",
]
