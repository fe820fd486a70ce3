from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from . import throttle
from .models import ApiToken, Role, Team, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (*(BaseUserAdmin.fieldsets or ()), ("tikting", {"fields": ("role", "team")}))
    list_display = ("username", "email", "first_name", "last_name", "role", "team", "is_active")
    list_filter = ("role", "team", "is_active")
    actions = ["unlock_sign_in"]

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        """A role given here brings its rights on this site: an administrator is staff and superuser
        (as `tikting createuser --role admin` makes them), and stops being both with another role."""
        if "role" in form.changed_data:
            obj.is_staff = obj.is_superuser = obj.role == Role.ADMIN
        super().save_model(request, obj, form, change)

    @admin.action(description="Unlock sign-in (forget failed sign-ins)")
    def unlock_sign_in(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        names = [user.username for user in queryset]
        for name in names:
            throttle.unlock(username=name)
        self.message_user(request, f"Sign-in unlocked for {', '.join(names)}.")


admin.site.register(Team)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "key_hint", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("key_hash", "key_hint", "created_at", "last_used_at")
