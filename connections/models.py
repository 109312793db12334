from __future__ import annotations

from django.conf import settings
from django.db import models

from connections.crypto import decrypt, encrypt


class ConnectionKind(models.TextChoices):
    BUILTIN = "builtin", "Built-in engine"
    ADOBE = "adobe", "Adobe Experience Platform"


class ConnectionQuerySet(models.QuerySet["Connection"]):
    def enabled(self) -> ConnectionQuerySet:
        return self.filter(is_enabled=True)


class Connection(models.Model):
    """Where the dashboard sends its API calls: the built-in engine or an Adobe org.

    The client secret is stored encrypted (`client_secret_encrypted`); read it with
    `client_secret()`, write it with `set_client_secret()`. It never leaves the server.
    """

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=ConnectionKind.choices,
                            default=ConnectionKind.ADOBE)
    base_url = models.URLField("platform base URL", max_length=300,
                               help_text="e.g. https://platform.adobe.io")
    ims_url = models.URLField("IMS URL", max_length=300,
                              help_text="e.g. https://ims-na1.adobelogin.com")
    org_id = models.CharField("IMS org id", max_length=100)
    client_id = models.CharField("client id (API key)", max_length=200)
    client_secret_encrypted = models.TextField(blank=True)
    scopes = models.CharField(max_length=500, blank=True,
                              default="openid,AdobeID,read_organizations,additional_info.projectedProductContext,session")
    default_sandbox = models.CharField(max_length=100, default="prod")
    # The sandboxes the last successful test listed; the navigation's switcher offers these
    # (read from our database, never from the API on a page view).
    sandboxes = models.JSONField(default=list, blank=True)
    is_enabled = models.BooleanField(default=True)
    # The connection everyone works in until they choose another in the switcher; marked by
    # an admin, and only after a test passed (a new connection never moves anybody).
    is_default = models.BooleanField(default=False)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_message = models.CharField(max_length=500, blank=True)
    # The steps of the last test (name, ok, detail), so a page can show the result after a
    # redirect without calling the API again.
    last_test_steps = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ConnectionQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True),
                                    name="one_default_connection"),
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:  # never the secret
        return f"<Connection {self.pk} {self.name!r} {self.kind}>"

    def client_secret(self) -> str:
        return decrypt(self.client_secret_encrypted)

    def set_client_secret(self, plain: str) -> None:
        self.client_secret_encrypted = encrypt(plain)

    @property
    def has_secret(self) -> bool:
        return bool(self.client_secret_encrypted)

    @property
    def known_sandboxes(self) -> list[str]:
        """The sandboxes the switcher offers: those the last test listed, else the default."""
        names = [name for name in self.sandboxes if isinstance(name, str) and name]
        if self.default_sandbox and self.default_sandbox not in names:
            names.insert(0, self.default_sandbox)
        return names
