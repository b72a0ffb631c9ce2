from django.conf import settings
from django.db import models

from chowist.core.validators import validate_single_line


class Profile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    bio = models.TextField(blank=True, max_length=2000)
    address = models.CharField(blank=True, max_length=255, validators=[validate_single_line])
    birth_date = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Profile of {self.user}"
