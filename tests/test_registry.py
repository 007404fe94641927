"""Every registered command is whole: an action for its request, renderers for each
outcome, and a confirmation question when it changes something.

A command added without one of them is refused here, instead of failing open in
chat (no question asked) or failing quietly (no reply rendered).
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from igor_cli import actions, cli, terminal
from igor_cli.render import sentences
from igor_cli.render.slack import confirmation_question


def _sample_request(name: str) -> Any:
    """The request a command builds when given dummy values for what it requires."""
    command = cli.group().commands[name]
    words = [name]
    for param in command.params:
        # -s is required after the defaults had their say: a command that names a stack.
        needed = param.required or (param.name == "stack" and command.names_a_stack)
        if needed and param.opts and param.opts[0].startswith("-"):
            words += [param.opts[0], "x"]
    return cli.parse(words).request


def _outcome_types(action: Any) -> list[type]:
    hinted = typing.get_type_hints(action)["return"]
    if isinstance(hinted, types.UnionType) or typing.get_origin(hinted) is typing.Union:
        return list(typing.get_args(hinted))
    return [hinted]


def _registered(dispatcher: Any, kind: type) -> bool:
    # As the renderers find them: words that wait for their outcome's module included.
    return sentences.found_later(dispatcher, kind) is not None


def problems_for(request_type: type) -> list[str]:
    """What a request type lacks to be performed and rendered everywhere."""
    name = request_type.__name__
    if not issubclass(request_type, actions.Request):
        return [f"{name}: not an actions.Request (the guard and bridge read its facets)"]
    action = actions.ACTIONS.get(request_type)
    if action is None:
        return [f"{name}: no action (actions.performs)"]
    found = []
    for outcome in _outcome_types(action):
        for renderer in (sentences.sentence, sentences.facts, sentences.tone):
            if not _registered(renderer, outcome):
                found.append(f"{outcome.__name__}: no {renderer.__name__} (render/sentences.py)")
    if request_type.changes and not _registered(confirmation_question, request_type):
        found.append(f"{name}: changes a stack but has no confirmation question")
    return found


def test_every_command_is_whole() -> None:
    shell_only = terminal._shell_only()
    seen = 0
    for name, info in cli.COMMANDS.items():
        if name == "help":
            continue  # answers with help text, never a request
        request = _sample_request(name)
        if type(request) in shell_only:
            assert not info.chat, f"{name} is shell-only but chat may run it"
            continue
        assert not problems_for(type(request)), (name, problems_for(type(request)))
        seen += 1
    assert seen >= 8  # list, deploy, cancel, history, rollback, promote, version, whoami


@dataclass(frozen=True)
class RestartRequest(actions.Request):
    """A command someone adds without its question or renderers."""

    changes: ClassVar[bool] = True
    needs_cloud66: ClassVar[bool] = True
    as_json: bool = False


@dataclass(frozen=True)
class RestartOutcome:
    exit_code = 0


def restart(run: actions.Run, request: RestartRequest) -> RestartOutcome:
    return RestartOutcome()


def test_a_change_without_a_question_or_a_renderer_is_refused() -> None:
    assert problems_for(RestartRequest) == ["RestartRequest: no action (actions.performs)"]
    assert problems_for(RestartOutcome) == [
        "RestartOutcome: not an actions.Request (the guard and bridge read its facets)"
    ]
    actions.ACTIONS[RestartRequest] = restart
    try:
        found = problems_for(RestartRequest)
    finally:
        del actions.ACTIONS[RestartRequest]
    assert "RestartOutcome: no sentence (render/sentences.py)" in found
    assert "RestartRequest: changes a stack but has no confirmation question" in found


def test_chat_runs_only_what_the_definitions_allow() -> None:
    assert set(cli.CHAT_COMMANDS) == {
        "list",
        "deploy",
        "cancel",
        "watch",
        "history",
        "rollback",
        "promote",
        "whoami",
        "lock",
        "unlock",
        "locks",
        "help",
        "version",
    }
    assert "serve" not in cli.CHAT_ALLOWED and "register" not in cli.CHAT_ALLOWED
    assert {"redeploy", "stop", "get"} <= cli.CHAT_ALLOWED


def test_whoami_in_the_shell_and_in_chat(sim: Any, igor: Any, clock: Any, monkeypatch: Any) -> None:
    import json

    from igor_cli.actions import Origin
    from igor_cli.chat.bridge import Bridge
    from igor_cli.config import Environment
    from tests.conftest import rendered

    ran = igor("whoami")
    assert ran.exit_code == 0, ran.output
    assert f"igor talks to {sim.url} as igor sandbox, with the token from environment" in ran.stdout
    facts = json.loads(igor("whoami", "--json").stdout)
    assert facts["account"] == "igor sandbox" and facts["sandbox"] is False
    sim.add_token("pat-no-users-scope-9", ["public", "redeploy"])
    monkeypatch.setenv("IGOR_CLOUD66_TOKEN", "pat-no-users-scope-9")
    assert "an account whose name needs the users scope" in igor("whoami").stdout
    bridge = Bridge(Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep))
    reply = bridge.handle("whoami", Origin("slack", "U1", "r-1"), "C1")
    assert "igor talks to" in rendered(reply).text


def test_a_change_that_names_no_stack_is_refused_not_dropped(sim: Any, clock: Any) -> None:
    from igor_cli.actions import Origin
    from igor_cli.chat.bridge import Bridge
    from igor_cli.config import Environment

    bridge = Bridge(Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep))
    with bridge._client() as connect:
        reply = bridge._change(
            "restart", RestartRequest(), ["restart"], Origin("slack", "U1", "r"), "C1", "", None,
            connect,
        )  # fmt: skip
    assert reply.status == "refused"
    assert "cannot tell which stack `restart` would change" in reply.notice
    assert sim.requests == []


class SaidParent:
    """An outcome with words of its own."""


def test_words_may_wait_for_their_module_only_when_no_parent_has_words(
    monkeypatch: Any,
) -> None:
    import functools
    import sys
    import types

    monkeypatch.setattr(sentences, "_WAITING", [])
    said = functools.singledispatch(lambda outcome: "nothing")
    said.register(SaidParent, lambda outcome: "the parent's")
    module = types.ModuleType("igor_cli_waiting_words")
    module.Alone = type("Alone", (), {})  # type: ignore[attr-defined]
    module.Child = type("Child", (SaidParent,), {})  # type: ignore[attr-defined]

    def alone_words(outcome: Alone) -> str:  # type: ignore[name-defined]  # noqa: F821
        return "its own"

    def child_words(outcome: Child) -> str:  # type: ignore[name-defined]  # noqa: F821
        return "its own"

    sentences.later(said, module.__name__)(alone_words)
    assert sentences.found_later(said, module.Alone) is None  # its module is not loaded yet
    monkeypatch.setitem(sys.modules, module.__name__, module)
    assert sentences.found_later(said, module.Alone) is alone_words
    sentences.later(said, module.__name__)(child_words)
    # A Child said before its words were registered got its parent's: refused.
    with pytest.raises(TypeError, match="parent's words"):
        sentences.found_later(said, module.Child)


def _takes_json(name: str) -> bool:
    return any(param.name == "as_json" for param in cli.group().commands[name].params)


@pytest.mark.parametrize("name", [n for n in cli.COMMANDS if _takes_json(n)])
def test_every_command_with_json_declares_its_fields(name: str) -> None:
    # `--json a,b` is checked against them before anything runs; without them every
    # field list would be refused (and a new command's JSON could not be narrowed).
    request = _sample_request(name)
    assert type(request).json_fields, f"igor {name} takes --json but declares no json_fields"
    assert len(set(type(request).json_fields)) == len(type(request).json_fields)


@pytest.mark.parametrize(
    "args",
    [("list",), ("list", "--wide"), ("history", "shop", "-e", "production"),
     ("deploy", "blog", "--dry-run"), ("deploy", "blog", "--follow"), ("cancel", "blog"),
     ("watch", "blog"), ("version",), ("whoami",), ("locks",), ("lock", "blog"),
     ("unlock", "blog"), ("rollback", "shop", "-e", "production", "--dry-run"),
     ("promote", "shop", "--from", "staging", "--to", "production", "--dry-run"),
     ("doctor",)],
)  # fmt: skip
def test_every_json_field_a_command_prints_is_one_it_declares(
    sim: Any, igor: Any, args: tuple[str, ...]
) -> None:
    import json

    declared = set(type(cli.parse([*args, "--json"]).request).json_fields)
    printed: set[str] = set()
    out = igor(*args, "--json").stdout
    try:
        documents = [json.loads(out)]
    except json.JSONDecodeError:  # JSON Lines: a followed deployment's events
        documents = [json.loads(line) for line in out.splitlines()]
    for data in documents:
        for item in data if isinstance(data, list) else [data]:
            printed |= set(item)
    assert printed, f"igor {' '.join(args)} --json printed nothing"
    assert printed <= declared, sorted(printed - declared)
