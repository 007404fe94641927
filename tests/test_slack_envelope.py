"""Slack's three shapes (a message event, a slash command's form, a click's block_actions)
read into one `SlackRequest` (chat/slack/envelope.py), whichever transport brought them.
The payloads follow Slack's documented examples (api.slack.com/events/app_mention,
/interactivity/slash-commands, /reference/interaction-payloads/block-actions-payload)."""

from __future__ import annotations

from igor_cli.chat.slack.envelope import read_click, read_message, read_slash
from igor_cli.chat.slack.tokens import Identity

IGOR = Identity("U0IGOR", "igor", "Acme", team_id="T0HOME")


def _clock() -> float:
    return 100.0


def test_a_mention_in_a_thread_is_answered_in_that_thread_as_one_post() -> None:
    event = {"type": "app_mention", "user": "U0ALICE", "text": "<@U0IGOR> list", "channel": "C0OPS",
             "ts": "1700000002.000200", "thread_ts": "1700000001.000100"}  # fmt: skip
    request = read_message(event, False, IGOR, "http")
    assert request is not None
    assert (request.transport, request.kind, request.text) == ("http", "message", "list")
    assert (request.user, request.channel, request.team) == ("U0ALICE", "C0OPS", "T0HOME")
    assert request.place.thread == "1700000001.000100"  # the thread, not the post
    assert request.request_id == "C0OPS-1700000002.000200"  # one post: one deploy
    assert request.place.response_url is None and not request.place.answer_by_url


def test_a_message_not_for_igor_reads_as_nothing() -> None:
    ours = {"type": "message", "user": "U0IGOR", "text": "Deploy started", "channel": "D0",
            "channel_type": "im", "ts": "1.0"}  # fmt: skip
    other_bot = {"type": "message", "bot_id": "B0", "user": "U0BOT", "text": "igor list",
                 "channel": "C0", "ts": "1.1"}  # fmt: skip
    chatter = {"type": "message", "user": "U0BOB", "text": "lunch?", "channel": "C0", "ts": "1.2"}
    for event in (ours, other_bot, chatter):
        assert read_message(event, False, IGOR, "socket_mode") is None, event


def test_a_shared_channels_post_without_a_team_has_no_team() -> None:
    event = {"type": "app_mention", "user": "U0EVE", "text": "<@U0IGOR> list",
             "channel": "C0SHARED", "ts": "1.0"}  # fmt: skip
    request = read_message(event, True, IGOR, "socket_mode")
    assert request is not None and request.team is None  # members.py: it does not count


def test_a_slash_command_answers_through_its_response_url() -> None:
    form = {"command": "/igor", "text": "deploy -s shop", "user_id": "U0BOB",
            "channel_id": "C0OPS", "team_id": "T0HOME", "trigger_id": "13345224609.738474920",
            "response_url": "https://hooks.slack.com/commands/1234/5678"}  # fmt: skip
    request = read_slash(form, _clock, "socket_mode")
    assert (request.kind, request.text, request.team) == ("slash", "deploy -s shop", "T0HOME")
    assert request.request_id == "13345224609.738474920"
    place = request.place
    assert place.answer_by_url and place.thread == "" and place.user == "U0BOB"
    assert place.response_url is not None
    assert place.response_url.url == "https://hooks.slack.com/commands/1234/5678"


def test_a_click_names_its_button_its_question_and_the_clicker() -> None:
    shown = {"ts": "1700000003.000300", "text": "Deploy shop to production?", "blocks": []}
    payload = {
        "type": "block_actions",
        "user": {"id": "U0CAROL", "team_id": "T0HOME"},
        "container": {"type": "message", "message_ts": shown["ts"], "channel_id": "C0OPS"},
        "channel": {"id": "C0OPS"},
        "message": shown,
        "response_url": "https://hooks.slack.com/actions/T0/1/2",
        "actions": [{"action_id": "igor_confirm", "value": "signed.value"}],
    }
    request = read_click(payload, _clock, "http")
    assert (request.kind, request.transport, request.team) == ("click", "http", "T0HOME")
    assert (request.user, request.channel, request.ts) == ("U0CAROL", "C0OPS", shown["ts"])
    assert (request.action_id, request.value, request.shown) == ("igor_confirm", "signed.value",
                                                                 shown)  # fmt: skip
    in_thread = request.at("1700000001.000100")  # answered in the question's thread
    assert (in_thread.channel, in_thread.thread, in_thread.user) == (
        "C0OPS", "1700000001.000100", "U0CAROL",
    )  # fmt: skip
    assert in_thread.response_url is request.response_url  # its uses counted once


def test_a_click_without_its_message_falls_back_to_the_channel_payload() -> None:
    payload = {"type": "block_actions", "user": {"id": "U0CAROL"}, "channel": {"id": "C0OPS"},
               "actions": [{"action_id": "igor_decline"}]}  # fmt: skip
    request = read_click(payload, _clock, "socket_mode")
    assert (request.channel, request.team, request.shown, request.value) == (
        "C0OPS", None, None, "",
    )  # fmt: skip
