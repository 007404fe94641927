"""What a new user meets first: help, typos, retired names, default targets, the sandbox.

Issue 11, items 9, 10, 13, 14 and 18: through the CLI runner, the `igor chat`
console and the fake Slack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from igor_cli.chat.bridge import Bridge
from igor_cli.config import Environment
from igor_cli.identity import Origin
from igor_cli.sandbox import Simulator
from tests.conftest import Igor, RunningBot, rendered
from tests.fakes.clock import FakeClock
from tests.fakes.slack import FakeSlack


def text_of(call: object) -> str:
    params = getattr(call, "params", {})
    return str(params.get("text", "")) + str(params.get("blocks", ""))


def _bridge(clock: FakeClock) -> Bridge:
    return Bridge(Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep))


# -- `exit` and `halt`: the original Igor's aliases, for a stack named only -----------
# (issue 26 item 9; issue 9 had retired `exit` because a bare one could cancel a default)


def test_exit_and_halt_cancel_a_named_stack_in_a_shell(sim: Simulator, igor: Igor) -> None:
    assert igor("deploy", "-s", "blog").exit_code == 0
    ran = igor("exit", "blog")
    assert ran.exit_code == 0, ran.output
    assert "Cancelling deployment" in ran.stdout and "blog (production)" in ran.stdout
    assert igor("deploy", "-s", "legacy").exit_code == 0
    assert igor("halt", "-s", "legacy").exit_code == 0
    assert sim.count("DELETE") == 2
    said = " ".join(igor("cancel", "-h").stdout.split())
    assert "Aliases: stop, exit, halt. exit and halt act only on a stack named after them" in said


@pytest.mark.parametrize("alias", ["exit", "halt"])
def test_exit_and_halt_never_take_a_default_stack(
    sim: Simulator, igor: Igor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, alias: str
) -> None:
    assert igor("deploy", "-s", "blog").exit_code == 0
    monkeypatch.setenv("IGOR_STACK", "blog")
    monkeypatch.setenv("IGOR_ENVIRONMENT", "production")
    _project(tmp_path, 'stack = "blog"\n')
    monkeypatch.chdir(tmp_path)
    _config('[defaults]\nstack = "blog"\n')
    reads = len(sim.requests)
    ran = igor(alias)
    assert ran.exit_code == 2
    said = " ".join(ran.stderr.split())
    assert f"`{alias}` cancels only a stack named after it (`{alias} shop`), never a" in said
    assert "Name the stack, or type `cancel`, which takes the default." in said
    assert "Using stack" not in said
    assert len(sim.requests) == reads  # nothing asked of Cloud 66, nothing cancelled
    assert igor("cancel").exit_code == 0  # cancel itself still takes the default
    assert sim.count("DELETE") == 1


def test_a_bare_exit_still_leaves_the_chat_console(sim: Simulator, igor: Igor) -> None:
    before = sim.count("GET", "/stacks")
    ran = igor("chat", input="exit\nlist\ncancel -s blog\n")
    assert ran.exit_code == 0
    assert "`exit` or `quit` to leave" in ran.stdout
    assert "igor>" not in ran.stdout  # nothing after `exit` was answered
    assert sim.count("GET", "/stacks") == before
    assert sim.count("DELETE") == 0
    assert igor("deploy", "-s", "blog").exit_code == 0
    ran = igor("chat", input="exit blog\nquit\n")  # named: it cancels
    assert "Cancelling deployment" in ran.stdout
    assert sim.count("DELETE") == 1


@pytest.mark.parametrize("leave", ["quit", "EXIT"])
def test_quit_leaves_the_chat_console_too(sim: Simulator, igor: Igor, leave: str) -> None:
    ran = igor("chat", input=f"version\n{leave}\nversion\n")
    assert ran.exit_code == 0
    assert ran.stdout.count("igor> igor ") == 1


def _answer_in_thread(slack: FakeSlack, ts: str) -> str:
    # A deploy's follow-up may come before or after this answer: find it in its thread.
    deadline = time.monotonic() + 5
    answers: list[str] = []
    while not answers and time.monotonic() < deadline:
        answers = [text_of(c) for c in slack.calls_to("chat.postMessage")
                   if c.params.get("thread_ts") == ts]  # fmt: skip
        time.sleep(0.02)
    assert answers, f"no answer in thread {ts}"
    return answers[0]


def test_exit_in_slack_needs_the_stack_named_even_in_a_channel_with_a_default(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    _config('[[slack.channel]]\nid = "C0DEPLOY"\nstack = "blog"\nenvironment = "production"\n')
    sim.deploy_seconds = 100_000  # type: ignore[misc]  # still running when `exit` comes
    bot.start()
    bot.mention("deploy")  # the channel's default: blog
    bot.replies(1)
    answer = " ".join(_answer_in_thread(slack, bot.mention("exit")).split())
    assert "`exit` cancels only a stack named after it" in answer
    assert sim.count("DELETE") == 0
    answer = _answer_in_thread(slack, bot.mention("exit -s blog"))
    assert "Cancelling deployment" in answer
    assert sim.count("DELETE") == 1


# -- item 13: typos get a suggestion; chat shows chat's usage -------------------------


def test_a_typo_in_a_shell_gets_a_suggestion(igor: Igor) -> None:
    ran = igor("deplyo", "-s", "shop")
    assert ran.exit_code == 2
    assert "Unknown command 'deplyo'. Did you mean deploy?" in ran.stderr
    assert "Did you mean redeploy?" in igor("redeplyo").stderr  # aliases too
    assert "Did you mean" not in igor("frobnicate").stderr  # nothing close: no guess


def test_a_typo_in_chat_gets_a_suggestion_in_chats_words(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    bot.start()
    bot.mention("lsit -e staging")
    said = text_of(bot.replies(1)[0])
    assert "Unknown command 'lsit'. Did you mean list?" in said
    assert "`@igor help`" in said
    assert "Usage: igor" not in said
    assert "Try 'igor" not in said
    assert sim.count("GET", "/stacks") == 0


def test_chat_usage_names_the_bot_as_slack_knows_it(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    slack.bot_name = "deploybot"  # `igor slack-manifest --name deploybot`
    bot.start()
    bot.mention("deploy --bogus")
    said = text_of(bot.replies(1)[0])
    assert "Usage: @deploybot deploy [OPTIONS]" in said
    assert "Try `@deploybot deploy -h` for help." in said
    assert "@igor" not in said


def test_a_bad_option_in_chat_shows_the_commands_usage_in_chats_words(
    sim: Simulator, clock: FakeClock
) -> None:
    reply = _bridge(clock).handle("deploy -s shop --bogus", Origin("slack", "U1", "r1"))
    said = rendered(reply).text
    assert reply.status == "usage"
    assert "Usage: @igor deploy [OPTIONS]" in said
    assert "Try `@igor deploy -h` for help." in said
    assert "No such option: --bogus" in said
    assert "Try 'igor" not in said
    assert "Usage: igor" not in said


def test_a_shell_only_command_in_chat_is_not_taken_for_a_typo(
    sim: Simulator, clock: FakeClock
) -> None:
    reply = _bridge(clock).handle("serve", Origin("slack", "U1", "r1"))
    said = rendered(reply).text
    assert "Unknown command 'serve'." in said
    assert "Did you mean" not in said  # `version` is close in letters, not in meaning


def test_a_typo_in_the_chat_console_gets_a_suggestion(sim: Simulator, igor: Igor) -> None:
    ran = igor("chat", input="histroy -s shop\n")
    assert "Did you mean history?" in ran.stdout
    assert "Try 'igor" not in ran.stdout
    assert sim.count("GET", "/deployments") == 0


# -- item 18: help ------------------------------------------------------------------------


def test_igor_alone_prints_help_on_stdout_and_exits_0(igor: Igor) -> None:
    ran = igor()
    assert ran.exit_code == 0
    assert ran.stdout.startswith("Usage: igor [OPTIONS] COMMAND [ARGS]...")
    assert ran.stderr == ""
    assert ran.stdout == igor("-h").stdout


def test_the_command_list_is_grouped_whole_and_names_help_and_version(igor: Igor) -> None:
    top = igor("-h").stdout
    headings = [line for line in top.splitlines() if line.endswith(":") and not line[0].isspace()]
    assert headings == ["Options:", "Stacks:", "The Slack bot:", "Set-up and help:"]
    stacks = top.split("Stacks:")[1].split("The Slack bot:")[0]
    assert "\n  deploy " in stacks and "\n  serve " not in stacks  # a command, not a word
    assert "\n  help " in top and "\n  version " in top
    # The first paragraph whole, where click cut it at 45 characters ("...").
    assert "..." not in top.split("Stacks:")[1]
    flat = " ".join(top.split())
    assert "Deploy a stack (or only some of its services, or a given ref)." in flat


def test_every_command_has_examples(igor: Igor) -> None:
    from igor_cli import cli

    for name, command in cli.group().commands.items():
        if command.hidden:
            continue
        shown = igor(name, "-h")
        assert shown.exit_code == 0, name
        examples = shown.stdout.split("\nExamples:\n")
        assert len(examples) == 2, f"igor {name} -h has no Examples section"
        lines = examples[1].strip().splitlines()
        assert lines and all(line.strip().startswith(("igor ", "printf ")) for line in lines)


@pytest.mark.parametrize("command", ["deploy", "list", "help"])
def test_dash_h_before_a_command_shows_that_commands_help(igor: Igor, command: str) -> None:
    before = igor("-h", command)
    assert before.exit_code == 0
    assert before.stdout == igor(command, "-h").stdout
    assert before.stdout.startswith(f"Usage: igor {command} ")


def test_dash_h_before_an_unknown_word_shows_igors_help(igor: Igor) -> None:
    ran = igor("--help", "frobnicate")
    assert ran.exit_code == 0
    assert ran.stdout == igor().stdout
    assert igor("--version", "deploy").stdout.startswith("igor ")  # not deploy's help


def test_version_and_help_stay_cheap_no_rich() -> None:
    code = (
        "import sys, io, contextlib\n"
        "from igor_cli.terminal import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    for args in (['--version'], ['-h'], []):\n"
        "        assert main(args) == 0\n"
        "print(sorted(m for m in sys.modules if m == 'rich' or m.startswith('rich.')))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[]"


# What `igor list` piped (a program reading it, or a pipe to grep) must not load: rich
# (igor writes plain text itself), the bot, the state store, typer's pydantic conversion
# and the keyring (the token is in the environment).
_NOT_FOR_A_PIPED_LIST = {"rich", "slack_sdk", "redis", "sqlite3", "pydantic", "keyring"}


def _run_probed(args: list[str]) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """igor run as its console script does, and the modules it held at exit."""
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.__stderr__.write('\\nMODULES ' + ' '.join(sys.modules)))\n"
        f"sys.argv = ['igor', *{args!r}]\n"
        "from igor_cli.__main__ import main\n"
        "main()\n"
    )
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get(
        "PYTHONPATH")]))}  # fmt: skip
    ran = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert "MODULES " in ran.stderr, ran.stderr
    return ran, set(ran.stderr.rsplit("MODULES ", 1)[1].split())


@pytest.mark.parametrize("args", [["list"], ["list", "--json"], ["list", "-s", "shop"]])
def test_a_piped_list_loads_only_what_it_needs(sim: Simulator, args: list[str]) -> None:
    ran, modules = _run_probed(args)
    assert ran.returncode == 0, ran.stderr
    assert "shop" in ran.stdout  # it did list the simulator's stacks
    if "--json" not in args:
        assert ran.stdout.splitlines()[0].split()[:2] == ["NAME", "ENVIRONMENT"]
    assert sim.count("GET", "/stacks") == 1
    assert {"igor_cli.core.perform", "igor_cli.render.terminal", "igor_cli.http"} <= modules
    # igor's own HTTP module on the standard library: no requests, urllib3 or certifi.
    assert not {m.split(".")[0] for m in modules} & {"requests", "urllib3", "certifi", "idna"}
    loaded = {m.split(".")[0] for m in modules} & _NOT_FOR_A_PIPED_LIST
    assert not loaded, args
    # Nor the modules of other commands: of igor's families, only its own (features/).
    families = {m for m in modules if m.startswith("igor_cli.features.")}
    assert families == {"igor_cli.features.stacks"}, families
    assert not modules & {"igor_cli.freeze", "igor_cli.state"}


@pytest.mark.parametrize(
    "args",
    [
        ["lock", "shop", "-e", "staging", "--for", "1h"],
        ["history", "shop", "-e", "production", "-n", "3"],
        ["deploy", "api", "-v", "web", "-w", "false", "--dry-run"],
    ],
)
def test_igors_own_option_types_convert_without_pydantic(args: list[str]) -> None:
    ran, modules = _run_probed(["--sandbox", *args])
    assert ran.returncode == 0, ran.stderr
    assert "igor_cli.core.perform" in modules  # the command did run
    assert not {m for m in modules if m.split(".")[0] == "pydantic"}, args


# -- item 10: default targets, and the stack as the first word ---------------------------


def _config(text: str) -> None:
    Path(os.environ["IGOR_CONFIG"]).write_text(text, encoding="utf-8")


def _project(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ".igor.toml").write_text(text, encoding="utf-8")
    return directory / ".igor.toml"


@pytest.mark.parametrize(
    "args",
    [("deploy", "blog"), ("deploy", "--no-wait", "blog"), ("redeploy", "blog", "-e", "production")],
)
def test_the_stack_may_come_first_without_dash_s(
    sim: Simulator, igor: Igor, args: tuple[str, ...]
) -> None:
    ran = igor(*args)
    assert ran.exit_code == 0, ran.output
    assert "Deploy started" in ran.stdout and "blog (production)" in ran.stdout
    assert sim.count("POST", "/deployments") == 1
    assert "Using" not in ran.stderr  # nothing was defaulted


def test_every_command_with_dash_s_takes_the_stack_first(sim: Simulator, igor: Igor) -> None:
    assert "shop (production)" in igor("history", "shop", "-e", "production").output
    listed = igor("list", "sho").stdout
    assert listed.count("shop") == 2 and "blog" not in listed  # list's -s filters
    igor("deploy", "blog")
    assert "Cancelling deployment" in igor("cancel", "blog").stdout
    assert sim.count("DELETE") == 1


def test_two_different_stacks_are_a_usage_error(sim: Simulator, igor: Igor) -> None:
    ran = igor("deploy", "blog", "-s", "shop")
    assert ran.exit_code == 2
    assert "Two stacks named: 'blog' and -s 'shop'; name one." in ran.stderr
    assert sim.count("POST", "/deployments") == 0
    assert igor("deploy", "blog", "-s", "blog", "--dry-run").exit_code == 0  # the same one


def test_no_stack_and_no_default_is_a_usage_error(sim: Simulator, igor: Igor) -> None:
    ran = igor("deploy", "-e", "production")
    assert ran.exit_code == 2
    assert "Missing option '-s' / '--stack'. Name it after the command or with -s." in ran.stderr
    assert sim.count("GET") == 0


def test_igor_toml_is_found_by_walking_up(
    sim: Simulator, igor: Igor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = _project(tmp_path / "shop", 'stack = "shop"\nenvironment = "staging"\n')
    (tmp_path / "shop" / "src" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "shop" / "src" / "deep")
    ran = igor("deploy", "--dry-run")
    assert ran.exit_code == 0, ran.output
    assert "shop (staging)" in ran.stdout
    assert f"Using stack shop and environment staging (from {found})." in ran.stderr
    monkeypatch.chdir(tmp_path)  # above the project: no default
    assert igor("deploy", "--dry-run").exit_code == 2


def test_variables_give_defaults_and_say_so(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IGOR_STACK", "shop")
    monkeypatch.setenv("IGOR_ENVIRONMENT", "production")
    ran = igor("deploy", "--dry-run", "--json")
    assert ran.exit_code == 0, ran.output
    facts = json.loads(ran.stdout)  # the note is on stderr: stdout stays JSON
    assert (facts["stack"]["name"], facts["stack"]["environment"]) == ("shop", "production")
    assert "Using stack shop and environment production (from IGOR_STACK" not in ran.stderr
    assert "stack shop (from IGOR_STACK)" in ran.stderr
    assert "environment production (from IGOR_ENVIRONMENT)" in ran.stderr


def test_the_config_files_defaults_come_last(
    sim: Simulator,
    igor: Igor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _config('[defaults]\nstack = "blog"\nenvironment = "production"\n')
    monkeypatch.chdir(tmp_path)
    ran = igor("deploy", "--dry-run")
    assert "blog (production)" in ran.stdout
    assert "(from [defaults] in " in ran.stderr
    monkeypatch.setenv("IGOR_STACK", "shop")  # the variable beats the config file
    assert "shop (production)" in igor("deploy", "--dry-run").stdout
    _project(tmp_path, 'environment = "staging"\n')  # .igor.toml beats the config file
    ran = igor("deploy", "--dry-run")
    assert "shop (staging)" in ran.stdout
    assert "stack shop (from IGOR_STACK)" in ran.stderr
    assert f"environment staging (from {tmp_path / '.igor.toml'})" in ran.stderr
    typed = igor("deploy", "legacy", "-e", "production", "--dry-run")  # typed beats them all
    assert "legacy (production)" in typed.stdout
    assert "Using" not in typed.stderr
    assert sim.count("POST", "/deployments") == 0


def test_the_variables_beat_the_project_file(
    sim: Simulator, igor: Igor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As FLY_APP beats fly.toml and HEROKU_APP the git remote: the variable is set on
    # purpose, for this session or this one command; the file is found by where you stand.
    found = _project(tmp_path, 'stack = "shop"\nenvironment = "staging"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IGOR_STACK", "blog")
    ran = igor("deploy", "--dry-run")
    assert ran.exit_code == 1, ran.output  # blog has no staging: the file's environment stands
    assert "Stack 'blog' has no 'staging' environment" in ran.stderr
    assert "stack blog (from IGOR_STACK)" in ran.stderr
    assert f"environment staging (from {found})" in ran.stderr
    monkeypatch.setenv("IGOR_ENVIRONMENT", "production")
    ran = igor("deploy", "--dry-run")
    assert ran.exit_code == 0, ran.output
    assert "blog (production)" in ran.stdout
    assert "Using stack blog (from IGOR_STACK) and environment production (from " in ran.stderr
    assert str(found) not in ran.stderr  # the file gave nothing that was used
    assert sim.count("POST", "/deployments") == 0


def test_list_takes_no_default(sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IGOR_STACK", "blog")
    monkeypatch.setenv("IGOR_ENVIRONMENT", "staging")
    ran = igor("list", "--json")
    assert len(json.loads(ran.stdout)) == 7
    assert "Using" not in ran.stderr


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('stack = "shop"\ncolour = "red"\n', "unknown key 'colour'"),
        ("stack = 5\n", "'stack' must be a string"),
        ("stack = [\n", "The project file"),
    ],
)
def test_a_bad_igor_toml_is_named(
    sim: Simulator,
    igor: Igor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    said: str,
) -> None:
    path = _project(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    ran = igor("deploy", "--dry-run")
    assert ran.exit_code == 2
    assert said in ran.stderr and str(path) in ran.stderr
    assert sim.count("GET") == 0
    assert igor("list").exit_code == 0  # a command that takes no default does not read it


CHANNEL_DEFAULTS = """
[[slack.channel]]
id = "C0SHOP"
stack = "shop"
environment = "staging"

[[slack.channel]]
id = "C0PROD"
stack = "shop"
environment = "production"
"""


def test_a_channel_has_its_own_default_and_the_shells_never_apply(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(CHANNEL_DEFAULTS)
    monkeypatch.setenv("IGOR_STACK", "blog")  # the shell that runs the bot: not chat's
    bot.start()
    bot.mention("deploy --dry-run", channel="C0SHOP")
    said = text_of(bot.replies(1)[0])
    assert "shop (staging)" in said
    assert "Using stack shop and environment staging (from this channel's default)." in said
    bot.mention("deploy --dry-run", channel="C0ELSEWHERE")
    said = text_of(bot.replies(2)[-1])
    assert "Missing option '-s' / '--stack'" in said
    assert "blog" not in said
    bot.mention("deploy legacy --dry-run", channel="C0SHOP")  # typed: the channel's stack yields
    said = text_of(bot.replies(3)[-1])
    assert "Stack 'legacy' has no 'staging' environment" in said  # its environment still holds
    assert sim.count("POST", "/deployments") == 0


def test_a_channel_default_of_production_still_asks_for_confirmation(
    sim: Simulator, clock: FakeClock
) -> None:
    from igor_cli.chat.guard import Signer, rules_from_config

    _config('[slack]\nconfirm = ["production"]\n' + CHANNEL_DEFAULTS)
    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    bridge = Bridge(env, rules=rules_from_config(env.config()), signer=Signer(b"k" * 32))
    reply = bridge.handle("deploy", Origin("slack", "U1", "r1"), "C0PROD")
    assert reply.status == "confirm", rendered(reply).text
    assert reply.question is not None and reply.question.stack.environment == "production"
    assert "this channel's default" in rendered(reply).text
    assert sim.count("POST", "/deployments") == 0
    staging = bridge.handle("deploy", Origin("slack", "U1", "r2"), "C0SHOP")
    assert staging.status == "ok"  # staging needs no confirmation: it was deployed
    assert sim.count("POST", "/deployments") == 1


def test_the_chat_console_uses_no_shell_default(
    sim: Simulator, igor: Igor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(tmp_path, 'stack = "blog"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IGOR_STACK", "blog")
    ran = igor("chat", input="deploy --dry-run\n")
    assert "Missing option '-s' / '--stack'" in ran.stdout
    assert sim.count("GET") == 0


def test_a_malformed_channel_default_is_an_answer_not_a_crash(
    sim: Simulator, clock: FakeClock
) -> None:
    _config('[[slack.channel]]\nid = "C0SHOP"\nstak = "shop"\n')
    reply = _bridge(clock).handle("deploy --dry-run", Origin("slack", "U1", "r1"), "C0SHOP")
    assert reply.status == "error"
    assert "unknown key 'stak'" in rendered(reply).text
    assert sim.count("GET") == 0


# -- item 14: --sandbox anywhere, marked, and reset -----------------------------------------

SANDBOX_NOTE = "Sandbox: igor's built-in Cloud 66 simulator, not your account."


@pytest.mark.parametrize(
    "args", [("--sandbox", "list"), ("list", "--sandbox"), ("list", "-e", "staging", "--sandbox")]
)
def test_sandbox_before_or_after_the_command(igor: Igor, args: tuple[str, ...]) -> None:
    ran = igor(*args)  # no token anywhere: only the sandbox can answer
    assert ran.exit_code == 0, ran.output
    assert "shop" in ran.stdout
    assert ran.stderr.count(SANDBOX_NOTE) == 1


def test_sandbox_json_stays_json_and_the_mark_goes_to_stderr(igor: Igor) -> None:
    ran = igor("list", "--json", "--sandbox")
    assert ran.exit_code == 0
    assert len(json.loads(ran.stdout)) == 7
    assert SANDBOX_NOTE not in ran.stdout
    assert SANDBOX_NOTE in ran.stderr


def test_your_account_is_not_marked_as_the_sandbox(sim: Simulator, igor: Igor) -> None:
    ran = igor("list")
    assert ran.exit_code == 0
    assert "Sandbox" not in ran.output


def test_sandbox_reset_starts_the_sandbox_over(igor: Igor) -> None:
    assert igor("deploy", "blog", "--sandbox").exit_code == 0
    busy = {s["name"]: s["busy"] for s in json.loads(igor("--sandbox", "list", "--json").stdout)}
    assert busy["blog"] is True
    ran = igor("reset", "--sandbox")
    assert ran.exit_code == 0
    assert "The sandbox is reset" in ran.stdout
    busy = {s["name"]: s["busy"] for s in json.loads(igor("--sandbox", "list", "--json").stdout)}
    assert busy["blog"] is False
    history = igor("--sandbox", "history", "blog", "--json").stdout
    assert "igor:cli:" not in history  # the deployment igor started is gone


def test_reset_without_the_sandbox_is_refused(sim: Simulator, igor: Igor) -> None:
    ran = igor("reset")
    assert ran.exit_code == 2
    assert "resets the sandbox only" in ran.stderr
    assert "igor --sandbox reset" in ran.stderr
    assert sim.count("GET") == 0 and sim.count("POST") == 0
    assert not (Path(os.environ["IGOR_CACHE_DIR"]) / "sandbox-state.json").exists()


def test_sandbox_in_chat_is_refused_not_ignored(sim: Simulator, clock: FakeClock) -> None:
    reply = _bridge(clock).handle("deploy -s blog --sandbox", Origin("slack", "U1", "r1"))
    assert reply.status == "usage"
    assert "--sandbox works in a shell only" in rendered(reply).text
    assert sim.count("GET") == 0 and sim.count("POST") == 0


def test_a_fresh_igor_says_each_outcome_in_its_own_words() -> None:
    # Each family is loaded only when its command is parsed; in a test process something
    # else has loaded them all already, so each runs in a fresh one.
    for args, said in [
        (["rollback", "shop", "-e", "production", "--dry-run"], "Dry run: would roll back shop"),
        (["lock", "shop", "-e", "staging", "--for", "1h"], "Locked shop (staging) for"),
        (["locks"], "1 lock in force:"),
        (["locks", "--json"], '"locks":[{"stack":'),
        (["unlock", "shop", "-e", "staging"], "Unlocked shop (staging)."),
    ]:
        ran, _ = _run_probed(["--sandbox", *args])
        assert ran.returncode == 0, ran.stderr
        assert said in ran.stdout, (args, ran.stdout)
