"""Where every field the simulator emits comes from: a Cloud 66 doc sample or the Go client.

The simulator answers only with fields some source shows (`documented`). The kinds of
answer are named here; an endpoint module under `sandbox/endpoints/` may name the
sources of a kind of its own next to its route (`name_sources`). A few it
can also emit, off by default, for a test that says why it turns one on
(`Simulator(undocumented=...)`): igor must never depend on one of those.

Sources (the commits these were read at are in tests/fixtures/cloud66_docs/SOURCES.json):
- DOCS_2024: github.com/cloud-66-internal/developers.cloud66.com, source/includes/
- DOCS_2020: github.com/cloud66/help-api, source/includes/
- GO: github.com/cloud66-oss/cloud66, the official Go client
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

DOCS_2024 = "developers.cloud66.com"
DOCS_2020 = "help-api"
GO = "cloud66-oss/cloud66"

_STACK_SAMPLE = f"{DOCS_2024} and {DOCS_2020} _stacks.md, Stack List and Stack samples"
_STACK_TABLE = f"{DOCS_2024} _stacks.md, The stack object"
_DEPLOYMENTS = f"{DOCS_2024} and {DOCS_2020} _deployments.md, Deployment list sample"
_ACTIONS = f"{DOCS_2024} and {DOCS_2020} _stacks.md, Stack Action list sample"
_ACTIONS_2024 = f"{DOCS_2024} _stacks.md, Stack Action list sample (not the 2020 one)"
_SERVICES = f"{DOCS_2024} and {DOCS_2020} _services.md, Services list sample"
_ACCOUNTS = f"{DOCS_2024} and {DOCS_2020} _accounts.md, Accounts list sample"
_PAGINATION = "every list sample of both docs (`response`, `count`, `pagination`)"

_STACK_KEYS = (
    "uid", "name", "git", "git_branch", "environment", "cloud", "fqdn", "language",
    "framework", "status", "health", "last_activity", "last_activity_iso", "maintenance_mode",
    "has_loadbalancer", "created_at", "updated_at", "deploy_directory", "cloud_status",
    "created_at_iso", "updated_at_iso", "redeploy_hook",
)  # fmt: skip
_DEPLOYMENT_KEYS = (
    "id", "triggered_by", "triggered_via", "started_at", "finished_at", "outcome", "git_hash",
    "deploy_session", "deploy_type", "is_head", "is_live", "reverted", "reverted_by",
    "reverted_at", "is_deploying", "commit_url",
)  # fmt: skip
_ACTION_KEYS = (
    "id", "user", "resource_type", "action", "resource_id", "started_via", "started_at",
    "finished_at", "finished_success", "finished_message",
)  # fmt: skip
_CONTAINER_KEYS = (
    "uid", "server_uid", "server_name", "service_name", "image", "port_list", "command",
    "started_at", "web_ports", "created_at", "updated_at",
)  # fmt: skip

# kind -> field -> where it is shown. The values the simulator gives are its own
# (a sample shows one value; README says which meanings igor cannot confirm).
FIELDS: dict[str, dict[str, str]] = {
    "stack": {
        **dict.fromkeys(_STACK_KEYS, f"{_STACK_SAMPLE}; {_STACK_TABLE}"),
        "account_id": f"{GO} stack.go, Stack.AccountId",
    },
    "deployment": dict.fromkeys(_DEPLOYMENT_KEYS, _DEPLOYMENTS),
    "action": {
        **dict.fromkeys(_ACTION_KEYS, f"{_ACTIONS}; {GO} async.go, AsyncResult"),
        "finished_result": _ACTIONS_2024,
        "metadata": _ACTIONS_2024,
    },
    "action.metadata": {
        "user_reference": f"{_ACTIONS_2024}; {DOCS_2024} _deployments.md, Redeploy parameters",
    },
    "service": {
        "name": _SERVICES,
        "containers": _SERVICES,
        **dict.fromkeys(("source_type", "image_name", "image_tag"), f"{GO} service.go, Service"),
    },
    "container": dict.fromkeys(_CONTAINER_KEYS, _SERVICES),
    "account": {
        **dict.fromkeys(
            ("id", "owner", "created_at_iso", "updated_at_iso", "stack_count", "used_clouds"),
            _ACCOUNTS,
        ),
        "friendly_name": f"{GO} account.go, Account.Name",
    },
    "redeploy": {
        "ok": f"{DOCS_2024} and {DOCS_2020} _deployments.md, Redeploy sample",
        "message": f"{DOCS_2024} and {DOCS_2020} _deployments.md, Redeploy sample",
        "async_action_id": f"{DOCS_2024} _deployments.md, Redeploy sample; {GO} stack.go",
        "queued": f"{DOCS_2024} _deployments.md, Redeploy sample; {GO} stack.go",
    },
    "stack_action": dict.fromkeys(
        _ACTION_KEYS, f"{DOCS_2024} and {DOCS_2020} _stacks.md, Run Stack action sample"
    ),
    "cancel": dict.fromkeys(
        ("ok", "message"), f"{DOCS_2024} and {DOCS_2020} _deployments.md, Cancel deployment"
    ),
    "error": dict.fromkeys(
        ("error", "error_description", "details"), f"{GO} cloud66.go, errorResp"
    ),
    "list": dict.fromkeys(("response", "count", "pagination"), _PAGINATION),
    "pagination": {
        **dict.fromkeys(("previous", "next", "current", "per_page", "count", "pages"), _PAGINATION),
        # Not in either doc: some clients' samples call it `prev`; served only when a
        # test asks for that style, to check igor reads both.
        "prev": "no doc: Simulator(pagination_style='prev') only",
    },
}


def name_sources(kind: str, fields: Mapping[str, str]) -> None:
    """Add a kind of answer to FIELDS, with where each of its fields is shown: an endpoint
    module's own kind (`routes.endpoint(..., sources_of=...)`), named next to its route."""
    named = {field: where.strip() for field, where in fields.items()}
    if not named or not all(named.values()):
        raise TypeError(f"{kind!r}: name where each field is shown (a doc sample, the Go client)")
    if FIELDS.get(kind, named) != named:
        raise TypeError(f"the sources of {kind!r} are named twice, differently")
    FIELDS[kind] = named


# "kind.field" -> why the simulator can emit it at all. Off unless a test turns it on.
UNDOCUMENTED: dict[str, str] = {
    "stack.is_busy": "no source shows it; igor reads it when present and must not need it",
    "stack.backend": (
        f"{GO} stack.go has the field but no source shows its values; a test shows that "
        "igor decides docker-ness from `framework`, not from it"
    ),
    "deployment.git_ref": "no source: what a deployment was asked to deploy",
    "deployment.services": "no source: the image tags a docker deployment ran",
    "deployment.deployment_profile": "no source: the profile a deployment used",
    "action.metadata.deployment_id": "no source: which deployment an action runs",
}


def documented(
    kind: str, payload: Mapping[str, Any], turned_on: Iterable[str] = ()
) -> dict[str, Any]:
    """`payload` with only the fields some source shows for `kind` (and those turned on),
    nested objects (an action's metadata, a service's containers) likewise."""
    fields = FIELDS[kind]
    extra = {name.removeprefix(f"{kind}.") for name in turned_on if name.startswith(f"{kind}.")}
    shown: dict[str, Any] = {}
    for key, value in payload.items():
        if key not in fields and key not in extra:
            continue
        if kind == "action" and key == "metadata" and isinstance(value, Mapping):
            shown[key] = documented("action.metadata", value, turned_on)
        elif kind == "service" and key == "containers" and isinstance(value, list):
            shown[key] = [documented("container", c, turned_on) for c in value]
        else:
            shown[key] = value
    return shown
