from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from segments import signals  # noqa: F401 — connects the receivers
