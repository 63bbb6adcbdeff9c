"""The Linux downloads, built by ``packaging/build-linux.sh`` and then run like a user would.

One build per test session (about 45 s here): the PyInstaller bundle, the ``.deb`` and the
tarball. Every program is started from outside the checkout with a bare environment, so
nothing can come from the developer's venv by accident.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import gambiarra_desktop

ROOT = Path(__file__).resolve().parents[2]
VERSION = gambiarra_desktop.__version__
pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux packages"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian)"),
    pytest.mark.timeout(600),
]


@dataclass(frozen=True)
class Built:
    bundle: Path
    deb: Path
    tarball: Path


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("dist")
    env = dict(os.environ, GAMBIARRA_PYTHON=sys.executable,
               GAMBIARRA_BUILD_DIR=str(out / "build"))
    result = subprocess.run(["bash", str(ROOT / "packaging" / "build-linux.sh"), str(out)],
                            env=env, capture_output=True, text=True, timeout=540, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    return Built(bundle=out / "build" / "bundle" / "gambiarra-desktop",
                 deb=out / f"gambiarra-desktop_{VERSION}_{arch}.deb",
                 tarball=out / f"gambiarra-desktop-{VERSION}-linux-{os.uname().machine}.tar.gz")


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    """What a desktop session hands a freshly installed app: no venv, no PYTHONPATH."""
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_CONFIG_HOME": str(home / ".config"), **extra}


def self_test(program: Path, env: dict[str, str], cwd: Path,
              wrapper: tuple[str, ...] = ()) -> dict[str, object]:
    result = subprocess.run([*wrapper, str(program), "--self-test"], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, object] = json.loads(result.stdout.split("self-test: ", 1)[1])
    assert report["visible"] is True and report["window"] == "Gambiarra"
    assert report["health"]["status"] == "ok"  # type: ignore[index]
    assert report["iconDrawn"] is True
    return report


def test_bundle_carries_the_qt_xcb_plugin_and_its_libraries(built: Built) -> None:
    internal = built.bundle / "_internal"
    plugin = internal / "PySide6" / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    assert plugin.is_file()
    assert (built.bundle / "gambiarra-desktop").is_file()
    assert (built.bundle / "gambiarra").is_file()
    assert (internal / "resources" / "style.qss").is_file()
    assert (internal / "resources" / "icons" / "gambiarra.svg").is_file()
    folders = sorted({str(p.parent) for p in internal.rglob("*.so*")})
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(folders))
    ldd = subprocess.run(["ldd", str(plugin)], env=env, capture_output=True, text=True,
                         check=True, timeout=30).stdout
    assert "not found" not in ldd
    for library in ("libQt6XcbQpa.so.6", "libxcb-cursor.so.0", "libxcb-icccm.so.4",
                    "libxkbcommon-x11.so.0"):
        resolved = re.search(rf"{re.escape(library)} => (\S+)", ldd)
        assert resolved is not None, library
        assert resolved.group(1).startswith(str(internal)), (library, resolved.group(1))
    # The unused GTK theme would make the package depend on all of GTK.
    assert not (internal / "PySide6" / "Qt" / "plugins" / "platformthemes" / "libqgtk3.so"
                ).exists()


def test_bundle_opens_its_window_and_hosts_a_hub_offscreen(built: Built,
                                                           tmp_path: Path) -> None:
    env = bare_env(tmp_path / "home", QT_QPA_PLATFORM="offscreen")
    report = self_test(built.bundle / "gambiarra-desktop", env, cwd=tmp_path)
    assert report["platform"] == "offscreen"


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run (.ci/run has it)")
def test_bundle_runs_on_a_real_x_server_through_the_xcb_plugin(built: Built,
                                                               tmp_path: Path) -> None:
    env = bare_env(tmp_path / "home", QT_QPA_PLATFORM="xcb")
    report = self_test(built.bundle / "gambiarra-desktop", env, cwd=tmp_path,
                       wrapper=("xvfb-run", "-a"))
    assert report["platform"] == "xcb"


def test_first_run_creates_the_data_dir_and_quits_cleanly_on_sigterm(
    built: Built, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = bare_env(home, QT_QPA_PLATFORM="offscreen")
    data_dir = home / ".local" / "share" / "gambiarra-desktop"
    assert not data_dir.exists()
    app = subprocess.Popen([str(built.bundle / "gambiarra-desktop")], env=env, cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not data_dir.is_dir():
            assert app.poll() is None, app.communicate()[0]
            assert time.monotonic() < deadline, "the data dir never appeared"
            time.sleep(0.1)
        time.sleep(1.0)  # Let the window finish starting before asking it to quit.
        app.send_signal(signal.SIGTERM)
        output, _ = app.communicate(timeout=20)
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate()
    assert app.returncode == 0, output
    assert "Gambiarra Desktop closed" in output
    assert (data_dir.stat().st_mode & 0o777) == 0o700
    # Started from a menu there is no terminal: the log file is where problems show up.
    log = home / ".local" / "state" / "gambiarra-desktop" / "log" / "gambiarra-desktop.log"
    assert "Gambiarra Desktop closed" in log.read_text()


@pytest.fixture
def headless_hub(built: Built, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = bare_env(tmp_path / "home")
    hub = subprocess.Popen(
        [str(built.bundle / "gambiarra"), "serve", "--host", "127.0.0.1", "--port", "0",
         "--data-dir", str(tmp_path / "hub")],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert hub.stdout is not None
        url = ""
        for _ in range(20):
            line = hub.stdout.readline()
            if "Local API:" in line:
                url = line.split("Local API:", 1)[1].strip()
                break
        assert url, "the bundled CLI never said where it listens"
        yield hub, url
    finally:
        if hub.poll() is None:
            hub.kill()
        hub.communicate()


def test_bundled_cli_runs_a_headless_hub(headless_hub: tuple[subprocess.Popen[str], str]
                                         ) -> None:
    hub, url = headless_hub
    with urllib.request.urlopen(f"{url}/health", timeout=10) as response:
        assert json.load(response)["status"] == "ok"
    request = urllib.request.Request(f"{url}/rooms", data=b'{"name": "Packaged"}',
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        code = json.load(response)["room"]["code"]
        assert len(code) == 6
    # The guests' web page comes from files in the package: the bundle must carry them.
    with urllib.request.urlopen(f"{url}/r/{code}", timeout=10) as response:
        assert b'<script type="module" src="/web/app.js">' in response.read()
    with urllib.request.urlopen(f"{url}/web/chat.js", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/javascript")
    hub.send_signal(signal.SIGTERM)
    assert hub.wait(timeout=20) == 0


def deb_field(deb: Path, field: str) -> str:
    return subprocess.run(["dpkg-deb", "--field", str(deb), field], capture_output=True,
                          text=True, check=True, timeout=60).stdout.strip()


def test_deb_installs_the_app_on_the_path_and_in_the_menu(built: Built, tmp_path: Path
                                                          ) -> None:
    assert deb_field(built.deb, "Package") == "gambiarra-desktop"
    assert deb_field(built.deb, "Version") == VERSION
    depends = [d.strip() for d in deb_field(built.deb, "Depends").split(",")]
    assert "libc6" in depends
    for package in depends:  # Worked out from the bundle: each is installed right here.
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                                capture_output=True, text=True, check=False, timeout=30)
        assert status.stdout == "install ok installed", package
    if shutil.which("apt-get"):  # apt itself accepts it: control file and Depends resolve.
        simulated = subprocess.run(
            ["apt-get", "install", "--simulate", "--no-install-recommends", str(built.deb)],
            capture_output=True, text=True, check=False, timeout=120)
        assert simulated.returncode == 0, simulated.stdout + simulated.stderr
        assert f"Inst gambiarra-desktop ({VERSION} " in simulated.stdout
    listing = subprocess.run(["dpkg-deb", "--contents", str(built.deb)], capture_output=True,
                             text=True, check=True, timeout=60).stdout
    assert "./usr/bin/gambiarra-desktop -> /opt/gambiarra-desktop/gambiarra-desktop" in listing
    assert "./usr/bin/gambiarra -> /opt/gambiarra-desktop/gambiarra" in listing
    assert "./usr/share/icons/hicolor/256x256/apps/gambiarra-desktop.png" in listing
    assert "./usr/share/icons/hicolor/scalable/apps/gambiarra-desktop.svg" in listing
    assert " root/root " in listing and "./opt/gambiarra-desktop/_internal/" in listing

    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(built.deb), str(root)], check=True, timeout=120)
    entry = root / "usr" / "share" / "applications" / "gambiarra-desktop.desktop"
    validate_desktop_entry(entry)
    assert "Exec=gambiarra-desktop\n" in entry.read_text()
    assert "Icon=gambiarra-desktop\n" in entry.read_text()
    env = bare_env(tmp_path / "home", QT_QPA_PLATFORM="offscreen")
    self_test(root / "opt" / "gambiarra-desktop" / "gambiarra-desktop", env, cwd=tmp_path)
    # Started through a symlink, as /usr/bin/gambiarra is, it still finds its libraries.
    on_path = tmp_path / "bin" / "gambiarra"
    on_path.parent.mkdir()
    on_path.symlink_to(root / "opt" / "gambiarra-desktop" / "gambiarra")
    version = subprocess.run([str(on_path), "--version"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=60, check=False)
    assert version.returncode == 0 and version.stdout.strip() == f"gambiarra {VERSION}"


def validate_desktop_entry(entry: Path) -> None:
    validator = shutil.which("desktop-file-validate")
    if validator is None:
        pytest.skip("needs desktop-file-validate (desktop-file-utils; .ci/run installs it)")
    result = subprocess.run([validator, str(entry)], capture_output=True, text=True,
                            check=False, timeout=30)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout


def test_tarball_runs_where_unpacked_and_adds_itself_to_the_menu(built: Built,
                                                                 tmp_path: Path) -> None:
    with tarfile.open(built.tarball) as archive:
        names = archive.getnames()
        assert all(n.split("/", 1)[0] == f"gambiarra-desktop-{VERSION}" for n in names)
        archive.extractall(tmp_path / "unpacked", filter="tar")
    top = tmp_path / "unpacked" / f"gambiarra-desktop-{VERSION}"
    home = tmp_path / "home"
    env = bare_env(home, QT_QPA_PLATFORM="offscreen")
    self_test(top / "gambiarra-desktop", env, cwd=tmp_path)

    subprocess.run([str(top / "install-desktop-entry.sh")], env=env, check=True, timeout=30,
                   capture_output=True)
    entry = home / ".local" / "share" / "applications" / "gambiarra-desktop.desktop"
    validate_desktop_entry(entry)
    assert f'Exec="{top}/gambiarra-desktop"' in entry.read_text()
    icon = home / ".local" / "share" / "icons" / "hicolor" / "256x256" / "apps"
    assert (icon / "gambiarra-desktop.png").is_file()
    subprocess.run([str(top / "install-desktop-entry.sh"), "--remove"], env=env, check=True,
                   timeout=30, capture_output=True)
    assert not entry.exists()
