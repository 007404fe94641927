"""The stacks and their services (the docs' `_stacks.md` and `_services.md`; scope
`public`): `GET /stacks`, `GET /stacks/{uid}`, `GET /stacks/{uid}/services`."""

from __future__ import annotations

from igor_cli.sandbox.routes import Call, Reply, endpoint


@endpoint("GET", "/stacks", scope="public", answers="stack")
def stacks(call: Call) -> Reply:
    """Every stack, a page at a time."""
    # Only the page's stacks are touched: a page costs the same at 30 or 50,000 stacks.
    every = call.state.stacks
    return call.paged(lambda window: (len(every), [s.fields for s in every[window]]))


@endpoint("GET", "/stacks/{uid}", scope="public", answers="stack")
def stack(call: Call) -> Reply:
    """One stack."""
    return call.one(call.stack.fields)


@endpoint("GET", "/stacks/{uid}/services", scope="public", answers="service")
def services(call: Call) -> Reply:
    """A stack's services (none for a stack without containers)."""
    return call.items(call.stack.services)
