"""`gambiarra serve` says what stops it, each cause with its own message and exit code,
never a traceback and never "try another port" unless the port is the problem; a bad
stored row is skipped and reported, and the hub starts with everything else.

The tests run as root here, where ``chmod`` stops nothing; a data dir is made unwritable
for real by putting it under a regular file (ENOTDIR, for anyone) and by a read-only
tmpfs mount (EROFS, root only); the full disk is a 64 KiB tmpfs filled up.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from gambiarra_desktop.commands import exit_codes
from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.hub.config import DATABASE_FILE_NAME
from gambiarra_desktop.hub.rooms.store import SqliteStore
from gambiarra_desktop.hub.rooms.store_errors import DatabaseCorruptError, ForeignDatabaseError
from gambiarra_desktop.hub.rooms.store_identity import APPLICATION_ID
from tests.conftest import Api

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file systems")


def serve(data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run the real command; a hub that did start would be killed by the timeout (and fail)."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; from gambiarra_desktop.cli import main;"
         " sys.exit(main())", "serve", "--data-dir", str(data_dir), "--port", "0", *extra],
        capture_output=True, text=True, timeout=30,
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int, *says: str) -> None:
    assert result.returncode == code, result.stderr
    for text in says:
        assert text in result.stderr
    assert "Traceback" not in result.stderr
    assert "another port" not in result.stderr
    assert "listening" not in result.stdout


def test_data_dir_under_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a dir")
    result = serve(tmp_path / "file" / "data")
    assert_clean_failure(result, exit_codes.DATA_DIR_NOT_WRITABLE,
                         "Cannot write the hub's data dir", "--data-dir")


def mount_tmpfs(target: Path, options: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    target.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                             capture_output=True, text=True, timeout=30)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[list[Path]]:
    made: list[Path] = []
    yield made
    for target in reversed(made):
        subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)


def test_read_only_data_dir(tmp_path: Path, mounts: list[Path]) -> None:
    target = tmp_path / "ro"
    mount_tmpfs(target, "ro,size=64k")
    mounts.append(target)
    result = serve(target / "data")
    assert_clean_failure(result, exit_codes.DATA_DIR_NOT_WRITABLE,
                         "Cannot write the hub's data dir", "Read-only file system")


def test_disk_full(tmp_path: Path, mounts: list[Path]) -> None:
    target = tmp_path / "full"
    mount_tmpfs(target, "size=64k")
    mounts.append(target)
    data_dir = target / "data"
    data_dir.mkdir()
    with (target / "filler").open("wb", buffering=0) as filler:  # Until ENOSPC.
        for _ in range(64):
            try:
                filler.write(b"\0" * 4096)
            except OSError:
                break
    result = serve(data_dir)
    assert_clean_failure(result, exit_codes.DISK_FULL, "is full", "Free some space")


def test_corrupt_database_is_kept_and_explained(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database = data_dir / DATABASE_FILE_NAME
    garbage = os.urandom(16384)
    database.write_bytes(garbage)
    result = serve(data_dir)
    assert_clean_failure(result, exit_codes.DATABASE_UNUSABLE,
                         "is damaged or is not a SQLite database", f"mv {database} {database}.bad")
    assert database.read_bytes() == garbage  # Kept as it was.


def foreign_database(path: Path, application_id: int = 0) -> bytes:
    """Another program's SQLite file, with a ``rooms`` table of its own shape."""
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE rooms (id INTEGER PRIMARY KEY, title TEXT, floor INTEGER)")
    connection.execute("CREATE TABLE bookings (room INTEGER, who TEXT)")
    connection.execute("INSERT INTO rooms (title, floor) VALUES ('Kitchen', 1)")
    connection.execute(f"PRAGMA application_id = {application_id}")
    connection.commit()
    connection.close()
    return path.read_bytes()


@pytest.mark.parametrize("application_id", [0, 0x12345678])
def test_foreign_database_is_kept_and_explained(tmp_path: Path, application_id: int) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database = data_dir / DATABASE_FILE_NAME
    before = foreign_database(database, application_id)
    result = serve(data_dir)
    assert_clean_failure(result, exit_codes.DATABASE_UNUSABLE,
                         "not one of Gambiarra's", f"mv {database} {database}.bad")
    assert database.read_bytes() == before  # No tables added, journal mode unchanged.
    assert not (data_dir / f"{DATABASE_FILE_NAME}-wal").exists()


async def test_store_open_raises_domain_errors(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.sqlite3"
    foreign_database(foreign)
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(b"SQLite format 3\0" + os.urandom(4096))
    for path, error in ((foreign, ForeignDatabaseError), (corrupt, DatabaseCorruptError)):
        store = SqliteStore(path)
        with pytest.raises(error):
            await store.open()
        await store.close()


async def test_new_and_older_databases_are_ours(tmp_path: Path) -> None:
    """A database from before the application id (same tables) opens and gets the id."""
    path = tmp_path / "old.sqlite3"
    connection = sqlite3.connect(path)
    connection.executescript(
        "CREATE TABLE rooms (id TEXT PRIMARY KEY, code TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
        " host_id TEXT NOT NULL, created_at INTEGER NOT NULL, password_hash TEXT);"
        "CREATE TABLE participants (room_id TEXT NOT NULL, id TEXT NOT NULL,"
        " nickname TEXT NOT NULL, model TEXT NOT NULL, endpoint TEXT NOT NULL,"
        " specs TEXT NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL,"
        " joined_at INTEGER NOT NULL, last_seen INTEGER NOT NULL, PRIMARY KEY (room_id, id));"
        "INSERT INTO rooms VALUES ('r1', 'ABC123', 'Old', 'h1', 1, NULL);")
    connection.close()
    for candidate in (path, tmp_path / "new.sqlite3"):
        store = SqliteStore(candidate)
        await store.open()
        loaded = await store.load()
        await store.close()
        assert [room.room.code for room in loaded] == (["ABC123"] if candidate == path else [])
        check = sqlite3.connect(candidate)
        assert check.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        check.close()


async def test_bad_rows_are_skipped_and_the_rest_loads(
    tmp_path: Path, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    async with HubServer(data_dir) as first:
        api = Api(http, first)
        rooms = [await api.create_room(name) for name in ("One", "Two", "Three")]
        for room in rooms:
            for pid in ("alice", "bob"):
                assert (await api.join(room["code"], id=pid, nickname=pid))[0] == 201
    database = sqlite3.connect(data_dir / DATABASE_FILE_NAME)
    one, two, three = (room["code"] for room in rooms)
    bad_specs = "{" * 300 + "}" * 300  # Valid JSON once, but deeper than any response.
    with database:
        database.execute("UPDATE participants SET specs = '{not json' WHERE id = 'alice' AND"
                         " room_id = (SELECT id FROM rooms WHERE code = ?)", (one,))
        database.execute("UPDATE participants SET config = ? WHERE id = 'bob' AND"
                         " room_id = (SELECT id FROM rooms WHERE code = ?)", (bad_specs, two))
        database.execute("UPDATE rooms SET created_at = 'yesterday' WHERE code = ?", (three,))
    database.close()

    caplog.set_level(logging.WARNING, logger="gambiarra_desktop.hub.rooms.store")
    async with HubServer(data_dir) as second:
        api = Api(http, second)
        _, listing = await api.call("GET", "/rooms")
        assert sorted(room["code"] for room in listing["rooms"]) == sorted([one, two])
        for code, kept in ((one, ["bob"]), (two, ["alice"])):
            status, body = await api.call("GET", f"/rooms/{code}/participants")
            assert status == 200
            assert [p["id"] for p in body["participants"]] == kept
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3, warnings  # Once each.
    assert any("'alice'" in w and one in w and "specs is not valid JSON" in w for w in warnings)
    assert any("'bob'" in w and two in w and "config is not valid JSON" in w for w in warnings)
    assert any(f"room '{three}'" in w for w in warnings)


def test_a_busy_port_still_says_try_another_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-c", "import sys; from gambiarra_desktop.cli import main;"
             " sys.exit(main())", "serve", "--data-dir", str(tmp_path / "data"),
             "--host", "127.0.0.1", "--port", str(port)],
            capture_output=True, text=True, timeout=30,
        )
    assert result.returncode == exit_codes.PORT_IN_USE
    assert "Try another port with --port" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_help_lists_the_exit_codes() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from gambiarra_desktop.cli import main;"
         " sys.exit(main())", "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert "exit codes:" in result.stdout and "mv FILE FILE.bad" in result.stdout
