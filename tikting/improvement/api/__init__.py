"""The register over HTTP: everything the UI does, through the same services (tikting/api.py mounts it).

`router` is mounted at /api/items; `lookups` at /api/ holds the child records addressed by their own
id (/indicators/{id}, /actions/{id}) and the pick lists clients need to build forms (/services,
/users, /choices). Handlers parse input, call a service with `actor=` the authenticated user, and
render; the service checks permission and rules, so errors name the same fields as in the UI.

The routers and shared helpers are in `common`, schemas in `schemas` (output) and `inputs`; the
handlers, one module per concern, register themselves on the routers when imported here.
"""

# Imported for their routes: each handler module registers its operations on the routers.
from . import actions, comments, import_export, indicators, items, lifecycle, picklists  # noqa: F401
from .common import lookups, router

__all__ = ["lookups", "router"]
