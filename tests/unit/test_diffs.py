"""Reading unified diffs (cw_edge/diffs.py): line types and numbers on each side, as git prints them."""

from __future__ import annotations

from cw_edge import diffs

DIFF = """diff --git a/f.txt b/f.txt
index d68dd40..6fe8acc 100644
--- a/f.txt
+++ b/f.txt
@@ -1,4 +1,5 @@
 a
-b
+B
 c
 d
+e
@@ -10,2 +11,2 @@ def later():
 x
--- y, a removed line that looks like a header
+++ z, an added one
diff --git a/gone.txt b/gone.txt
deleted file mode 100644
--- a/gone.txt
+++ /dev/null
@@ -1 +0,0 @@
-x
\\ No newline at end of file
diff --git "a/sp ace.txt" "b/sp ace.txt"
new file mode 100644
--- /dev/null
+++ "b/sp ace.txt"
@@ -0,0 +1 @@
+new
"""


def test_files_lines_and_their_numbers() -> None:
    files = diffs.by_path(DIFF)
    assert list(files) == ["f.txt", "gone.txt", "sp ace.txt"]
    first = [(line.kind, line.old, line.new) for line in files["f.txt"].hunks[0].lines]
    assert first == [
        ("context", 1, 1),
        ("removed", 2, None),
        ("added", None, 2),
        ("context", 3, 3),
        ("context", 4, 4),
        ("added", None, 5),
    ]
    second = [(line.kind, line.old, line.new) for line in files["f.txt"].hunks[1].lines]
    assert second == [("context", 10, 11), ("removed", 11, None), ("added", None, 12)]
    assert [line.kind for hunk in files["gone.txt"].hunks for line in hunk.lines] == ["removed"]
    assert files["sp ace.txt"].hunks[0].lines[0].text == "+new"


def test_a_line_is_found_on_the_new_side_first_or_among_removed_lines() -> None:
    f = diffs.by_path(DIFF)["f.txt"]
    found = f.find(2)
    assert found is not None and found[1].text == "+B" and found[0].header == "@@ -1,4 +1,5 @@"
    removed = f.find(2, removed=True)
    assert removed is not None and removed[1].text == "-b"
    assert f.find(11, removed=True) is not None and f.find(11) is not None and f.find(99) is None
    assert diffs.by_path(DIFF)["gone.txt"].find(1) is not None  # no new side: the removed line
    hunk = found[0].text().splitlines()
    assert hunk[0].startswith("@@") and "+e" in hunk


def test_walk_gives_every_printed_line_its_file() -> None:
    steps = list(diffs.walk(DIFF))
    assert [step.text for step in steps] == DIFF.splitlines()
    assert {step.path for step in steps if step.line is not None} == {"f.txt", "gone.txt", "sp ace.txt"}
    assert sum(step.starts_hunk for step in steps) == 4
