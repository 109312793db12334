from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from jobs.kinds import on_finish
        from jobs.models import JobKind, JobStatus
        from segments.signals import record_count, record_estimate

        # first: the figures are on the segment before anything that follows reads them
        on_finish(record_count, kinds=[JobKind.SEGMENT], statuses=[JobStatus.SUCCEEDED],
                  order=10)
        on_finish(record_estimate, kinds=[JobKind.PREVIEW], statuses=[JobStatus.SUCCEEDED],
                  order=10)
