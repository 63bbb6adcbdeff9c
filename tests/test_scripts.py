"""The README's two commands: run.sh starts without pip once set up (offline too), set-up
runs again when pyproject.toml changes and says clearly when pip cannot reach an index,
and test.sh asks for the system packages it cannot install itself.

pip is made to fail for real: no index, no find-links, no config files; so a script that
ran it would fail or print pip's text, and the tests would see it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from gambiarra_desktop import __version__

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="bash scripts")


def offline_env(stamp: Path) -> dict[str, str]:
    """The environment of a machine with no network: pip has nowhere to install from."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env.update(
        GAMBIARRA_SETUP_STAMP=str(stamp),
        PIP_CONFIG_FILE=os.devnull,  # No config file adds an index or find-links.
        PIP_NO_INDEX="1",
        PIP_INDEX_URL="http://127.0.0.1:9/",
    )
    return env


def pyproject_digest() -> str:
    return hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()


def write_stamp(path: Path, digest: str, extras: str = "") -> float:
    path.write_text(f"pyproject-sha256 {digest}\nextras {extras}\n")
    old = time.time() - 100
    os.utime(path, (old, old))
    return path.stat().st_mtime


def test_run_starts_offline_without_pip_when_set_up(tmp_path: Path) -> None:
    stamp = tmp_path / "stamp"
    mtime = write_stamp(stamp, pyproject_digest())
    started = time.monotonic()
    result = subprocess.run(["bash", "scripts/run.sh", "--version"], cwd=REPO,
                            env=offline_env(stamp), capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"gambiarra-desktop {__version__}"
    assert result.stderr == ""  # No set-up message, no pip output, no setuptools banner.
    assert stamp.stat().st_mtime == mtime
    assert elapsed < 5.0  # About 0.1 s here; pip alone took 6-10 s before.


def test_setup_keeps_extras_already_installed(tmp_path: Path) -> None:
    """test.sh installs the test tools; asking for fewer (run.sh) must not reinstall."""
    stamp = tmp_path / "stamp"
    mtime = write_stamp(stamp, pyproject_digest(), "package,test")
    for extras in ([], ["test"], ["package,test"]):
        result = subprocess.run(["bash", "scripts/setup.sh", *extras], cwd=REPO,
                                env=offline_env(stamp), capture_output=True, text=True,
                                timeout=60)
        assert (result.returncode, result.stderr) == (0, "")
    assert stamp.stat().st_mtime == mtime


@pytest.mark.parametrize("stamp_text", ["pyproject-sha256 0123abcd\nextras \n", None, "x"])
def test_changed_pyproject_runs_setup_and_explains_a_failed_install(
    tmp_path: Path, stamp_text: str | None
) -> None:
    """A stale, missing or unreadable stamp means set-up runs; offline, pip fails (before it
    touches .venv: the build environment is what cannot be had) and the message says why."""
    stamp = tmp_path / "stamp"
    if stamp_text is not None:
        stamp.write_text(stamp_text)
    result = subprocess.run(["bash", "scripts/run.sh", "--version"], cwd=REPO,
                            env=offline_env(stamp), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Setting up .venv" in result.stderr
    assert "cannot install: no network?" in result.stderr
    assert "gambiarra-desktop" not in result.stdout  # The app did not start half set up.
    assert "Traceback" not in result.stderr
    assert (stamp.read_text() if stamp.exists() else None) == stamp_text  # Not marked done.


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="drops to user nobody, which needs root")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_test_command_prints_the_apt_line_when_it_cannot_install(
    request: pytest.FixtureRequest,
) -> None:
    """A user who is not root and has no password-less sudo gets the exact command to run.

    ``dpkg`` says libxcb-icccm4 is missing (a stand-in on PATH: the real one is installed
    here), and ``sudo -n`` fails as it does for a user who needs a password.
    """
    # pytest's tmp_path sits under a 0700 dir that user nobody cannot enter.
    fake_bin = Path(tempfile.mkdtemp(prefix="gambiarra-fake-bin-"))
    request.addfinalizer(lambda: shutil.rmtree(fake_bin, ignore_errors=True))
    fake_bin.chmod(0o755)
    (fake_bin / "dpkg").write_text('#!/bin/sh\n[ "$2" = libxcb-icccm4 ] && exit 1\nexit 0\n')
    (fake_bin / "sudo").write_text("#!/bin/sh\necho 'sudo: a password is required' >&2\n"
                                   "exit 1\n")
    for tool in fake_bin.iterdir():
        tool.chmod(0o755)
    env = {"PATH": f"{fake_bin}:/usr/bin:/bin", "HOME": str(fake_bin), "LANG": "C.UTF-8"}
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         "bash", "scripts/test.sh", "--co"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert ("sudo apt-get install -y --no-install-recommends libxcb-icccm4\n"
            in result.stderr)
    assert "Setting up" not in result.stderr and result.stdout == ""  # Stopped first.


def test_ci_runs_the_readme_test_command() -> None:
    """CI goes through the same command a person runs, so the two cannot drift apart."""
    lines = [line for line in (REPO / ".ci/run").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert any("scripts/test.sh" in line for line in lines)
    assert not any("apt-get" in line for line in lines)
