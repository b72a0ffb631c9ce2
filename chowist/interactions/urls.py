from django.urls import path

from chowist.interactions import views

app_name = "interactions_api"
urlpatterns = [
    path("popular/", views.popular, name="popular"),
    path("<int:pk>/interactions/", views.record, name="record"),
]
