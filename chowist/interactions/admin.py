"""Admin for the interactions inbox and its daily counters."""

from django.contrib import admin

from chowist.interactions.models import Interaction, PlaceDailyCounter


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ["id", "place", "kind", "user", "created_at", "processed_at"]
    list_select_related = ["place", "user"]
    search_fields = ["place__name", "user__username"]
    list_filter = ["kind", "created_at", ("processed_at", admin.EmptyFieldListFilter)]
    raw_id_fields = ["place", "user"]
    # The inbox is written by the app and drained by the consumer; hand edits would double-count.
    readonly_fields = ["place", "kind", "user", "created_at", "processed_at"]
    # COUNT(*) over a million-row inbox on every changelist page is the slow part.
    show_full_result_count = False


@admin.register(PlaceDailyCounter)
class PlaceDailyCounterAdmin(admin.ModelAdmin):
    list_display = ["place", "day", "views", "likes", "bookmarks"]
    list_select_related = ["place"]
    search_fields = ["place__name"]
    list_filter = ["day"]
    raw_id_fields = ["place"]
    readonly_fields = ["place", "day", "views", "likes", "bookmarks"]
    show_full_result_count = False
