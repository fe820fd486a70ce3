"""Discovery inputs built by hand (the parsers are tested against real files on their own): an
observation as a source reports it, a parse result, a registered CI."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from tikting.cmdb.models import ConfigurationItem
from tikting.discovery.observations import Interface, Observation, ParseError, ParseResult

HOUR = dt.timedelta(hours=1)


def seen(hours_ago: float = 1) -> dt.datetime:
    """A sighting time `hours_ago` hours before now, to the second (as files give them)."""
    return (timezone.now() - dt.timedelta(hours=hours_ago)).replace(microsecond=0)


def obs(
    source: str = "glpi-agent",
    *,
    at: dt.datetime | None = None,
    macs: Sequence[str] = (),
    ips: Sequence[str] = (),
    virtual: Sequence[str] = (),
    **fields: Any,
) -> Observation:
    """One device as `source` saw it: `macs` are real interfaces (the first carries `ips`),
    `virtual` interfaces a source marked virtual."""
    interfaces = [Interface(mac=mac, ipv4=tuple(ips) if i == 0 else ()) for i, mac in enumerate(macs)]
    if ips and not macs:
        interfaces.append(Interface(ipv4=tuple(ips)))
    interfaces += [Interface(mac=mac, virtual=True) for mac in virtual]
    fields.setdefault("where", f"{source} device")
    fields.setdefault("kind", "computer")
    return Observation(source=source, seen_at=at or seen(), interfaces=interfaces, **fields)


def result(
    *observations: Observation, fmt: str = "glpi-json", errors: Sequence[ParseError] = ()
) -> ParseResult:
    return ParseResult(fmt, list(observations), list(errors))


def ci(name: str, **fields: Any) -> ConfigurationItem:
    """A registered CI, in service, a server unless said otherwise."""
    fields.setdefault("ci_class", ConfigurationItem.CIClass.SERVER)
    fields.setdefault("status", ConfigurationItem.Status.ACTIVE)
    return ConfigurationItem.objects.create(name=name, **fields)
