from django.apps import AppConfig


class SchedulesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "schedules"
    verbose_name = "Schedules"

    def ready(self) -> None:
        from schedules import signals  # noqa: F401 — connects the receivers
