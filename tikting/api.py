"""The HTTP API (django-ninja): OpenAPI at /api/openapi.json, docs at /api/docs."""

from ninja import NinjaAPI

from tikting import __version__

api = NinjaAPI(title="tikting API", version=__version__, urls_namespace="api")
api.add_router("/governance/", "tikting.governance.api.router")
