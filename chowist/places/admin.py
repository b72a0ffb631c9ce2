from django.contrib import admin

from chowist.places.models import Category, Place, Review
from chowist.places.services import review_delete


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    list_filter = ["name"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Place)
class PlaceAdmin(admin.ModelAdmin):
    list_display = ["name", "city", "review_count", "min_party_size", "max_party_size", "updated_at"]
    search_fields = ["name", "city", "address"]
    list_filter = ["categories", "city", "min_party_size"]
    filter_horizontal = ["categories"]
    # Maintained by review writes; editing them by hand would desynchronise the averages.
    readonly_fields = ["review_count", "rating_sum", "created_at", "updated_at"]
    show_full_result_count = False


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ["place", "author", "rating", "created_at"]
    list_select_related = ["place", "author"]
    search_fields = ["place__name", "author__username", "comment"]
    list_filter = ["rating", "created_at"]
    # A <select> of every place and user would load tens of thousands of rows per form.
    raw_id_fields = ["place", "author"]
    # Direct edits here bypass review_submit and would desynchronise Place.review_count/rating_sum.
    readonly_fields = ["place", "author", "rating", "created_at", "updated_at"]
    show_full_result_count = False

    def delete_model(self, request, obj: Review) -> None:
        review_delete(review=obj)

    def delete_queryset(self, request, queryset) -> None:
        # The bulk delete action would skip the per-review bookkeeping.
        for review in queryset:
            review_delete(review=review)
