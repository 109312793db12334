"""Secrets at rest: Fernet tokens under the keys of settings.FIELD_ENCRYPTION_KEYS.

The first key encrypts; every key decrypts (MultiFernet), so `manage.py rotate_encryption_key`
can re-encrypt under a new first key while the old one still reads what is stored.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


def fernet(keys: list[str] | None = None) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in (keys or settings.FIELD_ENCRYPTION_KEYS)])


def encrypt(plain: str, *, keys: list[str] | None = None) -> str:
    return fernet(keys).encrypt(plain.encode()).decode() if plain else ""


def decrypt(token: str, *, keys: list[str] | None = None) -> str:
    return fernet(keys).decrypt(token.encode()).decode() if token else ""


def rotate(token: str, *, keys: list[str] | None = None) -> str:
    """`token` re-encrypted under the first key (any of the keys may have encrypted it)."""
    return fernet(keys).rotate(token.encode()).decode() if token else ""
