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


def _typer_private(path: Path) -> set[str]:
    """typer's and click's names beyond typer's public API (`typer.Option`, `typer.Context`,
    ...) that a file uses: an import of one of typer's modules, or of click, or a
    module reached as an attribute (`typer.main.get_command`)."""
    used = set()
    for module in _imports(path):
        parts = module.split(".")
        if parts[0] == "click":
            used.add("click")
        elif parts[0] == "typer" and len(parts) > 1 and parts[1] in _TYPER_MODULES:
            used.add(f"typer.{parts[1]}")
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        value = node.value if isinstance(node, ast.Attribute) else None
        if isinstance(value, ast.Name) and value.id == "typer" and node.attr in _TYPER_MODULES:
            used.add(f"typer.{node.attr}")
    return used


_TYPER_MODULES = {
    "_click", "_coercion", "_completion_classes", "_completion_shared", "_types", "_typing",
    "cli", "colors", "completion", "core", "main", "models", "params", "rich_utils", "utils",
    "exceptions", "testing",
}  # fmt: skip


def test_typers_private_names_are_used_in_one_module() -> None:
    users = sorted(name for name, path in _modules().items() if _typer_private(path))
    assert users == ["igor_cli.cli_typer"], {n: _typer_private(_modules()[n]) for n in users}


def test_the_private_names_finder_finds_them(tmp_path: Path) -> None:
    found = tmp_path / "found.py"
    found.write_text(
        "import typer\nfrom typer.core import TyperGroup\nfrom typer._click import echo\n"
        "def f():\n    return typer.main.get_command\n"
    )
    assert _typer_private(found) == {"typer.core", "typer._click", "typer.main"}
    public = tmp_path / "public.py"
    public.write_text("import typer\nfrom typer import Abort\nx = typer.Option(None)\n")
    assert _typer_private(public) == set()


SOCKET_MODE_TRANSPORT = {
    "igor_cli.chat.slack.transports.socket_mode",
    "igor_cli.chat.slack.transports.socket_reader",
}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _slack_sdk_builtin_private_names() -> set[str]:
    """The private names of slack_sdk's built-in Socket Mode client (its `builtin` package,
    whose internals igor's frame reader takes over), read from the installed source."""
    from slack_sdk.socket_mode import builtin

    names: set[str] = set()
    for path in Path(builtin.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.Name):
                names.add(node.id)
    return {name for name in names if _private(name)}


def _defined(path: Path) -> set[str]:
    """The names a module of igor's defines for itself (functions, classes, attributes set)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute | ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.attr if isinstance(node, ast.Attribute) else node.id)
    return names


def _slack_sdk_internals_used(path: Path, private: set[str]) -> set[str]:
    """slack_sdk's built-in Socket Mode internals a module reaches: its connection, frame and
    internals modules, and any of `private` as an attribute, an override or a string."""
    used = {
        module
        for module in _imports(path)
        if module.startswith("slack_sdk.socket_mode.builtin.")
        and not module.startswith("slack_sdk.socket_mode.builtin.client")
        and module != "slack_sdk.socket_mode.builtin.SocketModeClient"  # its public client
    }
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr in private:
            used.add(node.attr)
        elif isinstance(node, ast.FunctionDef) and node.name in private:
            used.add(node.name)
        elif isinstance(node, ast.Constant) and node.value in private:
            used.add(str(node.value))
    return used


def test_slack_sdks_private_names_stay_in_the_socket_mode_transport() -> None:
    """The frame reader builds on slack_sdk's internals: a slack_sdk that changes them breaks
    two modules (the reader stops the bot saying so), and no other module of igor's."""
    modules = _modules()
    own = set().union(
        *(_defined(path) for name, path in modules.items() if name not in SOCKET_MODE_TRANSPORT)
    )
    private = _slack_sdk_builtin_private_names() - own  # igor's own `_lock` is not slack_sdk's
    assert {"_run_current_session", "_first_ping_time"} <= private  # the finder sees them
    users = {name for name, path in modules.items() if _slack_sdk_internals_used(path, private)}
    assert users == SOCKET_MODE_TRANSPORT


_CORE = ("igor_cli.core", "igor_cli.cloud66", "igor_cli.features", "igor_cli.identity",
         "igor_cli.errors", "igor_cli.config")  # fmt: skip


def test_the_core_and_the_features_know_no_slack() -> None:
    chosen = [name for name in _modules() if name.startswith(_CORE)]
    assert {"igor_cli.core.perform", "igor_cli.features.deploy"} <= set(chosen)
    for name in chosen:
        imported = _imports(_modules()[name])
        slack = {m for m in imported if m.startswith(("slack_sdk", "igor_cli.render.slack"))}
        assert not slack, (name, slack)


def test_the_features_draw_nothing_themselves() -> None:
    # A feature says its outcome (words, facts); the renderers draw it. The set-up family
    # is the shell's own: it prints through the terminal and starts the bot and the console.
    for name, path in _modules().items():
        if not name.startswith(("igor_cli.features", "igor_cli.core")):
            continue
        edge = ("igor_cli.render.terminal", "igor_cli.chat")
        drawing = {
            m for m in _imports(path)
            if m.split(".")[0] == "rich"
            or m.startswith(("igor_cli.render.terminal", "igor_cli.render.slack",
                             "igor_cli.render.text", "igor_cli.chat"))
        }  # fmt: skip
        if name == "igor_cli.features.setup":
            drawing = {m for m in drawing if not m.startswith(edge)}
        assert not drawing, (name, drawing)


def test_no_product_module_is_over_800_lines() -> None:
    sizes = {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in _modules().items()
    }
    assert {name: size for name, size in sizes.items() if size > 800} == {}


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


def _outcome_classes() -> set[str]:
    """The outcome classes the features define (subclasses of `Outcome`, at any depth)."""
    bases: dict[str, set[str]] = {}
    for name, path in _modules().items():
        if name.startswith("igor_cli.features"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    bases[node.name] = {ast.unparse(base).split(".")[-1] for base in node.bases}
    found = {"Outcome"}
    while True:
        more = {name for name, of in bases.items() if of & found} - found
        if not more:
            return found - {"Outcome"}
        found |= more


def _knows_commands(path: Path, outcomes: set[str]) -> set[str]:
    """What a module knows of the commands: the feature modules it imports, and the outcome
    classes it names."""
    known = {m for m in _imports(path) if m.startswith("igor_cli.features")}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        named = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
        if named in outcomes:
            known.add(named)
    return known


def test_the_renderers_know_no_command() -> None:
    # They draw what an outcome says (render/said.py): a renderer that knew an outcome
    # would branch on it, and a new command would need a change in every renderer.
    outcomes = _outcome_classes()
    assert {"StackList", "History", "DeployOutcome", "RollbackOutcome"} <= outcomes
    renderers = [name for name in _modules() if name.startswith("igor_cli.render")]
    assert {"igor_cli.render.terminal", "igor_cli.render.slack", "igor_cli.render.text"} <= set(
        renderers
    )
    for name in renderers:
        assert not _knows_commands(_modules()[name], outcomes), name


def test_the_command_finder_finds_them(tmp_path: Path) -> None:
    knowing = tmp_path / "knowing.py"
    knowing.write_text(
        "def draw(outcome):\n"
        "    from igor_cli.features.history import History\n"
        "    if isinstance(outcome, History) or isinstance(outcome, stacks.StackList):\n"
        "        return 1\n"
    )
    assert _knows_commands(knowing, {"History", "StackList"}) == {
        "igor_cli.features.history", "igor_cli.features.history.History", "History", "StackList",
    }  # fmt: skip
    blind = tmp_path / "blind.py"
    blind.write_text("def draw(outcome):\n    return outcome.said(now)\n")
    assert _knows_commands(blind, {"History", "StackList"}) == set()


def test_no_module_of_igor_imports_what_is_no_longer_a_dependency() -> None:
    # requests left the dependencies (igor_cli/http.py speaks HTTP on the standard
    # library); it, and what came with it, may be absent where igor is installed.
    gone = {"requests", "urllib3", "certifi", "charset_normalizer", "idna"}
    importing = {
        name: found
        for name, path in _modules().items()
        if (found := {i for i in _imports(path) if i.split(".")[0] in gone})
    }
    assert importing == {}
    import tomllib

    pyproject = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))
    needed = {
        d.split(">")[0].split("<")[0].split("[")[0] for d in pyproject["project"]["dependencies"]
    }
    assert not needed & gone
