"""Every registered command is whole, and the change contract fails closed.

The commands are the registry's (each family's COMMANDS line), never a list written
here: a command added without its action, its words or, for a change, its kind and
its confirmation question is refused, when its class is defined or here, instead of
failing open in chat (no question asked) or failing quietly (no reply rendered).
"""

from __future__ import annotations

import sys
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from igor_cli import cli
from igor_cli.core import perform as core
from igor_cli.core.request import (
    Bookkeeping,
    Change,
    Halt,
    Outcome,
    QuestionWords,
    Read,
    Request,
    ShellCommand,
    held_back,
)
from igor_cli.core.run import Run
from igor_cli.render.said import Said


def _sample_requests(name: str) -> list[Any]:
    """The requests a command builds from its examples (the lines its help shows, which
    must run it): every kind of request it makes, as a newcomer wrote them."""
    from benchmarks.command_cost import example_words

    found = []
    for words in example_words(name):
        try:
            found.append(cli.parse(list(words)).request)
        except cli.HelpRequested:
            continue  # `igor help deploy`: help text, no request
    return found


def _outcome_types(act: Any) -> list[type]:
    """What an action returns, by its annotation (read in its module, as mypy reads it)."""
    hinted = act.__annotations__["return"]
    if isinstance(hinted, str):
        hinted = eval(hinted, vars(sys.modules[act.__module__]))  # its own annotation
    if isinstance(hinted, types.UnionType) or typing.get_origin(hinted) is typing.Union:
        return list(typing.get_args(hinted))
    return [hinted]


def problems_for(request_type: type) -> list[str]:
    """What a request type lacks to be performed and rendered everywhere."""
    name = request_type.__name__
    if not issubclass(request_type, Request):
        return [f"{name}: not a Request (core/request.py)"]
    found = []
    for outcome in _outcome_types(request_type.act):
        if not (isinstance(outcome, type) and issubclass(outcome, Outcome)):
            found.append(f"{name}: its action returns {outcome!r}, not an Outcome")
            continue
        # A held-back change's outcome says itself whether it posted: a broken glass is
        # recorded by it (a halt breaks none).
        posted = next(c for c in outcome.__mro__ if "posted" in vars(c))
        if (
            issubclass(request_type, Change)
            and not issubclass(request_type, Halt)
            and posted is Outcome
        ):
            found.append(f"{outcome.__name__}: a change's outcome that does not say it posted")
    return found


def test_every_command_is_whole() -> None:
    seen = 0
    for name in cli.commands():
        if name == "help":
            continue  # answers with help text, never a request
        requests = _sample_requests(name)
        assert requests, f"igor {name}: no example of it builds a request"
        shared = [r for r in requests if not isinstance(r, ShellCommand)]
        for request in shared:
            assert not problems_for(type(request)), (name, problems_for(type(request)))
        seen += bool(shared)
    assert seen >= 8  # list, deploy, cancel, history, rollback, promote, version, whoami


def test_each_family_registers_what_its_commands_line_declares() -> None:
    registered = cli.commands()
    declared = {d.name: d for d in cli.index().values()}
    assert set(registered) == set(declared)
    for name, info in registered.items():
        assert info.aliases == declared[name].aliases, name
        assert info.family == declared[name].family, name
    assert len(registered) > 15  # the index reads every family


def test_a_command_outside_its_families_commands_line_is_refused() -> None:
    def stray() -> None:
        """Not declared anywhere."""

    stray.__module__ = "igor_cli.features.stacks"
    with pytest.raises(TypeError, match="not in the COMMANDS line"):
        cli.command("stray")(stray)
    assert "stray" not in cli.commands()


def test_a_command_without_examples_is_refused() -> None:
    # Its examples are how the tests exercise it (its JSON, its requests' cost): without
    # them it would be skipped by both, so it is refused where it is written.
    def version_command() -> None:
        """Declared, but shows no examples."""

    version_command.__module__ = "igor_cli.features.about"
    before = cli.REGISTERED["version"]
    with pytest.raises(TypeError, match="igor version shows no examples"):
        cli.command("version", chat=True)(version_command)
    assert cli.REGISTERED["version"] is before


def test_an_examples_words_are_what_igor_is_given() -> None:
    from benchmarks.command_cost import example_words

    # Its help's lines, without what the shell does around them or --sandbox; a line of
    # another command (`igor locks`, shown by lock) is not lock's.
    assert example_words("register") == [("register",), ("register", "--slack"),
                                         ("register", "--slack", "--http"),
                                         ("register", "--stdin")]  # fmt: skip
    assert example_words("completion")[:2] == [("completion", "bash"), ("completion", "zsh")]
    assert example_words("lock") == [
        ("lock", "shop", "-e", "production", "--reason", "release 4.2", "--for", "2h")
    ]
    assert ("doctor",) in example_words("doctor")  # `igor --sandbox doctor`
    assert example_words("version") == [("version",)]  # not `igor --version`


# -- the change contract: refused when the class is defined -----------------------------


# A newcomer's change, as its family module would hold it; each case leaves one part out.
RESTART = """
from dataclasses import dataclass
from typing import Any

from igor_cli.core.request import Change, Outcome, QuestionWords, Request
from igor_cli.render.said import Said


@dataclass(frozen=True, kw_only=True)
class RestartRequest(Change):
    def question(self, stack: Any, literal: Any) -> QuestionWords:
        return QuestionWords(f"restart *{literal(stack.name)}*?", "Restart", "Cancel")

    def act(self, run: Any) -> Restarted:
        return Restarted()


@dataclass(frozen=True)
class Restarted(Outcome):
    def said(self, now: Any) -> Any:
        return Said("Restarted.", tone="started")

    def facts(self) -> Any:
        return {}
"""
LEFT_OUT = {
    "its kind": ("class RestartRequest(Change):", "class RestartRequest(Request):"),
    "its question": ("    def question(", "    def unasked("),
    "its action": ("    def act(", "    def restart("),
    "its words": ("    def said(", "    def unsaid("),
}
REFUSED = {
    "its kind": "RestartRequest does not say what it is: subclass Read, Bookkeeping, Change",
    "its question": "RestartRequest changes a stack but asks no confirmation question",
    "its action": "RestartRequest has no action: define act",
    "its words": "Restarted has no words of its own: define said",
}


def _load(source: str) -> dict[str, Any]:
    module: dict[str, Any] = {"__name__": "igor_cli.features.restart"}
    exec(compile(source, "features/restart.py", "exec"), module)  # our own text, above
    return module


def test_a_whole_change_is_taken() -> None:
    module = _load(RESTART)
    assert held_back(module["RestartRequest"](stack="shop"))


@pytest.mark.parametrize("part", list(LEFT_OUT))
def test_a_change_without_a_part_of_its_contract_is_refused_when_defined(part: str) -> None:
    written, instead = LEFT_OUT[part]
    assert written in RESTART
    with pytest.raises(TypeError, match=REFUSED[part]):
        _load(RESTART.replace(written, instead))


def test_a_change_that_says_it_needs_no_cloud66_is_refused() -> None:
    # Chat would answer it at once, off the path that confirms and approves.
    with pytest.raises(TypeError, match="always needs Cloud 66"):

        @dataclass(frozen=True, kw_only=True)
        class RestartRequest(Change):
            needs_cloud66: ClassVar[bool] = False

            def question(self, stack: Any, literal: Any) -> QuestionWords:
                return QuestionWords("restart?", "Restart", "Cancel")

            def act(self, run: Any) -> Any:
                return None


def test_a_read_that_does_not_say_whether_it_needs_cloud66_is_refused() -> None:
    for kind in (Read, Bookkeeping):
        with pytest.raises(TypeError, match="whether it needs Cloud 66"):
            type("ServicesRequest", (kind,), {"__module__": __name__})


def test_an_outcome_without_its_words_is_refused() -> None:
    with pytest.raises(TypeError, match="no words of its own: define said, facts"):

        @dataclass(frozen=True)
        class Restarted(Outcome):
            stack: str


def test_an_outcome_that_would_be_said_as_its_parent_is_refused() -> None:
    from igor_cli.features.deploy import DeployOutcome

    # A rollback is a deploy: without words of its own it would be said as one.
    with pytest.raises(TypeError, match="no words of its own: define facts"):

        @dataclass(frozen=True, kw_only=True)
        class RestartOutcome(DeployOutcome):
            def said(self, now: Any) -> Said:
                return Said("Restarted.", tone="started")


def test_a_change_names_its_stack() -> None:
    from igor_cli.features.deploy import DeployRequest

    with pytest.raises(TypeError, match="stack"):
        DeployRequest()  # type: ignore[call-arg]
    assert DeployRequest(stack="shop").stack == "shop"


def test_a_read_has_no_stack_unless_it_names_one() -> None:
    from igor_cli.features.about import VersionRequest

    assert not hasattr(VersionRequest(), "stack")  # no facet answers for what it lacks
    assert not hasattr(VersionRequest(), "dry_run")


# -- a whole change, added as a newcomer would, then broken part by part ----------------


@dataclass(frozen=True, kw_only=True)
class RestartRequest(Change):
    """`igor restart`, as someone adds it."""

    def question(self, stack: Any, literal: Any) -> QuestionWords:
        return QuestionWords(f"restart *{literal(stack.name)}*?", "Restart", "Cancel")

    def act(self, run: Run) -> Restarted:
        return Restarted(self.stack)


@dataclass(frozen=True)
class Restarted(Outcome):
    stack: str

    @property
    def posted(self) -> bool:
        return True

    def said(self, now: Any) -> Said:
        return Said(f"Restarted {self.stack}.", tone="started")

    def facts(self) -> Any:
        return {"stack": self.stack}


@dataclass(frozen=True)
class Unsaid(Outcome):
    """An outcome whose words are there, but that does not say whether it posted."""

    def said(self, now: Any) -> Said:
        return Said("Done.")

    def facts(self) -> Any:
        return {}


@dataclass(frozen=True, kw_only=True)
class RestartQuietly(RestartRequest):
    def act(self, run: Run) -> Unsaid:
        return Unsaid()


@dataclass(frozen=True, kw_only=True)
class RestartAsText(RestartRequest):
    def act(self, run: Run) -> str:  # type: ignore[override]
        return "restarted"


def test_a_change_is_held_back_by_its_kind_and_a_halt_is_not() -> None:
    assert held_back(RestartRequest(stack="shop"))

    @dataclass(frozen=True, kw_only=True)
    class StopRequest(Halt):
        def question(self, stack: Any, literal: Any) -> QuestionWords:
            return QuestionWords("stop?", "Stop", "Keep it")

        def act(self, run: Any) -> Any:
            return None

    assert not held_back(StopRequest(stack="shop"))


@pytest.mark.parametrize(
    ("request_type", "problem"),
    [
        (RestartAsText, "RestartAsText: its action returns <class 'str'>, not an Outcome"),
        (RestartQuietly, "Unsaid: a change's outcome that does not say it posted"),
        (RestartRequest, None),
    ],
)
def test_a_change_whose_outcome_does_not_say_itself_is_refused(
    request_type: type, problem: str | None
) -> None:
    assert problems_for(request_type) == ([problem] if problem else [])


def test_perform_refuses_an_action_that_returns_no_outcome(clock: Any) -> None:
    from igor_cli.config import Environment
    from igor_cli.identity import Origin

    env = Environment(clock=clock.datetime)
    try:
        with pytest.raises(TypeError, match="returned no Outcome"):
            core.perform(env, _no_cloud66, RestartAsText(stack="x"), Origin("cli", "me"))
    finally:
        env.close()


@dataclass(frozen=True, kw_only=True)
class RestartSaidToBeARead(Read):
    """A newcomer's restart declared a read: the guard would not hold it back."""

    needs_cloud66: ClassVar[bool] = True
    stack: str

    def act(self, run: Run) -> Any:
        client = run.connect()
        stack = client.stacks()[0]
        return client.deploy(stack.uid)  # any POST: the read reads, then tries to change


def test_a_change_declared_a_read_is_refused_before_it_posts(sim: Any, clock: Any) -> None:
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.config import Environment
    from igor_cli.identity import Origin

    env = Environment(clock=clock.datetime)
    client = Cloud66Client(sim.token, sim.url)
    try:
        with pytest.raises(TypeError, match=r"ToBeARead is no Change .*: it may not deploy"):
            core.perform(
                env, lambda: client, RestartSaidToBeARead(stack="blog"), Origin("cli", "me")
            )
        assert sim.count("GET", "/stacks") == 1  # it ran, and read
        assert sim.count("POST") == 0  # and sent nothing
        assert client.deploy(client.stacks()[0].uid).ok  # outside a read, the client posts
    finally:
        client.close()
        env.close()


def test_perform_cannot_run_without_the_guards_inputs() -> None:
    import inspect

    # The environment holds the store and the config the guard reads: no default for it.
    for signature in (inspect.signature(core.perform), inspect.signature(Run)):
        assert signature.parameters["env"].default is inspect.Parameter.empty
    assert next(iter(inspect.signature(core.perform).parameters)) == "env"


def _no_cloud66() -> Any:
    raise AssertionError("no lock or freeze: the guard asks nothing of Cloud 66")


# -- chat ---------------------------------------------------------------------------


def test_chat_runs_the_shared_commands_and_never_a_shell_only_one() -> None:
    allowed = cli.chat_allowed()
    for name, info in cli.commands().items():
        if name == "help":
            assert info.chat  # chat's own help
            continue
        kinds = {isinstance(request, Request) for request in _sample_requests(name)}
        assert len(kinds) == 1, name  # chat's, or the shell's alone: never both
        shared = kinds.pop()
        assert info.chat == shared, name
        assert (name in allowed) == shared, name
        assert all((alias in allowed) == shared for alias in info.aliases), name
    assert set(cli.chat_commands()) == {n for n, i in cli.commands().items() if i.chat}
    assert cli.chat_commands()[-2:] == ("help", "version")


def test_whoami_in_the_shell_and_in_chat(sim: Any, igor: Any, clock: Any, monkeypatch: Any) -> None:
    import json

    from igor_cli.chat.bridge import Bridge
    from igor_cli.config import Environment
    from igor_cli.identity import Origin
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


# -- JSON ---------------------------------------------------------------------------


def _takes_json(name: str) -> bool:
    return any(param.name == "as_json" for param in cli.group().commands[name].params)


JSON_COMMANDS = [n for n in cli.commands() if _takes_json(n)]


@pytest.mark.parametrize("name", JSON_COMMANDS)
def test_every_command_with_json_declares_its_fields(name: str) -> None:
    # `--json a,b` is checked against them before anything runs; without them every
    # field list would be refused (and a new command's JSON could not be narrowed).
    for request in _sample_requests(name):
        fields = type(request).json_fields
        assert fields, f"igor {name} takes --json but {type(request).__name__} declares none"
        assert len(set(fields)) == len(fields)


# An error, as every command prints it with --json (render/terminal.py's error_json).
ERROR_FIELDS = {"error", "message", "exit_code", "hint"}


def _json_words(words: tuple[str, ...]) -> list[str]:
    """An example's words, asking for JSON (every field) unless it does already."""
    return list(words) if any(w.startswith("--json") for w in words) else [*words, "--json"]


@pytest.mark.parametrize("name", JSON_COMMANDS)
def test_every_json_field_a_command_prints_is_one_it_declares(
    sim: Any, igor: Any, clock: Any, name: str
) -> None:
    # Its examples (its help's lines) are what is run, on the sample stacks: a command
    # added without an example that prints its JSON fails here, not skipped.
    import json

    from benchmarks.command_cost import example_words

    examples = example_words(name)
    assert examples, f"igor {name}: none of its examples runs it"
    printed: set[str] = set()
    for words in examples:
        declared = set(type(cli.parse(_json_words(words)).request).json_fields)
        clock.advance(3600)  # what the last example started is over
        ran = igor(*_json_words(words))
        assert ran.exit_code != 2, f"`igor {' '.join(words)}`, an example: {ran.stderr}"
        try:
            documents = [json.loads(ran.stdout)]
        except json.JSONDecodeError:  # JSON Lines: a followed deployment's events
            documents = [json.loads(line) for line in ran.stdout.splitlines()]
        # Nothing at all: it broke (`igor: unexpected error`), as a change declared a read
        # does when the client refuses its POST.
        assert documents, f"`igor {' '.join(words)} --json` printed nothing: {ran.stderr}"
        for data in documents:
            for item in data if isinstance(data, list) else [data]:
                if ran.exit_code and "error" in item:
                    assert set(item) <= ERROR_FIELDS, (words, item)
                    continue  # refused, as every command says it
                assert set(item) <= declared, (words, sorted(set(item) - declared))
                printed |= set(item)
    assert printed, f"no example of igor {name} printed its JSON (only errors, or nothing)"
