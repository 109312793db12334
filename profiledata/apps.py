from django.apps import AppConfig


class ProfileDataConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "profiledata"
    verbose_name = "Profile data"
