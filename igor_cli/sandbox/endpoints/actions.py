"""A stack's async actions: run a stack action (`POST /stacks/{id}/actions`, scope
`redeploy`) and what each command does; list and read the actions (scope `public`).

Source: the docs' "Run Stack action" (developers.cloud66.com and help-api,
`_stacks.md`): `command` is required; `maintenance_mode` takes `value` (1 to enable,
0 to disable); `service_restart`, `service_pause` and `service_resume` take
`service_name` (they act on a service's containers: docker stacks only); the answer
is the async action started (the sample: `finished_at` null). The Go client's
`InvokeStackAction` and `InvokeServiceAction` (stack.go, service.go) post the same.

What the docs leave open, the simulator reads conservatively, and igor depends on
none of it:
- the words of a 400 (a command it does not know, a service the stack does not
  have, a service command on a classic stack, a missing or wrong parameter): the Go
  client's error shape, the simulator's own words;
- when a stack's `maintenance_mode` changes: when the action ends (successfully),
  not when it is asked;
- how long an action runs (`Simulator(action_seconds=...)`) and its
  `finished_message` ("Completed successfully", as the 2024 sample's; on a stack
  set failing, "Action failed", the simulator's own words: records.py).
"""

from __future__ import annotations

from typing import Any

from igor_cli.sandbox.payloads import render_action
from igor_cli.sandbox.records import SandboxError, Stack
from igor_cli.sandbox.routes import Call, Reply, endpoint

# command -> the parameters the docs' table requires of it. Those igor does not use are
# accepted as documented and simply run (the simulator does nothing more for them).
COMMANDS: dict[str, tuple[str, ...]] = {
    "restart": (),
    "clear_caches": (),
    "maintenance_mode": ("value",),
    "service_restart": ("service_name",),
    "service_pause": ("service_name",),
    "service_resume": ("service_name",),
    "container_restart": ("container",),
    "process_pause": (),
    "process_restart": (),
    "process_resume": (),
    "disable_replication_slave_db": ("server", "server_group"),
    "promote_slave_db": ("server", "server_group"),
    "resync_slave_db": ("server", "server_group"),
}
SERVICE_COMMANDS = frozenset({"service_restart", "service_pause", "service_resume"})


@endpoint("POST", "/stacks/{uid}/actions", scope="redeploy", answers="stack_action")
def run(call: Call) -> Reply:
    """Start a stack action; it ends `action_seconds` later."""
    stack = call.stack
    command, given = checked(stack, call.params)
    # When the stack's maintenance mode changes: when the action ends (successfully).
    sets = {"maintenance_mode": given["value"] == "1"} if command == "maintenance_mode" else None
    action = call.state.start_action(
        stack, command, given, now=call.now, seconds=call.sim.action_seconds, sets=sets
    )
    # The "Run Stack action" sample answers the action's own fields, nothing more.
    return call.one(render_action(action))


@endpoint("GET", "/stacks/{uid}/actions", scope="public", answers="action")
def actions(call: Call) -> Reply:
    """A page of the stack's actions, those with a `user_reference` when one is asked."""
    uid, order = call.stack.uid, call.sim.order
    # Unconfirmed: an empty `user_reference` filters nothing (Rails' `present?`).
    reference = call.text("user_reference") or None
    return call.paged(lambda window: call.state.list_actions(uid, order, reference, window=window))


@endpoint("GET", "/stacks/{uid}/actions/{id}", scope="public", answers="action")
def action(call: Call) -> Reply:
    """One action."""
    return call.one(call.state.get_action(call.stack.uid, call.number("id", "Action")))


def checked(stack: Stack, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The command and its parameters, when the docs allow them on this stack; else a 400."""
    command = str(params.get("command") or "").strip()
    if not command:
        raise SandboxError(400, "bad_request", "command is required")
    if command not in COMMANDS:
        raise SandboxError(400, "bad_request", f"unknown command '{command}'")
    given = {name: params.get(name) for name in COMMANDS[command]}
    missing = [name for name, value in given.items() if value in (None, "")]
    if missing:
        raise SandboxError(400, "bad_request", f"{', '.join(missing)} is required for {command}")
    if command == "maintenance_mode" and str(given["value"]).strip() not in ("0", "1"):
        raise SandboxError(400, "bad_request", "value must be 1 (enable) or 0 (disable)")
    if command in SERVICE_COMMANDS:
        if not stack.is_docker:
            raise SandboxError(400, "bad_request", f"{command} applies to docker stacks only")
        name = str(given["service_name"]).strip()
        if name not in {str(s["name"]) for s in stack.services}:
            raise SandboxError(400, "bad_request", f"service '{name}' not found")
    return command, {name: str(value).strip() for name, value in given.items()}
