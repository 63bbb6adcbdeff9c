"""Unified diffs (``git diff`` / ``diff -u``) parsed and applied as pure text, for the agent's
``patch`` tool.

A model edits files by sending a diff, so everything here is written for a sender that makes
mistakes: prose around the diff is skipped, every refusal is a :class:`PatchError` whose message
names the file and the hunk and says what to fix, and nothing is applied by guesswork (context
must match exactly; only the *position* is searched, as GNU patch does). There is no file I/O:
the tool wrapper jails paths, checks freshness and writes the results.

Every input is bounded (security rule 5): the patch's size, its files and hunks, the result's
size, and the work spent searching for a hunk that moved.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass

MAX_PATCH_BYTES = 512 * 1024
MAX_FILES = 100
MAX_HUNKS = 2000
MAX_RESULT_BYTES = 8 * 1024 * 1024
SEARCH_BUDGET = 4_000_000
"""Work allowed per file to place its hunks: each try costs its lines plus
:data:`_TRY_COST`. A real file places a hunk in a few tries; this stops a file of look-alike
lines and a patch of many misplaced hunks from making the search quadratic (it is used up in
well under a second)."""
_TRY_COST = 16

NO_NEWLINE = "\\ No newline at end of file"
_HUNK_HEADER = re.compile(r"@@ -(\d{1,9})(?:,(\d{1,9}))? \+(\d{1,9})(?:,(\d{1,9}))? @@")
_QUOTED_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


class PatchError(Exception):
    """A patch that cannot be parsed or applied; ``message`` is shown to the model verbatim, so
    it says which file and hunk, and what to do about it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Hunk:
    """One ``@@`` block. ``lines`` start with ``' '``, ``'-'`` or ``'+'`` and carry no line
    ending; the two flags are the ``\\ No newline at end of file`` markers of each side."""

    old_start: int
    old_count: int
    new_start: int
    new_count: int
    lines: tuple[str, ...]
    old_no_newline: bool = False
    new_no_newline: bool = False

    @property
    def old_lines(self) -> list[str]:
        """What the file must hold where the hunk applies (context and removed lines)."""
        return [line[1:] for line in self.lines if line[0] != "+"]


@dataclass(frozen=True, slots=True)
class FilePatch:
    """The hunks of one file. ``old_path`` is None for a creation, ``new_path`` for a deletion."""

    old_path: str | None
    new_path: str | None
    hunks: tuple[Hunk, ...]

    @property
    def path(self) -> str:
        """The file it applies to: the new name, or the old one for a deletion."""
        path = self.new_path if self.new_path is not None else self.old_path
        if path is None:  # parse_patch never builds this; a hand-made patch might.
            raise PatchError("a file patch needs a path on its '---' or '+++' line")
        return path


# --------------------------------------------------------------------------- parsing


def parse_patch(text: str) -> list[FilePatch]:
    """Every file of a unified diff. Lines outside file sections (``diff --git``, ``index``, a
    model's prose or code fences) are skipped; a hunk's body is read by its header's counts, so
    a removed line that reads ``--- x`` is still a removed line."""
    if len(text) > MAX_PATCH_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_PATCH_BYTES:
        raise PatchError(f"the patch is larger than {MAX_PATCH_BYTES // 1024} KiB; split it into"
                         " several smaller patches")
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    files: list[FilePatch] = []
    old_path: str | None = None
    new_path: str | None = None
    hunks: list[Hunk] = []
    in_file = False
    total_hunks = 0
    index = 0
    while index < len(lines):
        line = lines[index]
        if _is_file_header(lines, index):
            if in_file:
                files.append(_finish_file(old_path, new_path, hunks))
            if len(files) >= MAX_FILES:
                raise PatchError(f"the patch changes more than {MAX_FILES} files; split it")
            old_path, new_path = _header_paths(lines[index][4:], lines[index + 1][4:])
            hunks, in_file = [], True
            index += 2
        elif line.startswith("@@"):
            if not in_file:
                raise PatchError(f"the hunk at line {index + 1} of the patch has no file: put"
                                 " '--- a/PATH' and '+++ b/PATH' lines before its '@@' line")
            total_hunks += 1
            if total_hunks > MAX_HUNKS:
                raise PatchError(f"the patch has more than {MAX_HUNKS} hunks; split it")
            name = _name(old_path, new_path)
            hunk, index = _parse_hunk(lines, index, name, len(hunks) + 1)
            hunks.append(hunk)
        else:
            if line.startswith("diff ") and in_file:
                files.append(_finish_file(old_path, new_path, hunks))
                in_file = False
            index += 1
    if in_file:
        files.append(_finish_file(old_path, new_path, hunks))
    if not files:
        raise PatchError("no file changes found in the patch")
    return files


def _is_file_header(lines: list[str], index: int) -> bool:
    return (lines[index].startswith("--- ") and index + 1 < len(lines)
            and lines[index + 1].startswith("+++ "))


def _header_paths(old_raw: str, new_raw: str) -> tuple[str | None, str | None]:
    """Both names of a file section. Git's ``a/`` and ``b/`` are dropped when every name given
    carries its own side's prefix (a creation's lone ``b/new`` too); other names stay as
    written, since a real folder may be called ``a``."""
    old, new = _header_path(old_raw), _header_path(new_raw)
    if old is None and new is None:
        raise PatchError("a file section has /dev/null on both its '---' and '+++' lines")
    if (old is None or old.startswith("a/")) and (new is None or new.startswith("b/")):
        old = None if old is None else old[2:]
        new = None if new is None else new[2:]
    for path in (old, new):
        if path == "":
            raise PatchError("a '---' or '+++' line names no file")
    return old, new


def _header_path(raw: str) -> str | None:
    """The name on a ``---``/``+++`` line: ``diff -u`` puts a tab and a timestamp after it, and
    git C-quotes a name with unusual characters."""
    path = raw.split("\t", 1)[0].rstrip(" ")
    if len(path) >= 2 and path.startswith('"') and path.endswith('"'):
        path = _unquote(path[1:-1])
    if path == "":
        raise PatchError("a '---' or '+++' line names no file")
    return None if path == "/dev/null" else path


def _unquote(body: str) -> str:
    out = bytearray()
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out += char.encode("utf-8", "surrogatepass")
            index += 1
        elif body[index + 1:index + 2] in _QUOTED_ESCAPES:
            out.append(_QUOTED_ESCAPES[body[index + 1]])
            index += 2
        elif re.fullmatch(r"[0-3][0-7]{2}", body[index + 1:index + 4]):
            out.append(int(body[index + 1:index + 4], 8))
            index += 4
        else:
            raise PatchError(f"the quoted file name \"{body}\" has a bad escape")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PatchError(f"the quoted file name \"{body}\" is not UTF-8") from exc


def _name(old_path: str | None, new_path: str | None) -> str:
    return new_path if new_path is not None else old_path or "?"


def _parse_hunk(lines: list[str], index: int, name: str, number: int) -> tuple[Hunk, int]:
    """One hunk from its ``@@`` line; returns it and the index of the line after it."""
    where = f"hunk {number} of {name}"
    match = _HUNK_HEADER.match(lines[index])
    if match is None:
        raise PatchError(f"{where}: bad hunk header {_show(lines[index])}; it must read"
                         " '@@ -OLD_START,OLD_COUNT +NEW_START,NEW_COUNT @@'")
    old_start, new_start = int(match[1]), int(match[3])
    old_count = 1 if match[2] is None else int(match[2])
    new_count = 1 if match[4] is None else int(match[4])
    body_start = index = index + 1
    body: list[str] = []
    marks: list[int] = []  # indexes in body of the lines a "\ No newline" marker follows
    old_seen = new_seen = 0
    while index < len(lines) and (old_seen < old_count or new_seen < new_count):
        line = lines[index]
        if line.startswith("\\"):
            marks.append(len(body) - 1)
            index += 1
            continue
        if line == "":  # a model's empty context line, its leading space lost
            line = " "
        if line[0] not in " -+" or _is_next_file(lines, index):
            break
        old_seen += line[0] != "+"
        new_seen += line[0] != "-"
        if old_seen > old_count or new_seen > new_count:
            break
        body.append(line)
        index += 1
    if index < len(lines) and lines[index].startswith("\\"):
        marks.append(len(body) - 1)
        index += 1
    if old_seen != old_count or new_seen != new_count or _extra_body_line(lines, index):
        old_real, new_real = _count_body(lines, body_start)
        raise PatchError(f"{where}: its header says {old_count} old and {new_count} new lines,"
                         f" but its body has {old_real} old and {new_real} new lines; fix the"
                         " '@@' line's counts (old = ' ' and '-' lines, new = ' ' and '+' lines)")
    old_mark, new_mark = _markers(body, marks, where)
    hunk = Hunk(old_start, old_count, new_start, new_count, tuple(body), old_mark, new_mark)
    return hunk, index


def _is_next_file(lines: list[str], index: int) -> bool:
    """Whether a hunk body that is still short of its counts has run into the next file: a
    ``---``/``+++`` pair and an ``@@`` line. Without the ``@@`` they are removed and added
    lines that happen to start with ``--``/``++``."""
    return (_is_file_header(lines, index) and index + 2 < len(lines)
            and lines[index + 2].startswith("@@"))


def _extra_body_line(lines: list[str], index: int) -> bool:
    """Whether a body line follows a hunk whose counts are used up (blank lines between): it
    would otherwise be dropped without a word."""
    while index < len(lines) and lines[index] == "":
        index += 1
    return (index < len(lines) and lines[index][:1] in (" ", "-", "+")
            and not _is_file_header(lines, index))


def _count_body(lines: list[str], index: int) -> tuple[int, int]:
    """The old and new lines a hunk body really holds, for an error message."""
    old = new = blank = 0
    while index < len(lines) and not _is_next_file(lines, index):
        line = lines[index]
        if line == "":
            blank += 1
        elif line[0] in " -+":
            old += blank + (line[0] != "+")
            new += blank + (line[0] != "-")
            blank = 0
        elif not line.startswith("\\"):
            break
        index += 1
    return old, new


def _markers(body: list[str], marks: list[int], where: str) -> tuple[bool, bool]:
    """Which sides end without a newline. A marker must follow its side's last line, or the
    hunk describes an impossible file."""
    old_mark = new_mark = False
    for mark in marks:
        if mark < 0:
            raise PatchError(f"{where}: '{NO_NEWLINE}' must follow a line of the hunk")
        tag = body[mark][0]
        later = {line[0] for line in body[mark + 1:]}
        if tag in " -":
            if later & {" ", "-"}:
                raise PatchError(f"{where}: '{NO_NEWLINE}' follows an old line that is not"
                                 " the last one of the hunk")
            old_mark = True
        if tag in " +":
            if later & {" ", "+"}:
                raise PatchError(f"{where}: '{NO_NEWLINE}' follows a new line that is not"
                                 " the last one of the hunk")
            new_mark = True
    return old_mark, new_mark


def _finish_file(old_path: str | None, new_path: str | None, hunks: list[Hunk]) -> FilePatch:
    name = _name(old_path, new_path)
    if not hunks and old_path is not None and new_path is not None:
        raise PatchError(f"{name} has '---' and '+++' lines but no '@@' hunk")
    for number, hunk in enumerate(hunks, 1):
        if old_path is None and hunk.old_count:
            raise PatchError(f"hunk {number} of {name}: the patch creates the file (---"
                             " /dev/null), so every line must be a '+' line")
        if new_path is None and hunk.new_count:
            raise PatchError(f"hunk {number} of {name}: the patch deletes the file (+++"
                             " /dev/null), so every line must be a '-' line")
        if number < len(hunks) and (hunk.old_no_newline or hunk.new_no_newline):
            raise PatchError(f"hunk {number} of {name}: '{NO_NEWLINE}' may only be in the"
                             " last hunk, at the end of the file")
    return FilePatch(old_path, new_path, tuple(hunks))


# --------------------------------------------------------------------------- applying


def apply_file_patch(original: str | None, patch: FilePatch) -> str | None:
    """The file's new text (None: the file is deleted). ``original`` None means the file does
    not exist. Each line keeps its own ending; added lines take the file's dominant one."""
    name = patch.path
    if original is None and patch.old_path is not None:
        raise PatchError(f"{name} does not exist; to create it, use '--- /dev/null' and"
                         f" '+++ b/{name}'")
    if original is not None and patch.old_path is None:
        raise PatchError(f"{name} already exists; read it and patch it instead of creating it")
    contents, endings = _split(original or "")
    eol = "\r\n" if endings.count("\r\n") > endings.count("\n") else "\n"
    search = _Search(contents, name)
    out: list[tuple[str, str]] = []
    cursor = drift = 0
    for number, hunk in enumerate(patch.hunks, 1):
        if number < len(patch.hunks) and (hunk.old_no_newline or hunk.new_no_newline):
            raise PatchError(f"hunk {number} of {name}: '{NO_NEWLINE}' may only be in the"
                             " last hunk, at the end of the file")
        old = hunk.old_lines
        stated = hunk.old_start - 1 if hunk.old_count else hunk.old_start
        at_end = hunk.old_no_newline or hunk.new_no_newline
        start = search.locate(old, max(stated, 0) + drift, cursor, at_end, number, stated)
        out.extend(zip(contents[cursor:start], endings[cursor:start], strict=True))
        line_index = start
        for line in hunk.lines:
            if line[:1] == "+":
                out.append((line[1:], eol))
            elif line[:1] in (" ", "-"):
                if line[0] == " ":
                    out.append((contents[line_index], endings[line_index]))
                line_index += 1
            else:
                raise PatchError(f"hunk {number} of {name}: a line starts with neither ' ',"
                                 " '-' nor '+'")
        drift = start - max(stated, 0)
        cursor = start + len(old)
    out.extend(zip(contents[cursor:], endings[cursor:], strict=True))
    if patch.new_path is None:
        if out:
            raise PatchError(f"the patch deletes {name}, but its hunks leave {len(out)} of its"
                             " lines; a deletion must remove every line of the file")
        return None
    last = patch.hunks[-1] if patch.hunks else None
    if last is not None and last.new_no_newline:
        open_end = True
    elif last is not None and last.old_no_newline:
        open_end = False
    else:  # the diff says nothing about the end: keep what the file had
        open_end = bool(endings) and endings[-1] == ""
    return _join(out, eol, open_end, name)


def _split(text: str) -> tuple[list[str], list[str]]:
    """Lines and their endings (``\\r\\n``, ``\\n``, or ``''`` for an unterminated last line).
    Only ``\\n`` ends a line: a form feed or a lone ``\\r`` is content, as diff sees it."""
    contents: list[str] = []
    endings: list[str] = []
    pieces = text.split("\n")
    for piece in pieces[:-1]:
        if piece.endswith("\r"):
            contents.append(piece[:-1])
            endings.append("\r\n")
        else:
            contents.append(piece)
            endings.append("\n")
    if pieces[-1]:
        contents.append(pieces[-1])
        endings.append("")
    return contents, endings


def _join(lines: list[tuple[str, str]], eol: str, open_end: bool, name: str) -> str:
    """The result's text: a line with no ending gets one unless it is last and the file
    ends open, checked against the result limit before it is built."""
    size = 0
    parts: list[str] = []
    for position, (content, ending) in enumerate(lines):
        if position == len(lines) - 1:
            ending = "" if open_end else ending or eol
        elif not ending:
            ending = eol
        parts.append(content)
        parts.append(ending)
        size += len(content) + len(ending)
        if size > MAX_RESULT_BYTES:
            break
    result = "".join(parts)
    if size > MAX_RESULT_BYTES or len(result.encode("utf-8", "surrogatepass")) > MAX_RESULT_BYTES:
        raise PatchError(f"the patched {name} would be larger than"
                         f" {MAX_RESULT_BYTES // 1024 // 1024} MiB")
    return result


class _Search:
    """Finds where a hunk's old lines are, nearest its stated line first (forward before
    backward on a tie, as GNU patch). Off its stated line, only the positions of the hunk's
    rarest line are tried, from an index built once per file, within :data:`SEARCH_BUDGET`."""

    def __init__(self, contents: list[str], name: str) -> None:
        self.contents = contents
        self.name = name
        self.budget = SEARCH_BUDGET
        self._index: dict[str, list[int]] | None = None

    def locate(self, old: list[str], expected: int, lowest: int, at_end: bool,
               number: int, stated: int) -> int:
        """The start of the hunk's match at or after ``lowest`` (hunks go forward and never
        overlap), or a :class:`PatchError` the model can act on."""
        size, width = len(self.contents), len(old)
        if not old:  # pure insertion: nothing to match, so its stated place is its place
            return size if at_end else min(max(expected, lowest), size)
        if at_end:
            start = size - width
            if start >= lowest and self._matches(old, start):
                return start
            raise self._mismatch(old, number, stated, " at the end of the file, where its"
                                 f" '{NO_NEWLINE}' puts it")
        if lowest <= expected <= size - width and self._matches(old, expected):
            return expected
        found = self._nearest(old, expected, lowest)
        if found is not None:
            return found
        if lowest > 0 and self._nearest(old, expected, 0) is not None:
            raise PatchError(f"hunk {number} of {self.name} only matches before the end of"
                             f" hunk {number - 1} (line {lowest}); hunks must be in file order"
                             " and must not overlap")
        raise self._mismatch(old, number, stated, "")

    def _matches(self, old: list[str], start: int) -> bool:
        self.budget -= len(old) + _TRY_COST
        if self.budget < 0:
            raise PatchError(f"{self.name} has too many places that look alike to place its"
                             " hunks; give each hunk more distinctive context lines")
        return self.contents[start:start + len(old)] == old

    def _nearest(self, old: list[str], expected: int, lowest: int) -> int | None:
        """The start nearest ``expected`` in ``[lowest, last start that fits]``. The walk
        begins inside that range, so every step it takes is a try that the budget counts."""
        if self._index is None:
            self._index = {}
            for position, line in enumerate(self.contents):
                self._index.setdefault(line, []).append(position)
        index = self._index
        counts = [len(index.get(line, ())) for line in old]
        rarest = min(range(len(old)), key=counts.__getitem__)
        highest = len(self.contents) - len(old)
        if counts[rarest] == 0 or lowest > highest:
            return None
        expected = min(max(expected, lowest), highest)
        positions = index[old[rarest]]  # ascending; a start is a position minus ``rarest``
        after = bisect_left(positions, expected + rarest)
        before = after - 1
        while True:
            forward = positions[after] - rarest if after < len(positions) else highest + 1
            backward = positions[before] - rarest if before >= 0 else lowest - 1
            forward_ok, backward_ok = forward <= highest, backward >= lowest
            if forward_ok and (not backward_ok or forward - expected <= expected - backward):
                after += 1
                if self._matches(old, forward):
                    return forward
            elif backward_ok:
                before -= 1
                if self._matches(old, backward):
                    return backward
            else:
                return None

    def _mismatch(self, old: list[str], number: int, stated: int, where: str) -> PatchError:
        line = max(stated, 0)
        there = (f"; the file has there: {_show(self.contents[line])}"
                 if line < len(self.contents) else
                 f"; the file has only {len(self.contents)} lines")
        return PatchError(f"hunk {number} of {self.name} does not match the file{where}"
                          f" (expected at line {line + 1}: {_show(old[0])}{there}); read the"
                          " file again and resend the hunk with its exact current lines")


def _show(line: str) -> str:
    """A line quoted for an error message, cut short so one long line cannot flood it."""
    return repr(line if len(line) <= 80 else line[:77] + "...")
