"""The SSH host keys the hub's admin accepted, in OpenSSH's ``known_hosts`` format.

The same format as ``~/.ssh/known_hosts`` so a person can read, edit or seed it with the
usual tools (``ssh-keyscan``, ``ssh-keygen -F``). It is the hub's own file, never the
user's: a session opened through the hub must not trust keys that were accepted for some
other purpose, nor add keys to the user's file.

Entries name the address the hub connected to, ``ip`` for port 22 and ``[ip]:port``
otherwise (as OpenSSH writes them). Matching is exact: unlike asyncssh's matcher, a key
trusted for port 22 is never taken for another port of the same machine, so a second
server there is "unknown" (the admin is asked) rather than a false "mismatch".
Hashed names and ``@cert-authority`` / ``@revoked`` lines are not written by the hub and
are skipped when reading.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import asyncssh

FILE_MODE = 0o600


def host_pattern(host: str, port: int) -> str:
    """``host`` for the default port, ``[host]:port`` otherwise (OpenSSH's spelling)."""
    host = host.lower()
    return host if port == 22 else f"[{host}]:{port}"


class KnownHosts:
    """Trusted host keys, read from the file at every question (it is small, and a person
    may edit it while the hub runs)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def keys_for(self, host: str, port: int) -> list[asyncssh.SSHKey]:
        """Every key trusted for ``host:port``, in file order."""
        wanted = host_pattern(host, port)
        keys: list[asyncssh.SSHKey] = []
        for line in self._lines():
            fields = line.split()
            if len(fields) < 3 or fields[0].startswith(("@", "|")):
                continue
            if wanted not in fields[0].lower().split(","):
                continue
            try:
                keys.append(asyncssh.import_public_key(f"{fields[1]} {fields[2]}"))
            except (asyncssh.KeyImportError, ValueError):
                continue  # A damaged line trusts nothing; the others still count.
        return keys

    def fingerprint_for(self, host: str, port: int) -> str | None:
        """``SHA256:...`` of the first key trusted for ``host:port``, None when none is."""
        keys = self.keys_for(host, port)
        return keys[0].get_fingerprint("sha256") if keys else None

    def trust(self, host: str, port: int, key: asyncssh.SSHKey) -> None:
        """Add ``key`` for ``host:port``. The whole file is rewritten to a temporary file
        and renamed over the old one, so a crash leaves either the old or the new file,
        never half a line a later read would skip; created 0600 (no ``await`` in here, so
        two trusts in one event loop cannot interleave)."""
        if any(known == key for known in self.keys_for(host, port)):
            return
        entry = f"{host_pattern(host, port)} {key.export_public_key('openssh').decode().strip()}"
        text = self._text()  # Kept as it was, comments included; the entry goes last.
        if text and not text.endswith("\n"):
            text += "\n"
        text += entry + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".known_hosts.", dir=self.path.parent)
        try:
            if hasattr(os, "fchmod"):  # mkstemp makes it 0600 already; be explicit.
                os.fchmod(fd, FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _lines(self) -> list[str]:
        return [line for line in self._text().splitlines() if line.strip()
                and not line.lstrip().startswith("#")]
