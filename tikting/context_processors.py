from django.conf import settings

from tikting import __version__
from tikting.accounts.models import Role
from tikting.records.registry import KINDS

RECORD_KINDS = list(KINDS.values())


def tikting(request):
    user = getattr(request, "user", None)
    return {
        "TIKTING_VERSION": __version__,
        "STALE_DAYS": settings.TIKTING_STALE_DAYS,
        "user_role": getattr(user, "role", None) if user and user.is_authenticated else None,
        "record_kinds": RECORD_KINDS,
        "can_submit": bool(user and user.is_authenticated and user.has_role(Role.CONTRIBUTOR)),
        # Improvement managers and administrators: the jobs page, triage of the intake queue.
        "is_manager": bool(user and user.is_authenticated and user.has_role(Role.MANAGER)),
    }
