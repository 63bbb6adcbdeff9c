"""Markers for tests that exercise POSIX-only mechanisms.

The release workflow runs the suite on Windows and macOS too. A test that writes a
``#!/bin/sh`` stand-in for a system tool, or checks a clean exit on SIGTERM, tests a
mechanism Windows does not have; it is skipped there, never weakened.
"""

from __future__ import annotations

import sys

import pytest

posix_only = pytest.mark.skipif(
    sys.platform == "win32", reason="uses POSIX shell scripts or signals, absent on Windows")
