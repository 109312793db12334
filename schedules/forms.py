from __future__ import annotations

import re
from typing import Any

from django import forms

from segments.models import Segment

SEGMENTS_REQUIRED = "Pick at least one saved definition to run."
TIME_INVALID = "Enter a time of day as HH:MM, for example 06:30."
CRON_REQUIRED = "Enter a cron expression, for example “0 6 * * 1-5” (06:00 on weekdays)."
NAME_REQUIRED = "Give the schedule a name, for example “Morning audiences”."
FREQUENCIES = [("daily", "Every day at a time"), ("cron", "Cron expression")]
TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class ScheduleForm(forms.Form):
    name = forms.CharField(max_length=200, error_messages={"required": NAME_REQUIRED})
    segments = forms.MultipleChoiceField(error_messages={"required": SEGMENTS_REQUIRED})
    frequency = forms.ChoiceField(choices=FREQUENCIES, initial="daily",
                                  widget=forms.RadioSelect)
    at = forms.CharField(required=False, initial="06:00", label="Time of day",
                         help_text="24-hour clock, in the time zone below.")
    cron = forms.CharField(required=False, max_length=100, label="Cron expression",
                           help_text="minute hour day-of-month month day-of-week, "
                                     "e.g. “30 5 * * 1-5”.")
    timezone = forms.CharField(max_length=64, initial="UTC", label="Time zone",
                               help_text="An IANA name, e.g. Europe/Paris.")
    export_dataset = forms.ChoiceField(required=False, label="Then export to",
                                       help_text="Optional: once the segment job succeeded, "
                                                 "export the members to this dataset.")
    email_owner = forms.BooleanField(required=False, initial=True,
                                     label="E-mail me when a run fails")

    def __init__(self, *args: Any, segments: list[Segment], datasets: list[tuple[str, str]],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.segment_rows = {str(segment.pk): segment for segment in segments}
        self.fields["segments"].choices = [  # type: ignore[attr-defined]
            (str(s.pk), s.name) for s in segments]
        self.dataset_names = dict(datasets)
        self.fields["export_dataset"].choices = [  # type: ignore[attr-defined]
            ("", "No export — only run the segments"), *datasets]

    @property
    def chosen_segments(self) -> list[Segment]:
        return [self.segment_rows[pk] for pk in self.cleaned_data.get("segments", [])]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("frequency") == "cron":
            if not (data.get("cron") or "").strip():
                self.add_error("cron", CRON_REQUIRED)
            else:
                data["cron_expression"] = data["cron"].strip()
        else:
            match = TIME.match((data.get("at") or "").strip())
            if not match:
                self.add_error("at", TIME_INVALID)
            else:
                data["cron_expression"] = f"{int(match[2])} {int(match[1])} * * *"
        return data
