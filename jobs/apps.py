from django.apps import AppConfig


class JobsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from jobs.alerts import job_timed_out
        from jobs.kinds import on_finish
        from jobs.models import JobStatus

        # last: whatever the feature apps' hooks did, a stuck job is a team lead's to see
        on_finish(job_timed_out, statuses=[JobStatus.TIMED_OUT], order=900)
