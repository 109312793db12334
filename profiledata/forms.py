from __future__ import annotations

from typing import Any

from django import forms

NEW = "new"
DATASET_REQUIRED = "Choose the dataset the file goes into, or “New dataset”."
NAME_REQUIRED = "Give the new dataset a name, for example “CRM customers”."
FILE_REQUIRED = "Choose a file to send: JSON Lines, a JSON array, Parquet or CSV."
KIND_CHOICES = [("profile", "Profile records (attributes: names, addresses, loyalty …)"),
                ("event", "Experience events (page views, purchases … with a timestamp)")]


class AddDataForm(forms.Form):
    """A file for a profile-enabled dataset: an existing one, or a new one of a class."""

    dataset = forms.ChoiceField(error_messages={"required": DATASET_REQUIRED,
                                                "invalid_choice": DATASET_REQUIRED})
    name = forms.CharField(max_length=200, required=False, label="New dataset's name")
    kind = forms.ChoiceField(choices=KIND_CHOICES, initial="profile", required=False,
                             label="It holds")
    file = forms.FileField(error_messages={"required": FILE_REQUIRED,
                                           "empty": "The file is empty."})

    def __init__(self, *args: Any, datasets: list[tuple[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["dataset"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [*datasets, (NEW, "New dataset …")]
        if not datasets:
            self.fields["dataset"].initial = NEW

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("dataset") == NEW:
            if not (data.get("name") or "").strip():
                self.add_error("name", NAME_REQUIRED)
            if data.get("kind") not in dict(KIND_CHOICES):
                data["kind"] = "profile"
        return data
