"""The connection form. The client secret is write-only: never rendered back, and an empty
secret on edit keeps the stored one."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from connections.models import Connection, ConnectionKind
from connections.services import ADOBE_BASE_URL, ADOBE_IMS_URL

SANDBOX_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")

URL_INVALID = "Enter a full URL starting with http:// or https://, e.g. {example}."
NAME_TAKEN = "Another connection is already called {name!r}; choose another name."
SECRET_REQUIRED = "Enter the client secret from the Developer Console project."
SECRET_AGAIN = ("You changed where the secret goes ({fields}): enter the client secret again, "
                "so that the stored one is never sent anywhere it was not entered for.")
# Changing any of these sends the stored secret somewhere new, so it must be typed again.
SECRET_BOUND = {"ims_url": "IMS URL", "base_url": "platform URL", "client_id": "client id",
                "org_id": "org id", "kind": "kind"}
SANDBOX_INVALID = "Sandbox names are lower-case letters, digits and '-', e.g. prod or dev-team."
ORG_INVALID = "An IMS org id ends in @AdobeOrg, e.g. 1BD6382559DF0C130A49422D@AdobeOrg."


def http_url(value: str) -> None:
    """A URL with an http(s) scheme and a host; single-label hosts such as `web` are fine
    (Django's URLValidator refuses them, and compose's services are named so)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(URL_INVALID.format(example=ADOBE_BASE_URL))


class ConnectionForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="How people will recognise it in the "
                           "switcher, e.g. “Acme production”.")
    kind = forms.ChoiceField(choices=ConnectionKind.choices, initial=ConnectionKind.ADOBE,
                             widget=forms.RadioSelect)
    base_url = forms.CharField(
        label="Platform base URL", max_length=300, required=False, validators=[http_url],
        help_text=f"Leave empty for the default: {ADOBE_BASE_URL} for Adobe, "
                  f"{settings.BUILTIN_ENGINE_URL} for the built-in engine.")
    ims_url = forms.CharField(
        label="IMS URL", max_length=300, required=False, validators=[http_url],
        help_text=f"Where access tokens come from. Leave empty for {ADOBE_IMS_URL} "
                  "(or the built-in engine's own URL).")
    org_id = forms.CharField(label="IMS org id", max_length=100,
                             help_text="From the Developer Console project, e.g. "
                                       "1BD6382559DF0C130A49422D@AdobeOrg.")
    client_id = forms.CharField(label="Client id (API key)", max_length=200)
    client_secret = forms.CharField(
        label="Client secret", max_length=500, required=False, strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}))
    scopes = forms.CharField(max_length=500, required=False,
                             help_text="Comma-separated, as the Developer Console lists them. "
                                       "Leave empty for the standard AEP scopes.")
    default_sandbox = forms.CharField(max_length=100, initial="prod",
                                      help_text="The sandbox used unless someone picks "
                                                "another in the switcher.")

    def __init__(self, *args: Any, instance: Connection | None = None, **kwargs: Any) -> None:
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {name: getattr(instance, name) for name in (
                "name", "kind", "base_url", "ims_url", "org_id", "client_id", "scopes",
                "default_sandbox")}
        super().__init__(*args, **kwargs)
        secret = self.fields["client_secret"]
        if instance is not None and instance.has_secret:
            secret.help_text = ("A secret is stored. Leave this empty to keep it; "
                                "type a new one to replace it.")
        else:
            secret.help_text = "Stored encrypted; it is never shown again."

    @property
    def secret_needs_retyping(self) -> bool:
        """A secret was typed but the form came back with errors elsewhere: the field is empty
        again (it is never rendered with a value), so say so."""
        return (self.is_bound and bool(self.errors) and "client_secret" not in self.errors
                and bool(self.data.get("client_secret")))

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        others = Connection.objects.filter(name__iexact=name)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise ValidationError(NAME_TAKEN.format(name=name))
        return name

    def clean_org_id(self) -> str:
        org: str = self.cleaned_data["org_id"].strip()
        if not org.endswith("@AdobeOrg"):
            raise ValidationError(ORG_INVALID)
        return org

    def clean_default_sandbox(self) -> str:
        sandbox: str = self.cleaned_data["default_sandbox"].strip()
        if not SANDBOX_RE.match(sandbox):
            raise ValidationError(SANDBOX_INVALID)
        return sandbox

    def clean_client_secret(self) -> str:
        secret: str = self.cleaned_data.get("client_secret", "")
        has_stored = self.instance is not None and self.instance.has_secret
        if not secret and not has_stored:
            raise ValidationError(SECRET_REQUIRED)
        return secret

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        from connections.services import default_urls

        base_default, ims_default = default_urls(data.get("kind") or ConnectionKind.ADOBE)
        if "base_url" in data and not data["base_url"]:
            data["base_url"] = base_default
        if "ims_url" in data and not data["ims_url"]:
            data["ims_url"] = ims_default
        if "scopes" in data and not data["scopes"]:
            data["scopes"] = Connection._meta.get_field("scopes").get_default()
        if self.instance is not None and not data.get("client_secret") \
                and "client_secret" not in self.errors:
            moved = [label for name, label in SECRET_BOUND.items()
                     if name in data and data[name] != getattr(self.instance, name)]
            if moved:
                self.add_error("client_secret", SECRET_AGAIN.format(fields=", ".join(moved)))
        return data
