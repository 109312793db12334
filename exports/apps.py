from django.apps import AppConfig


class ExportsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "exports"
    verbose_name = "Exports"

    def ready(self) -> None:
        from exports.signals import start_planned_export
        from jobs.kinds import on_finish
        from jobs.models import JobKind

        # after the segments have their counts; any final status (a failed job abandons it)
        on_finish(start_planned_export, kinds=[JobKind.SEGMENT], order=20)
