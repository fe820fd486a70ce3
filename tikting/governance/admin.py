from django.contrib import admin

from .models import Minute, ReviewMeeting


class MinuteInline(admin.TabularInline):
    model = Minute
    extra = 0
    fields = ("item", "kind", "text", "effect", "actor", "at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # minutes are recorded through the review (services), not typed in here


@admin.register(ReviewMeeting)
class ReviewMeetingAdmin(admin.ModelAdmin):
    list_display = ("title", "scheduled_for", "status", "chair", "held_at")
    list_filter = ("status",)
    search_fields = ("title", "notes")
    inlines = [MinuteInline]
    readonly_fields = ("held_at", "created_by", "created_at", "updated_at")


@admin.register(Minute)
class MinuteAdmin(admin.ModelAdmin):
    list_display = ("at", "meeting", "item", "kind", "actor")
    list_filter = ("kind",)
    search_fields = ("text",)
    raw_id_fields = ("meeting", "item")
    readonly_fields = ("meeting", "item", "kind", "text", "effect", "actor", "at")

    def has_add_permission(self, request):
        return False
