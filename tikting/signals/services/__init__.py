"""The intake queue's services: ingest detector proposals, run detectors, triage candidates (accept
into the register, merge into an item, defer, dismiss; one by one or in bulk), and take findings and
feedback from the manual channels.

Every service that changes state takes `actor=` (None: the system), checks permission
(permissions.py), validates (ValidationError naming the field), writes history (core.audit: an
audit row per change, a status row per triage) and runs in a transaction. Triage takes
`expected_version`: a candidate triaged by someone else since it was read raises ConflictError.

Intake rules (docs/signals.md, "Intake rules"): a proposal's fingerprint names its pattern. A new
fingerprint raises a candidate; one whose latest candidate is open (new or deferred) updates it
(its evidence merged in, counted "merged"); one whose latest candidate was dismissed, merged or
accepted is suppressed unless its magnitude grew by TIKTING_SIGNALS_REGROWTH or more since that
decision, and then raises a new candidate that names the previous one.
"""

from .common import CHUNK, regrowth
from .export import export_rows
from .ingest import IngestCounts, default_window, grew, ingest, run_detector, run_detectors, window_for
from .manual import MANUAL_CHANNELS, ManualChannel, manual_channel, record_key, submit_candidate
from .triage import (
    ACCEPT_FIELDS,
    TRIAGE_ACTIONS,
    BulkResult,
    accept_candidate,
    defer_candidate,
    describe,
    dismiss_candidate,
    evidence_records,
    merge_candidate,
    triage,
    triage_bulk,
    wake_deferred,
)

__all__ = [
    "ACCEPT_FIELDS",
    "BulkResult",
    "CHUNK",
    "IngestCounts",
    "MANUAL_CHANNELS",
    "ManualChannel",
    "TRIAGE_ACTIONS",
    "accept_candidate",
    "default_window",
    "defer_candidate",
    "describe",
    "dismiss_candidate",
    "evidence_records",
    "export_rows",
    "grew",
    "ingest",
    "manual_channel",
    "merge_candidate",
    "record_key",
    "regrowth",
    "run_detector",
    "run_detectors",
    "submit_candidate",
    "triage",
    "triage_bulk",
    "wake_deferred",
    "window_for",
]
