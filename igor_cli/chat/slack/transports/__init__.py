"""How Slack reaches the bot: each transport takes Slack's requests, acks them within
Slack's 3 seconds, and hands their payloads to the one `SlackBot.dispatch`.

`socket_mode` (with `socket_reader`, its frame reader): Socket Mode, the default; no
public URL. slack_sdk's private names (its built-in client's internals, which the reader
takes over) are used in these two modules and nowhere else (tests/test_house.py).
`events_http`: the Events API, interactivity and slash commands over HTTP (`igor
serve --http`), behind any load balancer. Both are started and stopped by lifecycle.py.
"""
