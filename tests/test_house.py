"""The house rules a newcomer can rely on, checked by reading the source with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "igor_cli"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions (lazily)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path) & set(modules) - {name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle, or [] (a depth-first search keeping the path)."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str]:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return []
        for target in sorted(graph[name]):
            found = visit(target, [*path, name])
            if found:
                return found
        done.add(name)
        return []

    for name in sorted(graph):
        found = visit(name, [])
        if found:
            return found
    return []


def test_no_import_cycle_among_igors_modules_lazy_imports_included() -> None:
    graph = _graph()
    assert len(graph) > 20  # the reader sees igor's modules
    assert not _cycle(graph), " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_typers_vendored_click_is_imported_in_one_module() -> None:
    users = sorted(
        name
        for name, path in _modules().items()
        if any(module.startswith("typer._click") for module in _imports(path))
    )
    assert users == ["igor_cli.cli"]


def test_the_core_knows_no_slack() -> None:
    for name in ("igor_cli.actions", "igor_cli.cloud66", "igor_cli.errors", "igor_cli.config"):
        imported = _imports(_modules()[name])
        slack = {m for m in imported if m.startswith(("slack_sdk", "igor_cli.render.slack"))}
        assert not slack, (name, slack)


def test_only_the_slack_adapter_knows_slack_under_chat() -> None:
    for name, path in _modules().items():
        if not name.startswith("igor_cli.chat.") or name.startswith("igor_cli.chat.slack"):
            continue
        slack = {
            module
            for module in _imports(path)
            if module.startswith(("slack_sdk", "igor_cli.render.slack", "igor_cli.chat.slack"))
        }
        assert not slack, (name, slack)
