from __future__ import annotations

from typing import Any

from django import forms

from segments.models import Segment

SEGMENTS_REQUIRED = "Pick at least one segment to export."
DATASET_REQUIRED = ("Choose the dataset to export to. If there is none, create one on the "
                    "Datasets page.")
DATASET_NAME_REQUIRED = "Give the dataset a name, for example “Spring campaign audience”."
FIELD_UNKNOWN = ("“{path}” is not a field of the {what} union schema. Pick one of the "
                 "suggestions, or leave the box empty to export every field.")
EVENTS_OFF = "Tick “Include events” to export event fields, or clear this box."
DATETIME_INVALID = "Enter a date and time, for example 2026-01-31 09:00."
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]
EMPTY_PROFILES_LABEL = "Include profiles known only from their events"
EMPTY_PROFILES_HELP = (
    "Some members are known only from what they did: a website visitor's cookie id (ECID) "
    "with page views or an abandoned cart, but no CRM or loyalty record, so no name or "
    "address. Adobe Experience Platform calls them empty profiles and leaves them out of an "
    "export unless asked (filter.emptyProfiles). Ticked, every member of the segments gets "
    "a row, with its identities; unticked, only members with profile attributes do.")


def split_paths(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _known(path: str, catalog: set[str]) -> bool:
    """A declared field, or an object above some (``person.name`` exports all its parts)."""
    return path in catalog or any(known.startswith(path + ".") for known in catalog)


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class ExportForm(forms.Form):
    segments = forms.MultipleChoiceField(error_messages={"required": SEGMENTS_REQUIRED})
    dataset = forms.ChoiceField(label="Destination dataset",
                                error_messages={"required": DATASET_REQUIRED,
                                                "invalid_choice": DATASET_REQUIRED})
    profile_fields = forms.CharField(required=False, label="Profile fields",
                             help_text="Comma-separated dot paths. Empty: every field.")
    merge_policy = forms.ChoiceField(required=False, label="Merge policy")
    from_ingest = forms.DateTimeField(
        required=False, label="Only profiles updated after", widget=DateTimeLocalInput(),
        input_formats=DATETIME_FORMATS, error_messages={"invalid": DATETIME_INVALID},
        help_text="UTC. Empty: every member, however old its data.")
    empty_profiles = forms.BooleanField(required=False, initial=True,
                                        label=EMPTY_PROFILES_LABEL, help_text=EMPTY_PROFILES_HELP)
    include_events = forms.BooleanField(required=False, label="Include events")
    event_fields = forms.CharField(required=False, label="Event fields",
                                   help_text="Comma-separated dot paths. Empty: every field.")
    events_from = forms.DateTimeField(
        required=False, label="Events ingested after", widget=DateTimeLocalInput(),
        input_formats=DATETIME_FORMATS, error_messages={"invalid": DATETIME_INVALID},
        help_text="UTC. Empty: all of each member's events.")

    def __init__(self, *args: Any, segments: list[Segment], datasets: list[tuple[str, str]],
                 merge_policies: list[tuple[str, str]], profile_fields: set[str],
                 event_fields: set[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.segment_rows = {str(segment.pk): segment for segment in segments}
        choices: dict[str, list[tuple[str, str]]] = {
            "segments": [(str(s.pk), s.name) for s in segments],
            "dataset": [("", "Choose a dataset"), *datasets],
            "merge_policy": [("", "The segments' own merge policy"), *merge_policies],
        }
        for name, options in choices.items():
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = options
        self.profile_catalog = profile_fields
        self.event_catalog = event_fields
        self.dataset_names = dict(datasets)

    def _paths(self, name: str, catalog: set[str], what: str) -> list[str]:
        paths = split_paths(self.cleaned_data.get(name, ""))
        if catalog:  # the schema could not be read: the API checks the paths instead
            unknown = [path for path in paths if not _known(path, catalog)]
            if unknown:
                raise forms.ValidationError(FIELD_UNKNOWN.format(path=unknown[0], what=what))
        return paths

    def clean_profile_fields(self) -> list[str]:
        return self._paths("profile_fields", self.profile_catalog, "profile")

    def clean_event_fields(self) -> list[str]:
        return self._paths("event_fields", self.event_catalog, "event")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("include_events"):
            if data.get("event_fields"):
                self.add_error("event_fields", EVENTS_OFF)
            if data.get("events_from"):
                self.add_error("events_from", EVENTS_OFF)
        return data

    @property
    def chosen_segments(self) -> list[Segment]:
        return [self.segment_rows[pk] for pk in self.cleaned_data.get("segments", [])]


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=200, error_messages={"required": DATASET_NAME_REQUIRED})
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
