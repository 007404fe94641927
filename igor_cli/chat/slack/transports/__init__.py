"""How Slack reaches the bot: each transport takes Slack's requests, acks them within
Slack's 3 seconds, and hands their payloads to the one `SlackBot.dispatch`.

`events_http`: the Events API, interactivity and slash commands over HTTP (`igor
serve --http`), behind any load balancer. Socket Mode (socket.py, reader.py) is its
peer, the default.
"""
