from django.urls import path

from chowist.places import api_views, photos

app_name = "api"
urlpatterns = [
    path("", api_views.place_list, name="place-list"),
    path("<int:pk>/", api_views.place_detail, name="place-detail"),
    path("<int:pk>/photo/", photos.upload, name="place-photo"),
]
