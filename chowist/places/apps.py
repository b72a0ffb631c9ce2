from django.apps import AppConfig


class PlacesConfig(AppConfig):
    name = "chowist.places"
    label = "places"
