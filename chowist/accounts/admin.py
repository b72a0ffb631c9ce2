from django.contrib import admin

from chowist.accounts.models import Profile


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "address", "birth_date", "updated_at"]
    list_select_related = ["user"]
    search_fields = ["user__username", "user__email", "address", "bio"]
    list_filter = ["birth_date", "updated_at"]
    raw_id_fields = ["user"]
    show_full_result_count = False
