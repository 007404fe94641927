"""The command line end to end: CliRunner -> igor -> real HTTP -> the simulator."""

from __future__ import annotations

import json

import pytest

from igor_cli.sandbox import Simulator
from tests.conftest import Igor
from tests.fakes.clock import FakeClock


def deploy_posts(sim: Simulator) -> int:
    return sim.count("POST", "/deployments")


# -- list -------------------------------------------------------------------


def test_list_shows_every_stack_sorted_by_name_then_environment(sim: Simulator, igor: Igor) -> None:
    ran = igor("list")
    assert ran.exit_code == 0
    names = [line.split()[0] for line in ran.stdout.splitlines()[1:] if line.strip()]
    assert names == ["api", "blog", "legacy", "Payments", "search", "shop", "shop"]
    shop_lines = [line for line in ran.stdout.splitlines() if line.startswith("shop")]
    assert "production" in shop_lines[0]
    assert "staging" in shop_lines[1]
    assert "Deployed successfully" in ran.stdout
    assert "Impaired" in ran.stdout
    assert "ago" in ran.stdout


@pytest.mark.parametrize("alias", ["list", "get", "show", "find", "stacks", "LIST"])
def test_every_list_alias_lists(sim: Simulator, igor: Igor, alias: str) -> None:
    ran = igor(alias, "-s", "sho")
    assert ran.exit_code == 0
    assert ran.stdout.count("shop") == 2
    assert "blog" not in ran.stdout


def test_list_filters_by_substring_and_exact_environment(sim: Simulator, igor: Igor) -> None:
    ran = igor("list", "-e", "STAGING", "--stack", "S")
    assert ran.exit_code == 0
    lines = [line for line in ran.stdout.splitlines()[1:] if line.strip()]
    assert [line.split()[0] for line in lines] == ["search", "shop"]
    assert all("staging" in line for line in lines)
    assert igor("list", "-e", "stag").stderr.startswith("No stacks in 'stag'")


def test_list_json_is_plain_and_complete(sim: Simulator, igor: Igor) -> None:
    ran = igor("list", "--json", "-s", "shop")
    assert ran.exit_code == 0
    assert "\x1b[" not in ran.stdout
    stacks = json.loads(ran.stdout)
    assert [(s["name"], s["environment"]) for s in stacks] == [
        ("shop", "production"),
        ("shop", "staging"),
    ]
    assert set(stacks[0]) == {
        "uid", "name", "environment", "status", "status_text",
        "health", "health_text", "busy", "maintenance_mode", "last_activity", "dashboard_url",
        "deployments_read", "live_deployment", "last_deploy",
    }  # fmt: skip
    assert stacks[0]["status_text"] == "Deployed successfully"
    assert stacks[0]["busy"] is False


def test_list_reads_every_page(sim: Simulator, igor: Igor) -> None:
    sim.add_stacks(75)
    ran = igor("list", "--json")
    assert len(json.loads(ran.stdout)) == 75 + 7
    assert sim.count("GET", "/stacks") == 3


# -- deploy -----------------------------------------------------------------


def test_deploy_starts_and_tags_the_deployment(sim: Simulator, igor: Igor) -> None:
    ran = igor("deploy", "-s", "blog")
    assert ran.exit_code == 0
    assert "Deploy started: blog (production)." in ran.stdout
    assert "Follow it: `igor watch -s blog -e production`" in ran.stderr
    assert deploy_posts(sim) == 1
    posted = next(r for r in sim.requests if r.method == "POST")
    assert posted.body["user_reference"].startswith("igor:cli:")
    assert "@" in posted.body["user_reference"]
    assert igor("list", "-s", "blog").stdout.count("Deploying") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["deploy", "-s", "shop", "-e", "production"],
        ["deploy", "-e", "production", "-s", "shop"],
        ["redeploy", "--environment", "Production", "--stack", "SHOP"],
        ["deploy", "-w", "false", "-s", "shop", "-e", "production"],
    ],
)
def test_option_order_and_aliases_do_not_matter(
    sim: Simulator, igor: Igor, args: list[str]
) -> None:
    ran = igor(*args)
    assert ran.exit_code == 0, ran.output
    assert "Deploy started: shop (production)." in ran.stdout
    assert deploy_posts(sim) == 1


def test_deploy_services_are_checked_and_sent(sim: Simulator, igor: Igor) -> None:
    ran = igor("deploy", "-s", "api", "-v", "web:1.2", "-v", "worker,web:1.2")
    assert ran.exit_code == 0, ran.output
    posted = next(r for r in sim.requests if r.method == "POST")
    assert posted.body["services"] == "web:1.2,worker"


def test_deploy_unknown_service_posts_nothing(sim: Simulator, igor: Igor) -> None:
    ran = igor("deploy", "-s", "api", "-v", "db")
    assert ran.exit_code == 1
    assert "no service named db" in ran.stderr
    assert "web, worker" in ran.stderr
    assert deploy_posts(sim) == 0


def test_deploy_ambiguous_name_lists_environments(sim: Simulator, igor: Igor) -> None:
    ran = igor("deploy", "-s", "shop")
    assert ran.exit_code == 1
    assert "2 stacks named 'shop' (production, staging)" in ran.stderr
    assert "-e production" in ran.stderr
    assert deploy_posts(sim) == 0


def test_deploy_unknown_stack_suggests_close_names(sim: Simulator, igor: Igor) -> None:
    ran = igor("deploy", "-s", "shpo", "-e", "production")
    assert ran.exit_code == 1
    assert "No stack named 'shpo'" in ran.stderr
    assert "Did you mean 'shop'?" in ran.stderr
    assert "Traceback" not in ran.output
    assert deploy_posts(sim) == 0


def test_deploy_is_exact_not_substring(sim: Simulator, igor: Igor) -> None:
    ran = igor("deploy", "-s", "sho", "-e", "production")
    assert ran.exit_code == 1
    assert deploy_posts(sim) == 0


def test_deploy_wrong_environment_says_where_the_stack_is(sim: Simulator, igor: Igor) -> None:
    ran = igor("deploy", "-s", "blog", "-e", "staging")
    assert ran.exit_code == 1
    assert "no 'staging' environment; it is in: production" in ran.stderr


def test_second_deploy_while_igor_deploys_is_refused(sim: Simulator, igor: Igor) -> None:
    assert igor("deploy", "-s", "blog").exit_code == 0
    ran = igor("deploy", "-s", "blog")
    assert ran.exit_code == 1
    # A refusal (exit 1) is said on stderr, as gh says it: stdout carries results only.
    assert "already deploying, started by" in ran.stderr
    assert "Nothing was posted" in ran.stderr
    assert ran.stdout == ""
    assert deploy_posts(sim) == 1


def test_deploy_behind_a_foreign_deployment_is_queued(sim: Simulator, igor: Igor) -> None:
    sim.start_foreign_deployment("blog", "production", triggered_by="dana@example.com")
    ran = igor("deploy", "-s", "blog")
    assert ran.exit_code == 0
    assert "started by dana@example.com" in ran.stdout
    assert "queued behind the running deployment" in ran.stdout
    assert deploy_posts(sim) == 1


@pytest.mark.parametrize(
    "no_queue", [["-w", "false"], ["-w", "NO"], ["--wait", "0"], ["--no-wait"]]
)
def test_busy_and_wait_false_posts_nothing(sim: Simulator, igor: Igor, no_queue: list[str]) -> None:
    sim.start_foreign_deployment("blog", "production")
    ran = igor("deploy", "-s", "blog", *no_queue)
    assert ran.exit_code == 1
    assert "busy, not queued" in ran.stderr
    assert deploy_posts(sim) == 0


def test_bad_wait_value_is_a_usage_error(sim: Simulator, igor: Igor) -> None:
    ran = igor("deploy", "-s", "blog", "-w", "maybe")
    assert ran.exit_code == 2
    assert "Usage: igor deploy" in ran.stderr
    assert "'maybe' is not true or false" in ran.stderr
    assert sim.requests == []


def test_dry_run_checks_everything_and_posts_nothing(sim: Simulator, igor: Igor) -> None:
    ran = igor("deploy", "-s", "api", "-v", "web", "--dry-run")
    assert ran.exit_code == 0
    assert "Dry run: a deploy of api (production) (services web) would start now" in ran.stdout
    assert sim.count("GET", "/services") == 1
    assert deploy_posts(sim) == 0
    sim.start_foreign_deployment("blog", "production")
    assert "would be queued" in igor("deploy", "-s", "blog", "--dry-run").stdout
    assert deploy_posts(sim) == 0


def test_deploy_json(sim: Simulator, igor: Igor) -> None:
    ran = igor("deploy", "-s", "blog", "--json")
    outcome = json.loads(ran.stdout)
    assert outcome["result"] == "started"
    assert outcome["posted"] is True
    assert outcome["stack"]["name"] == "blog"
    assert outcome["async_action_id"]


def test_follow_exits_0_when_the_deployment_succeeds(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    ran = igor("deploy", "-s", "blog", "--follow")
    assert ran.exit_code == 0, ran.output
    assert "Deployed blog (production) in" in ran.stdout
    assert "Follow it:" not in ran.output  # it is being watched
    assert sum(clock.slept) >= 60  # simulated, not real, seconds
    assert sum("/actions/" in r.path for r in sim.requests) >= 2


def test_follow_exits_1_when_the_deployment_fails(sim: Simulator, igor: Igor) -> None:
    ran = igor("deploy", "-s", "legacy", "--follow")
    assert ran.exit_code == 1
    assert "Deployment of legacy (production) failed" in ran.stdout


# -- cancel -----------------------------------------------------------------


@pytest.mark.parametrize("alias", ["cancel", "stop", "halt"])
def test_cancel_deletes_the_live_deployment(sim: Simulator, igor: Igor, alias: str) -> None:
    igor("deploy", "-s", "blog")
    ran = igor(alias, "-s", "blog")
    assert ran.exit_code == 0
    assert "Cancelling deployment" in ran.stdout
    assert "of blog (production) (started by" in ran.stdout
    assert sim.count("DELETE") == 1


def test_cancel_twice_says_already_cancelling(sim: Simulator, igor: Igor) -> None:
    igor("deploy", "-s", "blog")
    igor("cancel", "-s", "blog")
    ran = igor("cancel", "-s", "blog")
    assert ran.exit_code == 0
    assert "is already cancelling" in ran.stdout
    assert sim.count("DELETE") == 2


def test_cancel_with_nothing_deploying(sim: Simulator, igor: Igor) -> None:
    ran = igor("cancel", "-s", "blog")
    assert ran.exit_code == 1
    assert "blog (production) is not deploying, nothing to cancel." in ran.stderr
    assert ran.stdout == ""
    assert sim.count("DELETE") == 0


def test_cancel_json(sim: Simulator, igor: Igor) -> None:
    sim.start_foreign_deployment("blog", "production", triggered_by="dana@example.com")
    outcome = json.loads(igor("cancel", "-s", "blog", "--json").stdout)
    assert outcome["result"] == "cancelling"
    assert outcome["triggered_by"] == "dana@example.com"


# -- failures ---------------------------------------------------------------


def test_missing_token_says_how_to_provide_one(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IGOR_CLOUD66_TOKEN")
    ran = igor("list")
    assert ran.exit_code == 4
    assert "IGOR_CLOUD66_TOKEN" in ran.stderr
    assert "igor register" in ran.stderr
    assert sim.requests == []


def test_rejected_token(sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IGOR_CLOUD66_TOKEN", "wrong-token-4242")
    ran = igor("deploy", "-s", "blog")
    assert ran.exit_code == 4
    assert "Cloud 66 rejected the token" in ran.stderr
    assert "wrong-token-4242" not in ran.output
    assert deploy_posts(sim) == 0


def test_unreachable(igor: Igor, monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> None:
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("IGOR_API_URL", f"http://127.0.0.1:{port}/api/3")
    monkeypatch.setenv("IGOR_CLOUD66_TOKEN", "x")
    ran = igor("list")
    assert ran.exit_code == 5
    assert "could not be reached" in ran.stderr
    assert "Traceback" not in ran.output


def test_throttled_is_final_until_the_hour(sim: Simulator, igor: Igor, clock: FakeClock) -> None:
    # Cloud 66's throttle lasts until the next hourly interval: retrying only spends time.
    sim.fail_next(503, count=20, body={"error": "throttled", "error_description": "slow down"})
    ran = igor("list")
    assert ran.exit_code == 5
    assert "resets at" in ran.stderr
    assert sim.count("GET", "/stacks") == 1
    assert clock.slept == []


def test_retry_on_503_then_success_honours_retry_after(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    unavailable = {"error": "service_unavailable", "error_description": "down for a moment"}
    sim.fail_next(503, count=2, headers={"Retry-After": "7"}, body=unavailable)
    ran = igor("list")
    assert ran.exit_code == 0
    assert sim.count("GET", "/stacks") == 3
    assert clock.slept == [7.0, 7.0]


def test_a_failed_deploy_post_is_never_retried(sim: Simulator, igor: Igor) -> None:
    sim.fail_next(503, count=5, method="POST")
    ran = igor("deploy", "-s", "blog")
    assert ran.exit_code == 5
    assert deploy_posts(sim) == 1


def test_an_unanswered_deploy_is_reported_as_unknown_not_retried(
    sim: Simulator, igor: Igor
) -> None:
    sim.drop_next(1, method="POST")
    ran = igor("deploy", "-s", "blog")
    assert ran.exit_code == 5
    assert "no answer came back: it may or may not have happened" in ran.stderr
    assert "igor list -s" in ran.stderr
    assert deploy_posts(sim) == 1
    # It did happen: a second deploy finds igor's own deployment running.
    assert "already deploying" in igor("deploy", "-s", "blog").stderr
    assert deploy_posts(sim) == 1


def test_an_unanswered_get_is_retried(sim: Simulator, igor: Igor) -> None:
    sim.drop_next(2, method="GET", path_contains="/stacks")
    ran = igor("list")
    assert ran.exit_code == 0
    assert sim.count("GET", "/stacks") == 3


def test_malformed_json_is_a_clear_error(igor: Igor, monkeypatch: pytest.MonkeyPatch) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class NotJson(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>maintenance</html>")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotJson)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("IGOR_API_URL", f"http://127.0.0.1:{server.server_port}/api/3")
        monkeypatch.setenv("IGOR_CLOUD66_TOKEN", "x")
        ran = igor("list")
    finally:
        server.shutdown()
    assert ran.exit_code == 5
    assert "not JSON" in ran.stderr


# -- help and usage ---------------------------------------------------------


def test_help_names_aliases_and_hides_them_from_the_list(igor: Igor) -> None:
    top = igor("-h")
    assert top.exit_code == 0
    listed = [line.split()[0] for line in top.stdout.split("Stacks:")[1].splitlines()[1:4]]
    assert listed == ["list", "deploy", "cancel"]
    for alias in ("redeploy", "halt", "stacks ", "get"):
        assert f"\n  {alias}" not in top.stdout
    assert "Aliases: redeploy." in igor("deploy", "-h").stdout
    assert "Aliases: stop, exit, halt." in igor("halt", "--help").stdout
    assert "Aliases: get, show, find, stacks." in igor("help", "list").stdout


def test_missing_stack_is_a_usage_error(igor: Igor) -> None:
    ran = igor("deploy", "-e", "production")
    assert ran.exit_code == 2
    assert "Missing option '-s' / '--stack'" in ran.stderr


def test_unknown_command_lists_the_commands(igor: Igor) -> None:
    from igor_cli import cli

    ran = igor("deplyo")
    assert ran.exit_code == 2
    # Every command, as `igor -h` groups them: the registry's list, so a new one is in it.
    listed = ", ".join(name for _, names in cli.group().grouped() for name in names)
    assert sorted(listed.split(", ")) == sorted(cli.commands())
    assert listed.startswith("list, deploy, cancel, ") and "serve" in listed
    assert f"Unknown command 'deplyo'. Did you mean deploy? Commands: {listed}." in ran.stderr


def test_version(igor: Igor) -> None:
    from igor_cli import __version__

    assert igor("--version").stdout.strip() == f"igor {__version__}"
    assert igor("version").stdout.strip() == f"igor {__version__}"


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["list", "--json", "-s", "shop"],
        ["deploy", "-s", "blog", "--dry-run", "-w", "false", "-v", "web"],
        ["history", "-s", "shop", "-e", "production", "-n", "3"],
        ["cancel", "-s", "nope", "-h"],
    ],
)
def test_commands_convert_their_options_without_pydantic(sim: Simulator, args: list[str]) -> None:
    import os

    from tests.test_completion import loaded_modules

    code = f"from igor_cli.terminal import main\nprint('exit', main({args!r}))"
    modules = loaded_modules(code, dict(os.environ))
    assert "igor_cli.core.perform" in modules or "-h" in args  # the command really ran
    assert not {m for m in modules if m.split(".")[0] == "pydantic"}


def test_a_bad_option_value_is_still_named_with_its_option(igor: Igor, sim: Simulator) -> None:
    ran = igor("history", "-s", "shop", "-n", "0")
    assert ran.exit_code == 2
    assert "Invalid value for '-n' / '--limit'" in ran.stderr
    ran = igor("history", "-s", "shop", "-n", "x")
    assert ran.exit_code == 2
    assert "Invalid value for '-n' / '--limit'" in ran.stderr
    ran = igor("deploy", "-s", "blog", "-w", "maybe")
    assert ran.exit_code == 2
    assert "Invalid value for '-w' / '--wait': 'maybe' is not true or false." in ran.stderr
    assert sim.count("POST") == 0


def test_parsing_on_many_threads_at_once_finds_every_command() -> None:
    # The bot parses on many threads: the first parses build the group and convert
    # the command while others ask for it ("Unknown command 'list'. Commands: ." before).
    import threading

    from igor_cli import cli

    cli._group.cache_clear()
    start = threading.Barrier(16)
    found: list[str] = []

    def parse() -> None:
        start.wait(5)
        found.append(cli.parse(["list", "-s", "shop"]).command)

    threads = [threading.Thread(target=parse) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert found == ["list"] * 16


def test_a_commands_option_parser_is_built_once_not_at_every_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The bot parses every message (issue 27): click builds a command's parser again at
    # each parse, an object for every option; igor builds it once and copies it.
    from typer._click.parser import _OptionParser

    from igor_cli import cli

    cli.parse(["deploy", "-s", "blog"])
    added: list[object] = []
    original = _OptionParser.add_option

    def counted(self: _OptionParser, *args: object, **kwargs: object) -> None:
        added.append(kwargs.get("opts", args))
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_OptionParser, "add_option", counted)
    first = cli.parse(["deploy", "-s", "shop", "-e", "staging", "--dry-run"])
    second = cli.parse(["deploy", "blog", "-w", "false", "--json", "result"])
    assert added == []
    assert (first.request.stack, first.request.environment) == ("shop", "staging")
    assert first.request.dry_run and first.request.wait and first.request.as_json is None
    assert (second.request.stack, second.request.environment) == ("blog", None)
    assert not second.request.dry_run and not second.request.wait
    assert second.request.as_json.fields == ("result",)


def _every_option_line() -> list[list[str]]:
    """For every command: it alone, its stack named, and each of its options given once
    (a flag alone, an option with a value that may not suit it)."""
    from igor_cli import cli

    root = cli.group()
    lines: list[list[str]] = [["--sandbox"], ["--version"], ["-h"]]
    for name in root.commands:
        command = root.commands[name]
        lines += [[name], [name, "shop"], [name, "-s", "shop", "-e", "production"]]
        for param in command.params:
            for opt in param.opts if param.param_type_name == "option" else ():
                flag = bool(getattr(param, "is_flag", False))
                lines.append([name, "-s", "shop", opt] + ([] if flag else ["2"]))
    return lines


def _parsed(words: list[str], defaults: dict[str, object]) -> object:
    """What `cli.parse` makes of `words`: the request and what it used, or what it raised."""
    from igor_cli import cli

    try:
        parsed = cli.parse(words, lambda: defaults)  # type: ignore[arg-type,return-value]
    except (cli.UsageError, cli.HelpRequested) as raised:
        return type(raised).__name__, raised.format_message()
    return parsed


def test_a_parse_keeping_defaults_reads_every_line_as_click_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The bot parses every message (issue 27): igor keeps what a parameter's default comes
    # to, where click processes each of a command's parameters again at every parse.
    from igor_cli import cli, cli_typer
    from igor_cli.targets import Default

    lines = _every_option_line()
    assert len(lines) > 150  # every option of every command
    settings = [
        {},
        {"stack": Default("shop", "IGOR_STACK"), "environment": Default("staging", "x")},
    ]

    monkeypatch.setattr(cli_typer, "_default_kept", lambda param: None)
    cli._group.cache_clear()  # the group built anew, its parameters as click made them
    as_click = [[_parsed(line, given) for line in lines] for given in settings]
    monkeypatch.undo()
    cli._group.cache_clear()
    processed: list[str] = []
    from typer._click.core import Parameter

    original = Parameter.handle_parse_result

    def counted(param: object, *args: object) -> object:
        processed.append(param.name)  # type: ignore[attr-defined]
        return original(param, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Parameter, "handle_parse_result", counted)
    for _ in range(2):  # the first parse of a line keeps what the second one takes
        for given, click_read in zip(settings, as_click, strict=True):
            processed.clear()
            assert [_parsed(line, given) for line in lines] == click_read
    # Kept defaults were taken: only what was typed, or given some other way, was processed.
    processed.clear()
    cli.parse(["deploy", "-s", "blog", "-e", "production"])
    untyped = {"service", "ref", "profile", "wait", "no_wait", "follow", "dry_run", "reason"}
    assert untyped < {param.name for param in cli.group().commands["deploy"].params}
    assert {"stack", "environment"} <= set(processed)
    assert not set(processed) & untyped
    cli._group.cache_clear()


@pytest.mark.parametrize(
    ("words", "said"),
    [
        (["deploy", "--stak", "x"], "No such option: --stak (Possible options: --stack)"),
        (["deploy", "-x"], "No such option: -x"),
        (["list", "--bogus"], "No such option: --bogus"),
    ],
)
def test_an_unknown_option_is_named_with_its_suggestion_as_click_says_it(
    words: list[str], said: str
) -> None:
    # Suggestions are made only for what is shown (a long option), never for `-s` read as one.
    from igor_cli import cli

    with pytest.raises(cli.UsageError) as raised:
        cli.parse(words)
    assert raised.value.format_message() == said


# -- issue 26 item 8: --json [FIELDS] and --jq, as in gh -------------------------------


def test_json_takes_a_field_list_not_a_stack_filter(sim: Simulator, igor: Igor) -> None:
    ran = igor("list", "--json", "name")
    assert ran.exit_code == 0, ran.output
    listed = json.loads(ran.stdout)
    assert len(listed) == 7 and all(set(stack) == {"name"} for stack in listed)
    ran = igor("list", "shop", "--json", "name,status")  # the filter comes first, or with -s
    assert json.loads(ran.stdout) == [{"name": "shop", "status": 1}] * 2
    every = json.loads(igor("list", "--json").stdout)  # alone: every field, as before
    assert {"uid", "name", "status_text", "last_deploy"} <= set(every[0])
    assert json.loads(igor("list", "--json=name", "-e", "staging").stdout) == [
        {"name": "search"},
        {"name": "shop"},
    ]


def test_an_unknown_json_field_is_a_usage_error_naming_the_valid_ones(
    sim: Simulator, igor: Igor
) -> None:
    ran = igor("deploy", "-s", "blog", "--json", "name,nosuch")
    assert ran.exit_code == 2
    said = " ".join(ran.stderr.split())
    assert "Unknown JSON fields 'name', 'nosuch' for igor deploy." in said
    assert "Valid fields: result, stack," in said
    assert json.loads(ran.stdout)["error"] == "usage"
    assert sim.requests == []  # refused before anything was asked, let alone deployed
    history = igor("history", "blog", "--json", "nme")
    assert history.exit_code == 2 and "Valid fields: id, started_at," in history.stderr


def test_jq_filters_the_json_with_jqs_language(sim: Simulator, igor: Igor) -> None:
    ran = igor("list", "--jq", '.[] | select(.environment == "staging") | .name')
    assert ran.exit_code == 0, ran.output
    assert ran.stdout == "search\nshop\n"  # strings raw, as gh and `jq -r` print them
    ran = igor("history", "shop", "-e", "production", "--json", "id,outcome", "--jq", ".[0]")
    first = json.loads(ran.stdout)
    assert set(first) == {"id", "outcome"} and isinstance(first["id"], int)
    assert igor("list", "--jq", "length").stdout == "7\n"
    bad = igor("deploy", "-s", "blog", "--jq", ".[")
    assert bad.exit_code == 2
    assert "--jq: syntax error" in bad.stderr
    assert bad.stdout == ""  # with --jq, stdout is the filter's: no error object there
    assert sim.count("POST") == 0


def test_followed_events_keep_their_name_and_the_fields_asked_for(
    sim: Simulator, igor: Igor
) -> None:
    ran = igor("deploy", "-s", "blog", "--follow", "--json", "state,deployment_id")
    assert ran.exit_code == 0, ran.output
    events = [json.loads(line) for line in ran.stdout.splitlines()]
    assert events[0] == {"event": "deploy"}  # its answer has neither field
    assert all(set(e) <= {"event", "state", "deployment_id"} for e in events)
    assert events[-1]["event"] == "finished" and events[-1]["state"] == "succeeded"
    states = igor("watch", "-s", "blog", "--jq", ".event")
    assert states.stdout.splitlines()[0] == "watch"


def test_chat_takes_the_same_json_options(sim: Simulator, igor: Igor) -> None:
    ran = igor("chat", input="list --json name -e staging\nlist --jq .[0].name\n")
    assert '"name": "search"' in ran.stdout and '"uid"' not in ran.stdout
    assert "you> api\n" in ran.stdout  # the filter's string, raw
