"""Shared web glue: roles and permissions, the audit log, navigation, htmx helpers, health."""
