"""Rules of the layout that import-linter cannot see (docs/ARCHITECTURE.md).

Only store/ speaks SQL: every other module calls a named verb there, so the schema can change
in one room and every statement is found (and indexed) in one place. The sandbox keeps its
own database and is exempt.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gateway"
EXEMPT = ("gateway/store/", "gateway/sandbox/")

_SQL = re.compile(
    r"\bSELECT\b[\s\S]+?\bFROM\b|\b(?:INSERT|REPLACE)\s+(?:OR\s+\w+\s+)?INTO\b"
    r"|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b|\bCREATE\s+(?:TABLE|INDEX)\b|\bPRAGMA\b",
)  # upper case only: our SQL is written that way, and prose ("select a folder") is not SQL
_SQL_CALLS = {"execute", "executemany", "executescript", "query"}
# sqlite-utils' table API: db["t"].insert(...), db.table("t").rows_where(...)
_TABLE_CALLS = {"table", "rows_where", "insert_all", "upsert", "upsert_all", "lookup"}


def _is_text(node: ast.expr) -> bool:
    """A string literal, an f-string, or literals joined with +."""
    if isinstance(node, ast.BinOp):
        return _is_text(node.left) or _is_text(node.right)
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def sql_sites(path: Path) -> list[int]:
    """Lines of `path` with a database call or SQL text in a string literal."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            # db.execute("...") with any text; proto.execute(cmd) of IMAP is not SQL
            if node.func.attr in _SQL_CALLS and node.args and _is_text(node.args[0]):
                lines.append(node.lineno)
            if node.func.attr in _TABLE_CALLS:
                lines.append(node.lineno)
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("db", "database", "conn")
        ):
            lines.append(node.lineno)  # db["table"]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _SQL.search(node.value):
                lines.append(node.lineno)
    return sorted(set(lines))


def test_no_sql_outside_store():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(EXEMPT):
            continue
        found += [f"{rel}:{line}" for line in sql_sites(path)]
    assert not found, "SQL outside gateway/store/ (move it into a named store verb):\n" + "\n".join(
        found
    )


def test_the_scanner_sees_sql(tmp_path: Path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        'db.execute("BEGIN")\n'
        'q = ("SELECT id "\n     "FROM jobs")\n'
        'u = f"UPDATE jobs SET state = {x!r}"\n'
        'text = "Select a plan from the list"\n'
        "proto.execute(cmd)\n"
        'db["jobs"].insert({"kind": "x"})\n'
        'db.table("jobs").rows_where("id = ?", [1])\n'
        'r = "REPLACE INTO kv VALUES (1)"\n'
    )
    # not the prose on line 5, not IMAP on line 6
    assert sql_sites(sample) == [1, 2, 4, 7, 8, 9]
