"""Turn the PyInstaller bundle into the two Linux downloads: a ``.deb`` and a portable tarball.

Both carry the same one-dir bundle, a desktop entry and the icon in every hicolor size:

* ``gambiarra-desktop_<version>_<arch>.deb`` installs the bundle to
  ``/opt/gambiarra-desktop``, puts ``gambiarra-desktop`` and ``gambiarra`` on the PATH and
  the app in the desktop's menu. Its ``Depends`` are worked out from the bundle itself:
  every shared library the bundle loads from the system is looked up with ``dpkg -S``,
  so the package asks for exactly what it uses (the C library, OpenGL, fontconfig …).
* ``gambiarra-desktop-<version>-linux-<arch>.tar.gz`` runs from wherever it is unpacked;
  its ``install-desktop-entry.sh`` adds it to the current user's menu without root.

Only Debian's ``dpkg-deb`` and the standard library are used: AppImage tooling downloads
its own binaries, which cannot be fetched on the build machines.

Usage: ``python packaging/tools/linux_packages.py --bundle dist/gambiarra-desktop
--icons build/icons --out dist --version 0.1.0``
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINUX = ROOT / "packaging" / "linux"
APP_ID = "gambiarra-desktop"
INSTALL_DIR = Path("opt") / APP_ID
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ELF_MAGIC = b"\x7fELF"
# Resolved libraries under these come with the dynamic loader itself, not a package.
VIRTUAL_LIBRARIES = ("linux-vdso", "linux-gate")


def desktop_entry(exec_line: str, icon: str) -> str:
    template = (LINUX / f"{APP_ID}.desktop").read_text(encoding="utf-8")
    return template.replace("@EXEC@", exec_line).replace("@ICON@", icon)


def elf_files(bundle: Path) -> list[Path]:
    found = []
    for path in sorted(bundle.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as handle:
                if handle.read(4) == ELF_MAGIC:
                    found.append(path)
    return found


def system_libraries(bundle: Path) -> set[str]:
    """Shared libraries the bundle's programs and libraries take from the system.

    ``ldd`` runs with the bundle's own library folders first on the search path, as the
    PyInstaller bootloader sets them, so whatever still resolves outside the bundle is a
    true system dependency. A library that resolves nowhere is an error: the package
    would not start on a machine like this one.
    """
    elves = elf_files(bundle)
    search = sorted({str(p.parent) for p in elves if ".so" in p.name})
    env = dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join(search))
    outside: set[str] = set()
    missing: set[str] = set()
    bundle_root = str(bundle.resolve())
    for elf in elves:
        result = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, env=env,
                                check=False, timeout=30)
        for line in result.stdout.splitlines():
            name, _, target = line.strip().partition(" => ")
            if "not found" in target:
                missing.add(f"{name} (needed by {elf.relative_to(bundle)})")
                continue
            match = re.match(r"(/\S+)", target or name)
            if match is None or name.startswith(VIRTUAL_LIBRARIES):
                continue
            library = match.group(1)
            if not os.path.realpath(library).startswith(bundle_root):
                outside.add(library)
    if missing:
        raise SystemExit("linux_packages: libraries not found:\n  " + "\n  ".join(sorted(missing)))
    return outside


def owning_packages(libraries: set[str]) -> list[str]:
    """The Debian packages that own ``libraries`` (architecture qualifiers dropped)."""
    owners: set[str] = set()
    for library in sorted(libraries):
        candidates = [library, os.path.realpath(library)]
        candidates += [c.replace("/usr/lib/", "/lib/", 1) for c in candidates]
        candidates += [c.replace("/lib/", "/usr/lib/", 1) for c in candidates
                       if c.startswith("/lib/")]
        for candidate in dict.fromkeys(candidates):
            result = subprocess.run(["dpkg", "-S", candidate], capture_output=True,
                                    text=True, check=False, timeout=30)
            if result.returncode == 0:
                package = result.stdout.split(":", 1)[0].split(",")[0].strip()
                owners.add(package)
                break
        else:
            raise SystemExit(f"linux_packages: no Debian package owns {library}")
    return sorted(owners)


def install_icons(icons: Path, share: Path) -> None:
    for size in ICON_SIZES:
        target = share / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(icons / "png" / f"{size}.png", target)
    scalable = share / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "resources" / "icons" / "gambiarra.svg", scalable)


def installed_size_kib(root: Path) -> int:
    total = sum(p.lstat().st_size for p in root.rglob("*") if not p.is_dir())
    return (total + 1023) // 1024


def build_deb(bundle: Path, icons: Path, out: Path, version: str, arch: str) -> Path:
    depends = owning_packages(system_libraries(bundle))
    with tempfile.TemporaryDirectory(prefix="gambiarra-deb-") as tmp:
        root = Path(tmp) / "root"
        shutil.copytree(bundle, root / INSTALL_DIR, symlinks=True)
        bin_dir = root / "usr" / "bin"
        bin_dir.mkdir(parents=True)
        for program in ("gambiarra-desktop", "gambiarra"):
            (bin_dir / program).symlink_to(Path("/") / INSTALL_DIR / program)
        share = root / "usr" / "share"
        (share / "applications").mkdir(parents=True)
        (share / "applications" / f"{APP_ID}.desktop").write_text(
            desktop_entry("gambiarra-desktop", APP_ID), encoding="utf-8")
        install_icons(icons, share)
        doc = share / "doc" / APP_ID
        doc.mkdir(parents=True)
        shutil.copyfile(LINUX / "copyright", doc / "copyright")
        control_dir = root / "DEBIAN"
        control_dir.mkdir()
        control = (LINUX / "control").read_text(encoding="utf-8")
        control = (control.replace("@VERSION@", version).replace("@ARCH@", arch)
                   .replace("@DEPENDS@", ", ".join(depends))
                   .replace("@INSTALLED_SIZE@", str(installed_size_kib(root))))
        (control_dir / "control").write_text(control, encoding="utf-8")
        for path in [root, *root.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
        out.mkdir(parents=True, exist_ok=True)
        deb = out / f"{APP_ID}_{version}_{arch}.deb"
        # gzip: every dpkg reads it, and it packs the 170 MB bundle in seconds, not minutes.
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z6", "--build",
                        str(root), str(deb)], check=True, stdout=subprocess.DEVNULL,
                       timeout=600)
    return deb


def build_tarball(bundle: Path, icons: Path, out: Path, version: str, machine: str) -> Path:
    top = f"{APP_ID}-{version}"
    tarball = out / f"{APP_ID}-{version}-linux-{machine}.tar.gz"
    with tempfile.TemporaryDirectory(prefix="gambiarra-tar-") as tmp:
        staging = Path(tmp) / top
        shutil.copytree(bundle, staging, symlinks=True)
        shutil.copyfile(icons / "png" / "256.png", staging / f"{APP_ID}.png")
        (staging / f"{APP_ID}.desktop").write_text(
            desktop_entry(APP_ID, APP_ID), encoding="utf-8")  # The script fills in Exec.
        installer = staging / "install-desktop-entry.sh"
        shutil.copyfile(LINUX / "install-desktop-entry.sh", installer)
        installer.chmod(0o755)
        out.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball, "w:gz", compresslevel=6) as archive:
            archive.add(staging, arcname=top, filter=_normalise_owner)
    return tarball


def _normalise_owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True, help="PyInstaller one-dir output")
    parser.add_argument("--icons", type=Path, required=True, help="output of tools/icons.py")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--version", required=True)
    args = parser.parse_args()
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    deb = build_deb(args.bundle, args.icons, args.out, args.version, arch)
    tarball = build_tarball(args.bundle, args.icons, args.out, args.version, os.uname().machine)
    for artifact in (deb, tarball):
        print(f"linux_packages: {artifact} ({artifact.stat().st_size / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
