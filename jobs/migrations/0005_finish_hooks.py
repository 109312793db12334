"""Finish hooks (jobs.kinds.on_finish) run after commit; Job.finish_hooks_at says they ran, so
the sweeper can run those of a job whose process died first. The jobs finished before this
migration had theirs run inside their transaction (post_save receivers): they are marked. A
job's kind now takes its choices from the registered kinds."""

from django.db import migrations, models
from django.db.models import F

import jobs.models

FINAL = ("succeeded", "failed", "cancelled", "timed_out")


def mark_finished(apps, schema_editor):  # type: ignore[no-untyped-def]
    Job = apps.get_model("jobs", "Job")
    Job.objects.filter(status__in=FINAL, finish_hooks_at__isnull=True).update(
        finish_hooks_at=F("finished_at"))


class Migration(migrations.Migration):

    dependencies = [
        ("jobs", "0004_job_kind_ingest"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="finish_hooks_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="job",
            name="kind",
            field=models.CharField(choices=jobs.models.kind_choices, db_index=True,
                                   max_length=16),
        ),
        migrations.RunPython(mark_finished, migrations.RunPython.noop),
    ]
