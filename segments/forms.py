from __future__ import annotations

from typing import Any

from django import forms

from segments.models import EvaluationMethod

NAME_REQUIRED = "Give the segment a name people will recognise in the list."
PQL_REQUIRED = "Write the definition in PQL, for example: homeAddress.countryCode = \"US\""


class SegmentForm(forms.Form):
    name = forms.CharField(max_length=200, error_messages={"required": NAME_REQUIRED})
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    merge_policy_id = forms.ChoiceField(required=False, label="Merge policy")
    evaluation_method = forms.ChoiceField(choices=EvaluationMethod.choices,
                                          initial=EvaluationMethod.BATCH)
    pql = forms.CharField(label="Definition (PQL)", strip=False,
                          error_messages={"required": PQL_REQUIRED},
                          widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}))

    def __init__(self, *args: Any, merge_policies: list[tuple[str, str]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "The sandbox's default merge policy")] + list(merge_policies or [])
        current = self.initial.get("merge_policy_id") or (self.data.get("merge_policy_id")
                                                          if self.is_bound else "")
        if current and current not in {value for value, _ in choices}:
            choices.append((current, current))  # keep what is stored even if not listed
        field = self.fields["merge_policy_id"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices


class PQLJsonImportForm(forms.Form):
    pql_json = forms.CharField(label="pql/json", widget=forms.Textarea(attrs={"rows": 8}))
