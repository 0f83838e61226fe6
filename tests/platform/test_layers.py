"""The GraphQL layers touch no database: resolvers and types hand the session to services.

`make lint` (import-linter, `.importlinter`) already forbids `schema/` and `resolvers/` to import
SQLAlchemy; this test closes the gap import rules can't see: calling the session's own
methods (`session.execute(...)`, `session.add(...)`) with a statement or row built elsewhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SESSION_METHODS = frozenset(
    {"execute", "scalar", "scalars", "get", "get_one", "add", "add_all", "delete", "flush",
     "merge", "refresh", "begin", "begin_nested", "commit", "rollback", "stream"}
)  # fmt: skip


def _session_calls(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        target = node.func.value
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name == "session" and node.func.attr in SESSION_METHODS:
            found.append(f"{path.relative_to(root)}:{node.lineno}: session.{node.func.attr}()")
    return sorted(found, key=lambda call: int(call.split(":")[1]))


def test_resolvers_and_types_call_no_session_method() -> None:
    offenders = [
        call
        for layer in ("schema", "resolvers")
        for path in sorted((ROOT / layer).rglob("*.py"))
        for call in _session_calls(path)
    ]
    assert offenders == []


def test_the_check_sees_a_session_call(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "async def f(info, session):\n"
        "    await info.context.session.execute(1)\n"
        "    session.add(2)\n"
        "    await reading.get(session, 3)\n"
    )
    assert _session_calls(sample, tmp_path) == [
        "sample.py:2: session.execute()",
        "sample.py:3: session.add()",
    ]
