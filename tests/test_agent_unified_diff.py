"""The agent's unified-diff applier: real diffs (difflib, GNU ``diff -u``, ``git diff``) must
turn each original into its modified text, and every diff a model gets wrong must be refused
with a message that names the file and hunk. Pure and fast: no server, no workspace."""

from __future__ import annotations

import difflib
import random
import subprocess
import time
from pathlib import Path

import pytest

from gambiarra_desktop.agent.unified_diff import (
    MAX_FILES,
    MAX_HUNKS,
    MAX_PATCH_BYTES,
    MAX_RESULT_BYTES,
    FilePatch,
    PatchError,
    apply_file_patch,
    parse_patch,
)

WORDS = ["alpha", "beta", "gamma", "", "    return x", "}", "delta epsilon", "\tindented",
         "# comment", "x = 1", "-- dashes", "++ pluses", "@@ not a hunk"]


def _random_text(rng: random.Random, crlf: bool = False, open_end: bool = False) -> str:
    lines = [rng.choice(WORDS) + (str(rng.randrange(5)) if rng.random() < 0.5 else "")
             for _ in range(rng.randrange(0, 40))]
    eol = "\r\n" if crlf else "\n"
    text = "".join(line + eol for line in lines)
    if open_end and text:
        text = text[: -len(eol)]
    return text


def _edit(rng: random.Random, text: str) -> str:
    """A few random insertions, deletions and replacements, keeping the text's endings."""
    eol = "\r\n" if "\r\n" in text else "\n"
    lines = text.split(eol)
    for _ in range(rng.randrange(1, 6)):
        position = rng.randrange(len(lines) + 1)
        kind = rng.randrange(3)
        if kind == 0 or not lines:
            lines.insert(position, rng.choice(WORDS) + "new")
        elif kind == 1 and position < len(lines):
            del lines[position]
        elif position < len(lines):
            lines[position] = rng.choice(WORDS) + "changed"
    result = eol.join(lines)
    if rng.random() < 0.2:  # sometimes flip whether the file ends with a newline
        result = result[: -len(eol)] if result.endswith(eol) else result + eol
    return result


def _apply_all(patch: str, originals: dict[str, str | None]) -> dict[str, str | None]:
    return {file.path: apply_file_patch(originals[file.path], file)
            for file in parse_patch(patch)}


def _run_diff(arguments: list[str], cwd: Path) -> str:
    done = subprocess.run(arguments, cwd=cwd, capture_output=True, timeout=20, check=False)
    assert done.returncode in (0, 1), done.stderr
    return done.stdout.decode("utf-8")


GIT = ["git", "-c", "core.quotePath=true", "diff", "--no-index", "--no-color", "--no-ext-diff",
       "--src-prefix=a/", "--dst-prefix=b/"]


# --------------------------------------------------------------------------- real diffs


def test_difflib_diffs_of_random_edits_apply_exactly() -> None:
    rng = random.Random(1304)
    for _ in range(300):
        original = _random_text(rng)
        modified = _edit(rng, original)
        if not modified.endswith("\n") and modified:
            modified += "\n"  # difflib writes no "No newline" marker: keep it well formed
        if original == modified:
            continue
        context = rng.randrange(4)
        patch = "".join(difflib.unified_diff(
            original.splitlines(keepends=True), modified.splitlines(keepends=True),
            "a/f.txt", "b/f.txt", n=context))
        [file] = parse_patch(patch)
        assert file.path == "f.txt"
        assert apply_file_patch(original, file) == modified, patch


@pytest.mark.parametrize("crlf", [False, True])
def test_gnu_diff_u_of_random_edits_applies_exactly(tmp_path: Path, crlf: bool) -> None:
    rng = random.Random(4000 + crlf)
    for _ in range(40):
        original = _random_text(rng, crlf=crlf, open_end=rng.random() < 0.3)
        modified = _edit(rng, original)
        (tmp_path / "old.txt").write_bytes(original.encode())
        (tmp_path / "new.txt").write_bytes(modified.encode())
        context = rng.choice(["-u", "-U0", "-U1", "-U5"])
        patch = _run_diff(["diff", context, "old.txt", "new.txt"], tmp_path)
        if not patch:
            continue
        [file] = parse_patch(patch)
        assert (file.old_path, file.new_path) == ("old.txt", "new.txt")  # timestamps gone
        assert apply_file_patch(original, file) == modified, patch


def test_git_diff_of_random_edits_applies_exactly(tmp_path: Path) -> None:
    rng = random.Random(13)
    for _ in range(25):
        original = _random_text(rng, open_end=rng.random() < 0.3)
        modified = _edit(rng, original)
        (tmp_path / "old.txt").write_bytes(original.encode())
        (tmp_path / "new.txt").write_bytes(modified.encode())
        patch = _run_diff([*GIT, "old.txt", "new.txt"], tmp_path)
        if not patch:
            continue
        [file] = parse_patch(patch)
        assert (file.old_path, file.new_path) == ("old.txt", "new.txt")
        assert apply_file_patch(original, file) == modified, patch


def test_git_creation_and_deletion(tmp_path: Path) -> None:
    (tmp_path / "made.py").write_text("print('hi')\nx = 2\n")
    created = _run_diff([*GIT, "/dev/null", "made.py"], tmp_path)
    [file] = parse_patch(created)
    assert (file.old_path, file.new_path, file.path) == (None, "made.py", "made.py")
    assert apply_file_patch(None, file) == "print('hi')\nx = 2\n"
    with pytest.raises(PatchError, match="made.py already exists"):
        apply_file_patch("something\n", file)

    deleted = _run_diff([*GIT, "made.py", "/dev/null"], tmp_path)
    [file] = parse_patch(deleted)
    assert (file.old_path, file.new_path, file.path) == ("made.py", None, "made.py")
    assert apply_file_patch("print('hi')\nx = 2\n", file) is None
    with pytest.raises(PatchError, match="deletes made.py, but its hunks leave 1 of its lines"):
        apply_file_patch("print('hi')\nx = 2\nextra\n", file)


def test_git_quoted_names_are_unquoted(tmp_path: Path) -> None:
    (tmp_path / "olá wörld.txt").write_text("one\n")
    (tmp_path / "new.txt").write_text("two\n")
    patch = _run_diff([*GIT, "olá wörld.txt", "new.txt"], tmp_path)
    assert '"a/ol\\303\\241' in patch  # git really quoted it
    [file] = parse_patch(patch)
    assert file.old_path == "olá wörld.txt"


# --------------------------------------------------------------------------- shapes


def test_multi_file_multi_hunk_git_patch_with_prose_around_it() -> None:
    patch = """Sure! Here is the change you asked for:

```diff
diff --git a/src/app.py b/src/app.py
index 83db48f..bf269f4 100644
--- a/src/app.py
+++ b/src/app.py
@@ -1,3 +1,3 @@
 import os
-import sys
+import json
\x20
@@ -8,2 +8,3 @@ def main():
     run()
+    stop()
     return 0
diff --git a/README.md b/README.md
--- a/README.md
+++ b/README.md
@@ -1 +1,2 @@
 # Title
+More words.
```

Let me know if you want anything else.
"""
    files = parse_patch(patch)
    assert [file.path for file in files] == ["src/app.py", "README.md"]
    assert [len(file.hunks) for file in files] == [2, 1]
    assert files[0].hunks[1].lines == ("     run()", "+    stop()", "     return 0")
    app = "import os\nimport sys\n\nA\nB\nC\ndef main():\n    run()\n    return 0\n"
    assert apply_file_patch(app, files[0]) == app.replace("sys", "json").replace(
        "run()\n", "run()\n    stop()\n")
    assert apply_file_patch("# Title\n", files[1]) == "# Title\nMore words.\n"


def test_a_b_prefixes_are_stripped_only_when_both_sides_use_them() -> None:
    def paths(old: str, new: str) -> tuple[str | None, str | None]:
        [file] = parse_patch(f"--- {old}\n+++ {new}\n@@ -1 +1 @@\n-x\n+y\n")
        return file.old_path, file.new_path

    assert paths("a/src/x.py", "b/src/x.py") == ("src/x.py", "src/x.py")
    assert paths("src/x.py", "src/x.py") == ("src/x.py", "src/x.py")
    assert paths("a/x.py", "a/x.py") == ("a/x.py", "a/x.py")  # a folder called "a"
    assert paths("b/x.py", "b/x.py") == ("b/x.py", "b/x.py")
    assert paths("x.py\t2024-01-01 10:00:00.000000000 +0000",
                 "x.py\t2024-01-02 10:00:00.000000000 +0000") == ("x.py", "x.py")


def test_no_file_in_the_patch_is_refused() -> None:
    for text in ["", "\n\n", "I could not find anything to change.",
                 "diff --git a/x b/x\nold mode 100644\nnew mode 100755\n"]:
        with pytest.raises(PatchError, match="^no file changes found in the patch$"):
            parse_patch(text)
    with pytest.raises(PatchError, match="has no file"):
        parse_patch("@@ -1 +1 @@\n-a\n+b\n")


def test_an_empty_body_line_counts_as_empty_context() -> None:
    patch = "--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n first\n\n-third\n+THIRD\n"
    [file] = parse_patch(patch)
    assert file.hunks[0].lines == (" first", " ", "-third", "+THIRD")
    assert apply_file_patch("first\n\nthird\n", file) == "first\n\nTHIRD\n"


def test_a_removed_line_that_looks_like_a_header_is_read_by_the_counts() -> None:
    patch = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n--- x\n+++ y\n"
    [file] = parse_patch(patch)
    assert file.hunks[0].lines == ("--- x", "+++ y")
    assert apply_file_patch("-- x\n", file) == "++ y\n"


# --------------------------------------------------------------------------- placement


def test_hunks_are_found_at_an_offset_nearest_first() -> None:
    original = "".join(f"line {n}\n" for n in range(1, 101))
    patch = ("--- a/f\n+++ b/f\n@@ -10,3 +10,3 @@\n line 10\n-line 11\n+eleven\n line 12\n"
             "@@ -50,3 +50,3 @@\n line 50\n-line 51\n+fifty-one\n line 52\n")
    [file] = parse_patch(patch)
    expected = original.replace("line 11\n", "eleven\n").replace("line 51\n", "fifty-one\n")
    shifted = "new top\n" * 7 + original  # the file grew above the hunks since the diff
    assert apply_file_patch(shifted, file) == "new top\n" * 7 + expected
    shrunk = original.replace("line 2\n", "").replace("line 3\n", "")
    assert apply_file_patch(shrunk, file) == expected.replace("line 2\n", "").replace(
        "line 3\n", "")

    # The same block twice: the copy nearest the stated line is the one changed.
    block = "def f():\n    return 1\n"
    twice = "a\n" + block + "b\n" * 30 + block
    [near_end] = parse_patch("--- f\n+++ f\n@@ -28,2 +28,2 @@\n def f():\n-    return 1\n"
                             "+    return 2\n")
    assert apply_file_patch(twice, near_end) == "a\n" + block + "b\n" * 30 + \
        block.replace("1", "2")
    [near_top] = parse_patch("--- f\n+++ f\n@@ -5,2 +5,2 @@\n def f():\n-    return 1\n"
                             "+    return 2\n")
    assert apply_file_patch(twice, near_top) == "a\n" + block.replace("1", "2") + \
        "b\n" * 30 + block

    # Equally far both ways: forward wins, as in GNU patch.
    tie = "b\n" * 5 + block + "b\n" * 4 + block
    [middle] = parse_patch("--- f\n+++ f\n@@ -9,2 +9,2 @@\n def f():\n-    return 1\n"
                           "+    return 2\n")
    assert apply_file_patch(tie, middle) == "b\n" * 5 + block + "b\n" * 4 + \
        block.replace("1", "2")


def test_hunks_may_not_go_backwards_or_overlap() -> None:
    original = "".join(f"l{n}\n" for n in range(1, 21))
    patch = ("--- f\n+++ f\n@@ -10,2 +10,2 @@\n l10\n-l11\n+X\n"
             "@@ -3,2 +3,2 @@\n l3\n-l4\n+Y\n")
    [file] = parse_patch(patch)
    with pytest.raises(PatchError, match="hunk 2 of f only matches before the end of hunk 1"):
        apply_file_patch(original, file)


def test_a_hunk_that_matches_nowhere_says_where_and_what() -> None:
    original = "".join(f"row {n}\n" for n in range(1, 30))
    patch = ("--- a/src/app.py\n+++ b/src/app.py\n@@ -2,2 +2,2 @@\n row 2\n-row 3\n+three\n"
             "@@ -14,3 +14,3 @@\n def first_context():\n-row 15\n+fifteen\n row 16\n")
    [file] = parse_patch(patch)
    with pytest.raises(PatchError) as caught:
        apply_file_patch(original, file)
    assert caught.value.message == (
        "hunk 2 of src/app.py does not match the file (expected at line 14:"
        " 'def first_context():'; the file has there: 'row 14'); read the file again and"
        " resend the hunk with its exact current lines")
    # No fuzz on content: a whitespace difference is a mismatch too.
    [spaced] = parse_patch("--- f\n+++ f\n@@ -1 +1 @@\n-row 1 \n+x\n")
    with pytest.raises(PatchError, match="hunk 1 of f does not match"):
        apply_file_patch(original, spaced)


# --------------------------------------------------------------------------- endings


def test_no_newline_at_end_both_ways() -> None:
    add_newline = ("--- f\n+++ f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n"
                   "+b\n")
    [file] = parse_patch(add_newline)
    assert (file.hunks[0].old_no_newline, file.hunks[0].new_no_newline) == (True, False)
    assert apply_file_patch("a\nb", file) == "a\nb\n"

    drop_newline = ("--- f\n+++ f\n@@ -1,2 +1,2 @@\n a\n-b\n+b\n"
                    "\\ No newline at end of file\n")
    [file] = parse_patch(drop_newline)
    assert apply_file_patch("a\nb\n", file) == "a\nb"

    both_open = ("--- f\n+++ f\n@@ -1,2 +1,2 @@\n-a\n+A\n b\n\\ No newline at end of file\n")
    [file] = parse_patch(both_open)
    assert (file.hunks[0].old_no_newline, file.hunks[0].new_no_newline) == (True, True)
    assert apply_file_patch("a\nb", file) == "A\nb"
    with pytest.raises(PatchError, match="at the end of the file"):
        apply_file_patch("a\nb\nc", file)  # the marker pins the hunk to the end

    # A model's diff that says nothing about the end keeps the file's own (open) end.
    [silent] = parse_patch("--- f\n+++ f\n@@ -2 +2,2 @@\n-b\n+B\n+C\n")
    assert apply_file_patch("a\nb", silent) == "a\nB\nC"


def test_a_marker_not_after_its_sides_last_line_is_refused() -> None:
    bad = "--- f\n+++ f\n@@ -1,2 +1,2 @@\n-a\n\\ No newline at end of file\n b\n+c\n"
    with pytest.raises(PatchError, match="hunk 1 of f: .* not the last one"):
        parse_patch(bad)


def test_crlf_files_keep_crlf_and_each_lines_own_ending() -> None:
    [file] = parse_patch("--- f\n+++ f\n@@ -1,3 +1,4 @@\n one\n-two\n+TWO\n+2.5\n three\n")
    assert apply_file_patch("one\r\ntwo\r\nthree\r\n", file) == \
        "one\r\nTWO\r\n2.5\r\nthree\r\n"
    # Mixed file: untouched lines keep theirs; added lines take the dominant (LF) one.
    assert apply_file_patch("one\r\ntwo\nthree\n", file) == "one\r\nTWO\n2.5\nthree\n"
    # A diff of a CRLF file carries the CR on each line; it is not part of the content.
    crlf_patch = "--- f\r\n+++ f\r\n@@ -1,2 +1,2 @@\r\n one\r\n-two\r\n+TWO\r\n"
    [file] = parse_patch(crlf_patch)
    assert apply_file_patch("one\r\ntwo\r\n", file) == "one\r\nTWO\r\n"


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(("header", "says"), [
    ("@@ -1,3 +1,3 @@", "its header says 3 old and 3 new lines, but its body has 2 old and 2"),
    ("@@ -1,2 +1,1 @@", "its header says 2 old and 1 new lines, but its body has 2 old and 2"),
    ("@@ -1 +1 @@", "its header says 1 old and 1 new lines, but its body has 2 old and 2"),
])
def test_hunk_counts_that_disagree_with_the_body_are_refused(header: str, says: str) -> None:
    patch = f"--- a/ok.py\n+++ b/ok.py\n@@ -1 +1 @@\n-x\n+y\n--- a/m.py\n+++ b/m.py\n" \
            f"@@ -1 +1 @@\n-p\n+q\n{header}\n a\n-b\n+c\n"
    with pytest.raises(PatchError, match=f"^hunk 2 of m.py: {says}"):
        parse_patch(patch)


def test_malformed_headers_are_refused() -> None:
    with pytest.raises(PatchError, match="hunk 1 of f: bad hunk header '@@ @@'"):
        parse_patch("--- f\n+++ f\n@@ @@\n-a\n+b\n")
    with pytest.raises(PatchError, match="/dev/null on both"):
        parse_patch("--- /dev/null\n+++ /dev/null\n@@ -0,0 +1 @@\n+a\n")
    with pytest.raises(PatchError, match="but no '@@' hunk"):
        parse_patch("--- a/f\n+++ b/f\nprose\n")
    with pytest.raises(PatchError, match="creates the file"):
        parse_patch("--- /dev/null\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n")


def test_creating_a_file_that_exists_or_changing_one_that_does_not() -> None:
    [create] = parse_patch("--- /dev/null\n+++ b/new.py\n@@ -0,0 +1,2 @@\n+a\n+b\n")
    assert apply_file_patch(None, create) == "a\nb\n"
    with pytest.raises(PatchError, match="^new.py already exists"):
        apply_file_patch("", create)
    [change] = parse_patch("--- a/old.py\n+++ b/old.py\n@@ -1 +1 @@\n-a\n+b\n")
    with pytest.raises(PatchError, match="^old.py does not exist"):
        apply_file_patch(None, change)


# --------------------------------------------------------------------------- limits


def test_patch_size_files_and_hunks_are_bounded() -> None:
    with pytest.raises(PatchError, match="larger than 512 KiB"):
        parse_patch("--- f\n+++ f\n@@ -1 +1 @@\n-a\n+" + "b" * MAX_PATCH_BYTES + "\n")
    with pytest.raises(PatchError, match="larger than 512 KiB"):  # counted in bytes
        parse_patch("--- f\n+++ f\n@@ -1 +1 @@\n-a\n+" + "é" * (MAX_PATCH_BYTES // 2) + "\n")
    one = "--- f{n}\n+++ f{n}\n@@ -1 +1 @@\n-a\n+b\n"
    assert len(parse_patch("".join(one.format(n=n) for n in range(MAX_FILES)))) == MAX_FILES
    with pytest.raises(PatchError, match=f"more than {MAX_FILES} files"):
        parse_patch("".join(one.format(n=n) for n in range(MAX_FILES + 1)))
    hunks = "".join(f"@@ -{n} +{n} @@\n-a\n+b\n" for n in range(1, MAX_HUNKS + 2))
    with pytest.raises(PatchError, match=f"more than {MAX_HUNKS} hunks"):
        parse_patch("--- f\n+++ f\n" + hunks)


def test_the_result_is_bounded() -> None:
    big_line = "x" * (1024 * 1024)
    original = (big_line + "\n") * 8
    [file] = parse_patch("--- f\n+++ f\n@@ -0,0 +1 @@\n+one more\n")
    with pytest.raises(PatchError, match="larger than 8 MiB"):
        apply_file_patch(original, file)
    assert len(apply_file_patch(original[:-20], file) or "") < MAX_RESULT_BYTES


def test_a_big_file_with_many_hunks_applies_in_linear_time() -> None:
    rng = random.Random(7)
    lines = [f"line {n} {rng.randrange(1000)}" for n in range(100_000)]
    original = "\n".join(lines) + "\n"
    step = len(lines) // MAX_HUNKS
    patch = ["--- a/big\n+++ b/big\n"]
    for number in range(MAX_HUNKS):
        at = number * step + 1  # 0-based index of the changed line
        patch.append(f"@@ -{at},3 +{at},3 @@\n {lines[at - 1]}\n-{lines[at]}\n+changed\n"
                     f" {lines[at + 1]}\n")
    [file] = parse_patch("".join(patch))
    shifted = "inserted above\n" * 40 + original  # every hunk is off its stated line
    began = time.monotonic()
    result = apply_file_patch(shifted, file)
    assert time.monotonic() - began < 10
    assert result is not None and result.count("changed\n") == MAX_HUNKS


def test_a_file_of_identical_lines_fails_fast_not_quadratically() -> None:
    original = "same\n" * 100_000
    hunk = "@@ -{at},6 +{at},6 @@\n same\n same\n same\n same\n same\n-other\n+x\n"
    text = "--- f\n+++ f\n" + "".join(hunk.format(at=n * 40 + 1) for n in range(MAX_HUNKS))
    [file] = parse_patch(text)
    began = time.monotonic()
    with pytest.raises(PatchError, match="hunk 1 of f does not match"):
        apply_file_patch(original, file)
    same = "@@ -{at},6 +{at},6 @@\n same\n same\n same\n same\n same\n-same\n+x\n"
    text = "--- f\n+++ f\n" + "".join(same.format(at=n * 40 + 1) for n in range(MAX_HUNKS))
    result = apply_file_patch(original, parse_patch(text)[0])
    assert result is not None and result.count("x\n") == MAX_HUNKS
    assert time.monotonic() - began < 10


def test_a_hand_made_patch_without_any_path_is_refused() -> None:
    with pytest.raises(PatchError, match="needs a path"):
        apply_file_patch("a\n", FilePatch(None, None, ()))


def test_the_search_for_misplaced_hunks_is_bounded() -> None:
    """Hunks made only of two common lines, each stated far from where it is: every try
    walks thousands of look-alike places, so the search must give up, and quickly."""
    def pattern(k: int) -> list[str]:
        return ["a"] + ["a" if (k >> bit) & 1 else "c" for bit in range(12)] + ["c"] * 3

    lines = [line for k in range(MAX_HUNKS) for line in pattern(k)]
    hunks = []
    for k in range(MAX_HUNKS):
        stated, body = (1 if k % 2 == 0 else len(lines) - 20), pattern(k)
        hunks.append(f"@@ -{stated},{len(body)} +{stated},{len(body)} @@\n"
                     + "".join(f" {line}\n" for line in body[:-1]) + "-c\n+X\n")
    [file] = parse_patch("--- f\n+++ f\n" + "".join(hunks))
    began = time.monotonic()
    with pytest.raises(PatchError, match="too many places that look alike"):
        apply_file_patch("\n".join(lines) + "\n", file)
    assert time.monotonic() - began < 5
