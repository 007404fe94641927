"""Stack actions in the simulator: `POST /stacks/{id}/actions` and what each command does.

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
  set failing, "Action failed", the simulator's own words).
"""

from __future__ import annotations

from typing import Any

from igor_cli.sandbox.records import Action, SandboxError, Stack, iso

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
SUCCEEDED = "Completed successfully"  # the 2024 sample's finished_message
FAILED = "Action failed"  # the simulator's own words: no source shows a failed action's


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


def end(stack: Stack, action: Action) -> None:
    """The action is over (at `ends_at`): it succeeds and does what it says, or fails."""
    assert action.ends_at is not None
    action.finished_at = action.ends_at
    action.finished_success = not action.fails
    action.finished_message = FAILED if action.fails else SUCCEEDED
    if action.fails:
        return
    if action.action == "maintenance_mode":
        stack.fields["maintenance_mode"] = (action.params or {}).get("value") == "1"
    # The stack object's `last_activity`: "the last action was performed for the stack".
    stamp = iso(action.ends_at)
    stack.fields.update(last_activity=stamp, last_activity_iso=stamp)
