from django.urls import path

from chowist.places import views

app_name = "places"
urlpatterns = [
    path("", views.place_list, name="list"),
    path("random/", views.place_random, name="random"),
    path("<int:pk>/", views.place_detail, name="detail"),
    path("<int:pk>/edit/", views.place_edit, name="edit"),
    path("<int:pk>/review/", views.review_submit, name="review"),
]
