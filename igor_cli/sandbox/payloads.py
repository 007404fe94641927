"""How the simulated account reads as Cloud 66's answers: the words, the objects.

`server.py` keeps of these only the fields a source shows (`sources.py`).
"""

from __future__ import annotations

import re
from typing import Any

from igor_cli.sandbox.records import (
    CANCELLED,
    DAY,
    FAILED,
    IN_PROGRESS,
    SUCCESS,
    Action,
    Deployment,
    digest,
    iso,
    tag,
)

# How a deployment's `outcome` and `triggered_via` read, {code, meaning}. The docs'
# sample shows {"code": 1, "meaning": "success"} and {"code": 0, "meaning": "web"};
# other values are unconfirmed. The docs disagree on which half holds the short
# word, so the simulator can also put it in `code` ("web" / "Web Interface",
# "success" / "Successful"): WORDS_IN_CODE. Integer codes for some and string
# codes for others, on purpose: clients must read both halves.
WORDS_IN_MEANING = "meaning"
WORDS_IN_CODE = "code"
_OUTCOME_WORDS: dict[str, dict[str, dict[str, int | str]]] = {
    WORDS_IN_MEANING: {
        IN_PROGRESS: {"code": 0, "meaning": "in progress"},
        SUCCESS: {"code": 1, "meaning": "success"},
        FAILED: {"code": "failed", "meaning": "failed"},
        CANCELLED: {"code": "3", "meaning": "cancelled"},
    },
    WORDS_IN_CODE: {
        IN_PROGRESS: {"code": "deploying", "meaning": "In progress"},
        SUCCESS: {"code": "success", "meaning": "Successful"},
        FAILED: {"code": "failed", "meaning": "Failed"},
        CANCELLED: {"code": "cancelled", "meaning": "Cancelled"},
    },
}
_VIA_WORDS: dict[str, dict[str, dict[str, int | str]]] = {
    WORDS_IN_MEANING: {"api": {"code": 2, "meaning": "api"}, "web": {"code": 0, "meaning": "web"}},
    WORDS_IN_CODE: {
        "api": {"code": "api", "meaning": "API request"},
        "web": {"code": "web", "meaning": "Web Interface"},
    },
}
VIA = tuple(_VIA_WORDS[WORDS_IN_MEANING])  # how a deployment may have been started
FINISHED_MESSAGES = {
    SUCCESS: "Deployment completed successfully",
    FAILED: "Deployment failed",
    CANCELLED: "Deployment cancelled",
}
# The one deploy type the documented sample shows (an object, like outcome and
# triggered_via). Unconfirmed: the codes and meanings of the other deploy types.
_DEPLOY_TYPE = {"code": 0, "meaning": "build"}


def service(stack_name: str, name: str, image: str, replicas: int, now: float) -> dict[str, Any]:
    """A service as `GET /stacks/{uid}/services` shows it (sources.py names each field)."""
    containers = [
        {
            "uid": digest("container", stack_name, name, i)[:64],
            "server_uid": digest("server", stack_name, i % 3)[:32],
            "server_name": ("Lion", "Tiger", "Otter")[i % 3],
            "service_name": name,
            "image": image,
            "port_list": "[]",
            "command": "",
            "started_at": iso(now - DAY),
            "web_ports": "",
            "created_at": iso(now - DAY),
            "updated_at": iso(now - DAY),
        }
        for i in range(replicas)
    ]
    service = {"name": name, "containers": containers, "source_type": "image"}
    set_image(service, image)
    return service


def set_image(service: dict[str, Any], image: str) -> None:
    """The service runs `image` now: its containers' `image`, the Go client's two fields."""
    found = tag(image)
    service["image_name"] = image[: -len(found) - 1] if found else image
    service["image_tag"] = found
    for container in service.get("containers", []):
        container["image"] = image


def given_service(spec: dict[str, Any]) -> dict[str, Any]:
    """A service a test wrote out; an `image` (as older tests give it) is put where the
    sources show images: the containers' `image` and the Go client's two fields."""
    service = dict(spec)
    service.setdefault("containers", [])
    image = service.pop("image", None)
    if isinstance(image, str):
        set_image(service, image)
    return service


def render_deployment(
    d: Deployment, *, is_live: bool = False, words: str = WORDS_IN_MEANING
) -> dict[str, Any]:
    """A deployment as GET /stacks/{uid}/deployments shows it, with the fields only the
    simulator knows (the server serves those only when a test turns them on).

    `is_live` marks the deployment whose code runs now: the newest successful one.
    """
    label = d.outcome or IN_PROGRESS
    return {
        "id": d.id,
        "triggered_by": d.triggered_by,
        "triggered_via": dict(_VIA_WORDS[words].get(d.via, _VIA_WORDS[words]["api"])),
        "started_at": iso(d.started_at) if d.started_at is not None else None,
        "finished_at": iso(d.finished_at) if d.finished_at is not None else None,
        "outcome": dict(_OUTCOME_WORDS[words][label]),
        "git_hash": d.git_hash,
        "deploy_session": digest("session", d.stack_uid, d.id)[:10],
        "deploy_type": dict(_DEPLOY_TYPE),
        "is_head": is_live,
        "is_live": is_live,
        "reverted": None,
        "reverted_by": None,
        "reverted_at": None,
        "is_deploying": d.live,
        "commit_url": None,
        "git_ref": d.git_ref,
        "services": list(d.services) if d.services else None,
        "deployment_profile": d.deployment_profile,
    }


def render_action(a: Action) -> dict[str, Any]:
    """An async action as GET /stacks/{uid}/actions shows it (metadata: what the redeploy
    was asked; the server serves only its `user_reference` unless a test asks)."""
    return {
        "id": a.id,
        "user": a.user,
        "resource_type": "stack",
        "action": a.action,
        "resource_id": str(int(a.stack_uid[:6], 16)) if _HEX6.match(a.stack_uid) else a.stack_uid,
        "started_via": a.started_via,
        "started_at": iso(a.started_at),
        "finished_at": iso(a.finished_at) if a.finished_at is not None else None,
        "finished_success": a.finished_success,
        "finished_message": a.finished_message,
        "finished_result": {},
        "metadata": dict(a.metadata),
    }


_HEX6 = re.compile(r"[0-9a-f]{6}")
