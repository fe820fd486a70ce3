from django.conf import settings

from tikting import __version__
from tikting.accounts.models import Role


def tikting(request):
    user = getattr(request, "user", None)
    return {
        "TIKTING_VERSION": __version__,
        "STALE_DAYS": settings.TIKTING_STALE_DAYS,
        "user_role": getattr(user, "role", None) if user and user.is_authenticated else None,
        "can_submit": bool(user and user.is_authenticated and user.has_role(Role.CONTRIBUTOR)),
    }
