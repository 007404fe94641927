"""A stack's deployments (the docs' `_deployments.md`): list and read them (scope
`public`), redeploy and cancel (scope `redeploy`). What a deployment does over time is
`state.py`'s."""

from __future__ import annotations

from igor_cli.sandbox.routes import Call, Reply, endpoint


@endpoint("GET", "/stacks/{uid}/deployments", scope="public", answers="deployment")
def deployments(call: Call) -> Reply:
    """A page of the stack's deployments, in the order the simulator is set to."""
    uid, sim = call.stack.uid, call.sim
    return call.paged(
        lambda window: call.state.list_deployments(uid, sim.order, words=sim.words, window=window)
    )


@endpoint("GET", "/stacks/{uid}/deployments/{id}", scope="public", answers="deployment")
def deployment(call: Call) -> Reply:
    """One deployment."""
    wanted = call.number("id", "Deployment")
    return call.one(call.state.get_deployment(call.stack.uid, wanted, call.sim.words))


@endpoint("POST", "/stacks/{uid}/deployments", scope="redeploy", answers="redeploy")
def redeploy(call: Call) -> Reply:
    """Deploy the stack, or queue the deployment behind the one that runs."""
    _, action, queued = call.state.deploy(
        call.stack.uid,
        now=call.now,
        services=call.text("services"),
        git_ref=call.text("git_ref"),
        user_reference=call.text("user_reference"),
        deployment_profile=call.text("deployment_profile"),
    )
    # The documented answer's words; `queued` says whether it waits behind another.
    return call.one(
        {
            "ok": True,
            "message": "Stack queued for redeployment",
            "async_action_id": action.id,
            "queued": queued,
        }
    )


@endpoint("DELETE", "/stacks/{uid}/deployments/{id}", scope="redeploy", answers="cancel")
def cancel(call: Call) -> Reply:
    """Cancel a live deployment (or drop a queued one)."""
    call.state.cancel(call.stack.uid, call.number("id", "Deployment"), call.now)
    return call.one({"ok": True, "message": "Cancelling deployment"})
