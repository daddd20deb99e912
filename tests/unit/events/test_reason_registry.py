"""Every dead-letter reason code any deployed module emits is a ``Reason`` and is in
docs/events.md: the emitters are found by reading the source (AST), not trusted.

Emitters are calls that carry a reason into a dead letter or the rejection counter:
``DeadLetter(reason=...)``, the builders of ``streams.deadletters``, ``Rejection(reason, ...)``,
``CommuneCodeError(reason, ...)`` and ``EVENTS_REJECTED.labels(feed, reason)``. A string
constant or a module-level name bound to one counts; ``Reason.X`` is a member already.
"""

from __future__ import annotations

import ast
from pathlib import Path

from ioccore.events.reasons import DESCRIPTIONS, Reason

ROOT = Path(__file__).resolve().parents[3]
DEPLOYED = ("ioc", "ioccore", "streams", "geo", "alerts")
# call name -> position of the reason among the positional arguments
EMITTERS = {"DeadLetter": None, "_dead": 3, "Rejection": 0, "CommuneCodeError": 0,
            "rejected": None, "of_record": 1, "_whole": 2}


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _literal(node: ast.expr, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None  # Reason.X, a variable: checked where it is bound


def emitted() -> dict[str, list[str]]:
    """reason code -> where it is emitted (file:line)."""
    found: dict[str, list[str]] = {}
    for package in DEPLOYED:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            constants = {t.id: n.value.value for n in tree.body
                         if isinstance(n, ast.Assign | ast.AnnAssign)
                         and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                         for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                         if isinstance(t, ast.Name)}
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = _name(node.func)
                args: list[ast.expr] = []
                if name in EMITTERS:
                    pos = EMITTERS[name]
                    if pos is not None and len(node.args) > pos:
                        args.append(node.args[pos])
                    args += [k.value for k in node.keywords if k.arg == "reason"]
                elif (name == "labels" and isinstance(node.func, ast.Attribute)
                      and _name(node.func.value) == "EVENTS_REJECTED" and len(node.args) == 2):
                    args.append(node.args[1])
                for arg in args:
                    code = _literal(arg, constants)
                    if code is not None:
                        found.setdefault(code, []).append(
                            f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_the_scan_finds_the_known_literal_emitters() -> None:
    codes = emitted()
    assert "ambiguous_legacy_code" in codes  # geo/legacy.py binds it to a name
    assert "unknown_commune_code" in codes


def test_every_emitted_reason_is_a_documented_reason() -> None:
    known = {r.value for r in Reason}
    unknown = {code: where for code, where in emitted().items() if code not in known}
    assert not unknown, f"reason codes emitted but not in Reason: {unknown}"
    doc = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    assert all(f"| `{r.value}` |" in doc for r in Reason)
    assert set(DESCRIPTIONS) == set(Reason)
