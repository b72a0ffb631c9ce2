from django.urls import path

from chowist.places import api_views

app_name = "api"
urlpatterns = [
    path("", api_views.place_list, name="place-list"),
    path("<int:pk>/", api_views.place_detail, name="place-detail"),
    path("<int:pk>/photo/", api_views.place_photo_upload, name="place-photo"),
]
