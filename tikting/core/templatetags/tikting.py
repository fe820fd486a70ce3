"""Template filters every page uses (a builtin: no {% load %} needed; settings.TEMPLATES).

- `{{ value|number }}`: a number as people write it (40, 2.5; never 4E+1 or 40.0000);
  `{{ value|number:2 }}` rounds it to at most 2 decimals first (display only); text passes as is.
- `{% slot "name" obj %}`: what apps above put in that place of the page (core/slots.py).
- `{{ value|when }}`: a date, or a time in the configured time zone, in the one format of the UI
  (settings.DATE_FORMAT / DATETIME_FORMAT); `{{ value|when:"date" }}`: only the day of a time.
- `{{ value|duration }}`: a timedelta or seconds in its two largest units ("12 s", "3 min 5 s").
"""

from __future__ import annotations

from typing import Any

from django import template

from tikting.lib import display

register = template.Library()


@register.filter
def number(value: Any, places: int | None = None) -> str:
    return display.number(value, places)


@register.filter(expects_localtime=False)
def when(value: Any, part: str = "") -> str:
    return display.when(value, part)


@register.filter
def duration(value: Any) -> str:
    return display.duration(value)


@register.simple_tag(takes_context=True)
def slot(context: template.Context, name: str, obj: Any = None) -> str:
    """`{% slot "object-actions" item %}`: what apps above registered for that place (core.slots)."""
    from tikting.core.slots import render_slot

    return render_slot(name, context.get("request"), obj)
