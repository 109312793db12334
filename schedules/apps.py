from django.apps import AppConfig


class SchedulesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "schedules"
    verbose_name = "Schedules"

    def ready(self) -> None:
        from jobs.kinds import on_finish
        from schedules.signals import run_finished

        # after the export a segment job starts, so the run knows whether one follows
        on_finish(run_finished, order=30)
