"""The sidebar: which sections exist, where they live, and which roles see them.

A section whose app has not been built yet points at `core:section`, a page that says so;
the app's issue replaces `url_name` with its own page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from core.roles import ADMINS, EVERYONE, LEADS, Role


@dataclass(frozen=True)
class Section:
    slug: str
    label: str
    group: str
    roles: frozenset[Role]
    description: str
    url_name: str = "core:section"
    icon: str = "dot"

    @property
    def url(self) -> str:
        if self.url_name == "core:section":
            return reverse(self.url_name, args=[self.slug])
        return reverse(self.url_name)


SECTIONS: tuple[Section, ...] = (
    Section("segments", "Segments", "Workspace", EVERYONE,
            "Write PQL segment definitions, estimate and preview audiences, run segment jobs.",
            url_name="segments:list", icon="segments"),
    Section("exports", "Exports", "Workspace", EVERYONE,
            "Send audiences to datasets and read the exported members back.",
            url_name="exports:list", icon="exports"),
    Section("jobs", "Jobs", "Workspace", EVERYONE,
            "Every preview, segment and export job: who ran what, when, how long, what failed.",
            url_name="jobs:list", icon="jobs"),
    Section("schedules", "Schedules", "Workspace", LEADS,
            "Run segments and exports on time without anyone clicking.",
            url_name="schedules:list", icon="schedules"),
    Section("alerts", "Alerts", "Workspace", LEADS,
            "Failed and timed-out jobs and schedule runs that need someone to look.",
            url_name="jobs:alerts", icon="alert"),
    Section("connections", "Connections", "Admin", ADMINS,
            "Adobe Experience Platform and built-in engine connections and their credentials.",
            url_name="connections:list", icon="connections"),
    Section("data", "Profile data", "Admin", ADMINS,
            "The datasets that feed the profiles, their batches and merge policies; send in "
            "new data.",
            url_name="profiledata:overview", icon="data"),
    Section("users", "Users & roles", "Admin", ADMINS,
            "Who can sign in, and whether they are a marketer, a team lead or an admin.",
            url_name="core:users", icon="users"),
    Section("audit", "Audit log", "Admin", ADMINS,
            "Every change anybody made, with the state before and after.",
            url_name="core:audit", icon="audit"),
)

SECTIONS_BY_SLUG = {section.slug: section for section in SECTIONS}


def sections_for(role: Role | None) -> list[Section]:
    return [section for section in SECTIONS if role in section.roles]
