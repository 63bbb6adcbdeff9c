"""The environment a command run for someone else gets: the hub's own, minus its secrets.

The hub's process holds provider API keys, the admin password, Redis URLs with passwords
and the like in its environment; a terminal session or an agent's command is run for
someone who was never given those. So every variable whose *name* says it is a secret, every
setting of the hub itself (``GAMBIARRA_*``, Redis) and every value that carries a password in
a URL (``scheme://user:password@host``) is dropped. The rest (PATH, HOME, LANG, USER, SHELL,
locale, proxies without credentials...) is kept: commands need it to behave normally.

This is a deny list on purpose: an allow list breaks people's tools in ways they cannot see
(a missing ``JAVA_HOME`` or ``VIRTUAL_ENV``), while the names that hold secrets follow a few
conventions that are matched here generously (``FOO_API_KEY``, ``GITHUB_TOKEN``,
``DB_PASSWORD``, ``AWS_SECRET_ACCESS_KEY``, ``SSH_AUTH_SOCK``...).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

_SECRET_NAME = re.compile(
    r"PASSWORD|SECRET|TOKEN|CREDENTIAL|COOKIE"  # Anywhere in the name.
    r"|(?:^|_)(?:API_?KEY|KEY|PASS|PASSWD|PASSPHRASE|AUTH|DSN)(?:$|_)"  # As a word.
    r"|_PWD(?:$|_)",  # MYSQL_PWD, not PWD/OLDPWD.
    re.IGNORECASE)
"""``*_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*PASSWORD*`` and their cousins. ``AUTH`` as a word
catches ``SSH_AUTH_SOCK`` (the agent would sign logins for the command) and ``*_AUTH``
headers; ``MYSQL_PWD`` is a password but ``PWD``/``OLDPWD`` (the current folder) are not."""

_HUB_SETTING = re.compile(r"^GAMBIARRA_|REDIS_URL|^DATABASE_URL$", re.IGNORECASE)
"""The hub's own configuration: none of the command's business, and often a credential."""

_URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.\-]*://[^/@\s:]*:[^/@\s]*@", re.IGNORECASE)
"""``redis://:pw@host``, ``postgres://user:pw@host/db``: a password whatever the name."""

_FROZEN_LIBRARY_PATHS = ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH")
"""A PyInstaller bundle points these at its own libraries and keeps the user's values (if
any) in ``*_ORIG``; the user's programs must get the user's libraries back."""


def is_secret_name(name: str) -> bool:
    """Whether a variable called ``name`` is dropped whatever its value."""
    return bool(_SECRET_NAME.search(name) or _HUB_SETTING.search(name))


def scrubbed_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) without secrets or hub settings, with
    ``TERM=dumb`` when it names no terminal (commands' output is read as text, not painted).
    """
    source = os.environ if base is None else base
    kept = {name: value for name, value in source.items()
            if not is_secret_name(name) and not _URL_WITH_PASSWORD.search(value)}
    if getattr(sys, "frozen", False):
        for name in _FROZEN_LIBRARY_PATHS:
            original = kept.pop(f"{name}_ORIG", None)
            if original is None:  # Unset before the bundle set it: unset again.
                kept.pop(name, None)
            else:
                kept[name] = original
    kept.setdefault("TERM", "dumb")
    return kept
