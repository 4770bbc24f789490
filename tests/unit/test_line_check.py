"""ICD §1 line structure, checked on raw bytes before parsing, wherever blocks are cut."""

from __future__ import annotations

import pytest

from vehiclehub.intake.read import LINE_MAX_BYTES, scan

HEADER = b"a,b\r\n"
LONGEST = b"x" * (LINE_MAX_BYTES - 2) + b",1"  # exactly 64 KiB


def _problem(data: bytes) -> set[str | None]:
    """What the check finds, with the file cut into blocks of several sizes."""
    found = set()
    sizes = (1, 2, 3, 7, 1 << 20) if len(data) < 1000 else (4093, 65537, 1 << 20)
    for size in sizes:
        blocks = [data[i : i + size] for i in range(0, len(data), size)]
        found.add(scan(blocks, "utf-8-sig").bad_lines)
    return found


@pytest.mark.parametrize(
    "body",
    [
        b"1,2\r\n3,4\r\n",
        b"1,2\n3,4",  # LF endings, last line without one
        b'"1,""2""",3\r\n',  # quotes doubled inside a quoted field
        LONGEST + b"\r\n" + LONGEST,
        b"\xe4\xb8\xb0\xe7\x94\xb0,2\n",  # non-ASCII text
    ],
)
def test_lines_icd_allows_pass(body: bytes) -> None:
    assert _problem(HEADER + body) == {None}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'1,"2\n3",4\r\n', "line 2 has an unbalanced quote"),
        (b'1,2\r\n1,"2\r3",4\r\n', "line 3 has an unbalanced quote"),
        (b'1,2\r\n1,"2', "line 3 has an unbalanced quote"),
        (b"1,2\r3,4\r\n", "line 2 has a CR that does not end a line"),
        (b"1,2\r", "line 2 has a CR that does not end a line"),
        (LONGEST + b"x\r\n", "line 2 is longer than 64 KiB"),
        (b"1,2\n" + LONGEST + b"x", "line 3 is longer than 64 KiB"),
    ],
)
def test_lines_icd_forbids_reject_the_file_at_their_line(body: bytes, expected: str) -> None:
    (problem,) = _problem(HEADER + body)
    assert problem is not None and problem.startswith(expected), problem
    assert problem.endswith("the file is rejected whole")


@pytest.mark.parametrize(
    ("body", "codec", "expected"),
    [
        ("丰田,2\n".encode(), "gb18030", True),  # UTF-8 that also reads as GB18030
        ("丰田,2\n".encode("gb18030"), "gb18030", False),  # GB18030 proper
        (b"a,2\n", "gb18030", False),  # ASCII reads the same either way
        ("丰田,2\n".encode(), "utf-8-sig", False),  # declared UTF-8: nothing to doubt
    ],
)
def test_a_file_declared_gb18030_that_reads_as_utf8_is_noticed(
    body: bytes, codec: str, expected: bool
) -> None:
    data = HEADER + body
    for size in (1, 2, 3, 5, 1 << 20):  # wherever a character is cut
        blocks = [data[i : i + size] for i in range(0, len(data), size)]
        found = scan(blocks, codec)
        assert found.problem is None and found.reads_as_utf8 is expected
