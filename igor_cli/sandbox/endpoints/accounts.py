"""`GET /accounts` (the docs' `_accounts.md`; scope `users`): the sandbox's one account."""

from __future__ import annotations

from igor_cli.sandbox.routes import Call, Reply, endpoint


@endpoint("GET", "/accounts", scope="users", answers="account")
def accounts(call: Call) -> Reply:
    """The accounts the token belongs to: the sandbox's."""
    return call.items([call.state.account()])
