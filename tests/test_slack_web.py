"""igor's Slack Web API client (igor_cli/chat/slack/web.py) against a scripted origin on
loopback: one kept-alive connection for a bot's posts, the wire as slack_sdk sends it,
Slack's refusals as slack_sdk's `SlackApiError`, and a post never sent twice."""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_sdk.errors import SlackApiError

from igor_cli import http
from igor_cli.chat.slack.delivery import Delivery, Place, ResponseUrl
from igor_cli.chat.slack.web import SlackUnreachable, SlackWeb, retry_after
from igor_cli.render.slack import SlackMessage
from tests.fakes.web import Answer, Origin, Seen, free_port

TOKEN = "xoxb-secret-bot-token-4242"
POSTED = json.dumps({"ok": True, "channel": "C0DEPLOY", "ts": "1.000100"}).encode()


def slack(seen: Seen) -> Answer:
    return Answer(body=POSTED, headers={"Content-Type": "application/json; charset=utf-8"})


def web(origin: Origin) -> SlackWeb:
    return SlackWeb(TOKEN, origin.url.replace("/api/3", "/api/"))


def test_posts_in_turn_share_one_kept_alive_connection_with_the_token_as_a_bearer() -> None:
    with Origin(slack) as origin:
        client = web(origin)
        for n in range(3):
            answer = client.call("chat.postMessage", channel="C0DEPLOY", text=f"hi {n}")
            assert answer["ts"] == "1.000100"
        seen = origin.seen
        client.close()
    assert [s.path for s in seen] == ["/api/chat.postMessage"] * 3
    assert len({s.connection for s in seen}) == 1 and [s.nth for s in seen] == [1, 2, 3]
    assert {s.headers["authorization"] for s in seen} == {f"Bearer {TOKEN}"}


def test_the_wire_is_as_slack_sdk_sends_it_json_for_chat_and_a_form_for_the_rest() -> None:
    with Origin(slack) as origin:
        client = web(origin)
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*shop*"}}]
        client.call("chat.postMessage", channel="C0DEPLOY", thread_ts=None, text="t", blocks=blocks)
        client.call("conversations.replies", channel="C0DEPLOY", ts="1.2", inclusive=True, limit=2)
        client.call("apps.connections.open", token="xapp-the-app-token")
        chat, replies, opened = origin.seen
        client.close()
    assert chat.headers["content-type"] == "application/json;charset=utf-8"
    assert json.loads(chat.body) == {"channel": "C0DEPLOY", "text": "t", "blocks": blocks}
    assert replies.headers["content-type"] == "application/x-www-form-urlencoded"
    form = parse_qs(replies.body.decode())
    assert form == {"channel": ["C0DEPLOY"], "ts": ["1.2"], "inclusive": ["1"], "limit": ["2"]}
    assert opened.headers["authorization"] == "Bearer xapp-the-app-token"  # that call's token


def test_a_refusal_is_slack_sdks_error_and_a_429_says_how_long_to_wait() -> None:
    def refuse(seen: Seen) -> Answer:
        if seen.path.endswith("chat.update"):
            limited = json.dumps({"ok": False, "error": "ratelimited"}).encode()
            return Answer(status=429, body=limited, headers={"Retry-After": "7"})
        return Answer(body=json.dumps({"ok": False, "error": "channel_not_found"}).encode())

    with Origin(refuse) as origin:
        client = web(origin)
        with pytest.raises(SlackApiError) as refused:
            client.call("chat.postMessage", channel="C0GONE", text="hi")
        with pytest.raises(SlackApiError) as limited:
            client.call("chat.update", channel="C0DEPLOY", ts="1.2", text="hi")
        client.close()
    assert refused.value.response["error"] == "channel_not_found"
    assert refused.value.response.status_code == 200
    assert limited.value.response.status_code == 429
    assert retry_after(limited.value.response.headers) == 7.0


def test_an_answer_that_is_not_slacks_json_is_a_refusal_naming_the_status() -> None:
    def gateway(seen: Seen) -> Answer:
        return Answer(status=502, body=b"<html>Bad Gateway</html>")

    with Origin(gateway) as origin:
        client = web(origin)
        with pytest.raises(SlackApiError) as refused:
            client.call("chat.postMessage", channel="C0DEPLOY", text="hi")
        client.close()
    assert refused.value.response["error"] == "HTTP 502"


def test_a_post_dropped_on_a_kept_alive_connection_is_not_sent_again() -> None:
    # The server closes the kept-alive connection as the second post arrives: whether
    # Slack took it is not known, so it is said, never posted a second time.
    def second_dropped(seen: Seen) -> Answer:
        return Answer(then="drop") if seen.nth > 1 else slack(seen)

    with Origin(second_dropped) as origin:
        client = web(origin)
        client.call("chat.postMessage", channel="C0DEPLOY", text="first")
        with pytest.raises(SlackUnreachable) as lost:
            client.call("chat.postMessage", channel="C0DEPLOY", text="second")
        seen = origin.seen
        client.close()
    assert [json.loads(s.body)["text"] for s in seen] == ["first", "second"]
    assert lost.value.sent
    assert lost.value.words in ("connection closed before a full answer", "connection reset")


def test_a_reply_that_may_have_arrived_is_not_sent_again_by_direct_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Sent, and the connection dropped before the answer: Slack may show it in the
    # channel already. A direct message "I could not answer in #deploys" would tell the
    # requester twice; it is said in the log instead, not counted as lost.
    def dropped(seen: Seen) -> Answer:
        return Answer(then="drop")

    with Origin(dropped) as origin:
        delivery = Delivery(web(origin), threading.Event())
        place = Place("C0DEPLOY", "1.000100", "U0ALICE")
        delivery.post(place, SlackMessage("Deploy started: shop (production)."))
        delivery.ephemeral(place, "Only U0BOB can confirm this.")
        delivery.wait_idle(10)
        delivery.stop()
        seen = origin.seen
    assert [json.loads(s.body)["channel"] for s in seen] == ["C0DEPLOY", "C0DEPLOY"]
    assert delivery.lost == 0
    unsure = [r.getMessage() for r in caplog.records if "may have arrived" in r.getMessage()]
    assert len(unsure) == 2 and "U0ALICE" in unsure[0]


def test_a_slash_commands_reply_that_may_have_arrived_is_not_posted_again() -> None:
    # The same for a reply through the response_url: sent, no answer, so no post follows.
    def dropped(seen: Seen) -> Answer:
        return Answer(then="drop")

    with Origin(dropped) as origin:
        delivery = Delivery(web(origin), threading.Event())
        url = ResponseUrl(origin.url.replace("/api/3", "/commands/T0/1/respond"))
        place = Place("C0DEPLOY", "", "U0ALICE", response_url=url, answer_by_url=True)
        delivery.post(place, SlackMessage("Deploy started: shop (production)."))
        delivery.wait_idle(10)
        delivery.stop()
        seen = origin.seen
    assert [s.path for s in seen] == ["/commands/T0/1/respond"]
    assert delivery.lost == 0


def test_a_post_goes_on_a_fresh_connection_once_the_kept_one_idled_too_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http, "CHANGE_REUSE_SECONDS", 0.0)  # every kept one is too old
    with Origin(slack) as origin:
        client = web(origin)
        for _ in range(2):
            client.call("chat.postMessage", channel="C0DEPLOY", text="hi")
        seen = origin.seen
        client.close()
    assert len({s.connection for s in seen}) == 2 and [s.nth for s in seen] == [1, 1]


def test_slack_unreachable_is_tried_once_more_and_said_in_words() -> None:
    with free_port() as port:
        client = SlackWeb(TOKEN, f"http://127.0.0.1:{port}/api/")
        with pytest.raises(SlackUnreachable) as unreachable:
            client.call("chat.postMessage", channel="C0DEPLOY", text="hi")
    assert not unreachable.value.sent
    assert unreachable.value.words == "connection refused"
    assert isinstance(unreachable.value, OSError)  # what igor's callers catch
    shown = f"{unreachable.value} {unreachable.value!r} {client!r}"
    assert TOKEN not in shown


def test_a_response_url_gets_json_without_the_token_and_its_status_is_returned() -> None:
    def hook(seen: Seen) -> Answer:
        return Answer(status=404 if seen.path.endswith("/gone") else 200, body=b"ok")

    with Origin(hook) as origin:
        client = web(origin)
        base = origin.url.replace("/api/3", "/response")
        said: dict[str, Any] = {"text": "done", "response_type": "in_channel", "blocks": None}
        assert client.respond(base + "/T1/2/abc", said) == 200
        assert client.respond(base + "/gone", said) == 404
        first = origin.seen[0]
        client.close()
    assert json.loads(first.body) == {"text": "done", "response_type": "in_channel"}
    assert "authorization" not in first.headers
