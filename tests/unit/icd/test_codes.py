"""Each code list is declared once, in vehiclehub.icd.codes: the schemas take theirs from
there, and no other module of the product spells a code list out."""

from __future__ import annotations

import ast
import inspect
from enum import StrEnum
from pathlib import Path

from vehiclehub.contract import feeds
from vehiclehub.icd import codes

ROOT = Path(__file__).resolve().parents[3]
CODE_LISTS = {
    name: set(codes.values(kind))
    for name, kind in inspect.getmembers(codes, inspect.isclass)
    if issubclass(kind, StrEnum) and kind is not StrEnum
}


def spelled_out(source: str) -> list[tuple[int, str]]:
    """(line, code list) of each list, tuple or set literal of two or more strings that
    are all values of one code list."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.List | ast.Tuple | ast.Set) and len(node.elts) >= 2:
            texts = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            if len(texts) == len(node.elts) and all(isinstance(t, str) for t in texts):
                found += [(node.lineno, n) for n, v in CODE_LISTS.items() if set(texts) <= v]
    return found


def test_every_enum_column_of_the_feeds_takes_a_declared_code_list() -> None:
    declared = [sorted(v) for v in CODE_LISTS.values()]
    for spec in feeds().values():
        for column in spec.columns:
            if column.type == "enum":
                assert sorted(column.values) in declared, (spec.table, column.name)
                assert all(type(v) is str for v in column.values)


def test_no_module_spells_a_code_list_out() -> None:
    places = [
        (path.relative_to(ROOT), line, name)
        for folder in ("src/vehiclehub", "schemas")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "codes.py"
        for line, name in spelled_out(path.read_text(encoding="utf-8"))
    ]
    assert places == []


def test_a_spelled_out_code_list_is_seen_and_a_mixed_one_is_not() -> None:
    assert spelled_out('x = ("register", "deregister")') == [(1, "EventType")]
    assert spelled_out('x = ["pending", "verified"]') == []
    assert spelled_out('x = ("cleared",)') == []
