"""Governance endpoints (review agenda, minutes, practice metrics). Registered in tikting/api.py."""

from ninja import Router

router = Router(tags=["governance"])
