"""The release workflow cannot run here; these checks keep it in step with packaging/.

They catch the drift that would only show on a tag push: a renamed build script, an
artifact pattern no script produces, a matrix that lost a platform.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML reads the workflow")

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return loaded


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    job: dict[str, Any] = workflow["jobs"]["installers"]
    return list(job["steps"])


def test_matrix_covers_the_three_desktop_platforms(workflow: dict[str, Any]) -> None:
    matrix = workflow["jobs"]["installers"]["strategy"]["matrix"]["include"]
    assert {entry["os"] for entry in matrix} == {"ubuntu-latest", "windows-latest",
                                                  "macos-latest"}
    assert workflow["jobs"]["installers"]["strategy"]["fail-fast"] is False


def test_every_script_the_workflow_calls_exists(workflow: dict[str, Any]) -> None:
    called = set()
    for step in steps(workflow):
        for path in re.findall(r"[\w./-]+\.(?:sh|ps1)|\.ci/run", step.get("run", "")):
            called.add(path.removeprefix("./"))
    assert called == {".ci/run", "packaging/build-linux.sh", "packaging/build-windows.ps1",
                      "packaging/build-macos.sh"}
    for path in called:
        assert (ROOT / path).is_file(), path


def test_tests_run_before_any_build_on_every_platform(workflow: dict[str, Any]) -> None:
    names = [step.get("name", "") for step in steps(workflow)]
    first_build = min(i for i, name in enumerate(names) if name.startswith("Build"))
    assert max(i for i, name in enumerate(names) if name.startswith("Test")) < first_build


def test_uploaded_patterns_match_what_the_scripts_write(workflow: dict[str, Any]) -> None:
    upload = next(s for s in steps(workflow) if s.get("uses", "").startswith(
        "actions/upload-artifact"))
    patterns = set(upload["with"]["path"].split())
    assert patterns == {"dist/*.deb", "dist/*.tar.gz", "dist/*.exe", "dist/*.dmg"}
    assert upload["with"]["if-no-files-found"] == "error"
    windows = (ROOT / "packaging" / "windows" / "gambiarra.iss").read_text(encoding="utf-8")
    assert "OutputBaseFilename=gambiarra-desktop-{#AppVersion}-windows-x64-setup" in windows
    macos = (ROOT / "packaging" / "build-macos.sh").read_text(encoding="utf-8")
    assert 'DMG="$OUT/gambiarra-desktop-$VERSION-macos-$(uname -m).dmg"' in macos


def test_windows_installer_explains_and_scopes_the_firewall_rule() -> None:
    script = (ROOT / "packaging" / "windows" / "gambiarra.iss").read_text(encoding="utf-8")
    task = next(line for line in script.splitlines() if line.startswith('Name: "firewall"'))
    assert "TCP port 3000" in task and "UDP port 5353" in task
    assert script.count("profile=private,domain") == 2  # Never on public networks.
    assert "advfirewall firewall delete rule" in script.split("[UninstallRun]", 1)[1]


def test_the_app_executable_opens_no_console_window_and_the_cli_does() -> None:
    spec = (ROOT / "packaging" / "pyinstaller" / "gambiarra.spec").read_text(encoding="utf-8")
    executables = dict(re.findall(r'name="(gambiarra(?:-desktop)?)",\s*console=(True|False)',
                                  spec))
    assert executables == {"gambiarra-desktop": "False", "gambiarra": "True"}
