"""The detectors: modules named in settings.TIKTING_SIGNALS_DETECTORS, each keeping the contract of
tikting/signals/proposals.py, with thresholds overridden by settings.TIKTING_SIGNALS[<name>]."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError

from tikting.improvement.choices import SourceChannel

from .proposals import Progress, Proposal, Window, no_progress


@dataclass(frozen=True)
class Detector:
    """A loaded detector module with its effective thresholds (defaults, then the settings)."""

    name: str
    title: str
    channel: str
    module: ModuleType
    defaults: dict[str, float]
    thresholds: dict[str, float]

    @property
    def doc(self) -> str:
        return (self.module.__doc__ or "").strip()

    def detect(self, window: Window, *, progress: Progress = no_progress) -> list[Proposal]:
        return list(self.module.detect(window, thresholds=dict(self.thresholds), progress=progress))


def _thresholds(name: str, defaults: dict[str, float]) -> dict[str, float]:
    overrides: Any = (getattr(settings, "TIKTING_SIGNALS", {}) or {}).get(name, {})
    if not isinstance(overrides, dict):
        raise ImproperlyConfigured(f"TIKTING_SIGNALS['{name}']: expected an object of threshold → value.")
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ImproperlyConfigured(
            f"TIKTING_SIGNALS['{name}']: unknown threshold(s) {', '.join(unknown)}; "
            f"{name} has {', '.join(sorted(defaults)) or 'none'}."
        )
    result = dict(defaults)
    for key, value in overrides.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ImproperlyConfigured(f"TIKTING_SIGNALS['{name}']['{key}']: {value!r} is not a number.")
        result[key] = float(value) if isinstance(defaults[key], float) else value
    return result


def load(path: str) -> Detector:
    """The detector module at `path`, checked against the contract (ImproperlyConfigured naming what
    is missing)."""
    try:
        module = importlib.import_module(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"TIKTING_SIGNALS_DETECTORS: cannot import '{path}' ({exc}).") from exc
    missing = [
        attr for attr in ("NAME", "TITLE", "CHANNEL", "THRESHOLDS", "detect") if not hasattr(module, attr)
    ]
    if missing:
        raise ImproperlyConfigured(
            f"Detector '{path}' lacks {', '.join(missing)} (tikting/signals/proposals.py)."
        )
    if module.CHANNEL not in SourceChannel.values:
        raise ImproperlyConfigured(
            f"Detector '{path}': CHANNEL '{module.CHANNEL}' is not a register source channel."
        )
    defaults = dict(module.THRESHOLDS)
    return Detector(
        name=module.NAME,
        title=module.TITLE,
        channel=module.CHANNEL,
        module=module,
        defaults=defaults,
        thresholds=_thresholds(module.NAME, defaults),
    )


def detectors() -> dict[str, Detector]:
    """Every configured detector by name, in the settings' order."""
    found: dict[str, Detector] = {}
    for path in getattr(settings, "TIKTING_SIGNALS_DETECTORS", []):
        detector = load(path)
        if detector.name in found:
            raise ImproperlyConfigured(
                f"TIKTING_SIGNALS_DETECTORS: two detectors are named '{detector.name}'."
            )
        found[detector.name] = detector
    unknown = sorted(set(getattr(settings, "TIKTING_SIGNALS", {}) or {}) - set(found))
    if unknown:
        raise ImproperlyConfigured(f"TIKTING_SIGNALS: no detector is named {', '.join(unknown)}.")
    return found


def get(name: str) -> Detector:
    found = detectors()
    if name not in found:
        raise ValidationError(
            {"detector": f"Unknown detector '{name}'; choose from {', '.join(found) or 'none'}."}
        )
    return found[name]
