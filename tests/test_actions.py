"""The actions' rules that need no server: resolution, references, services."""

from __future__ import annotations

import pytest

from igor_cli.cloud66.models import Stack, StackHealth, StackStatus
from igor_cli.config import Environment
from igor_cli.core.perform import perform
from igor_cli.core.resolve import resolve_stack, split_services
from igor_cli.errors import AmbiguousStack, StackNotFound, UsageProblem
from igor_cli.features.about import VersionOutcome, VersionRequest
from igor_cli.identity import Origin, Requester


def stack(name: str, environment: str = "production") -> Stack:
    return Stack(
        uid=f"{name}-{environment}",
        name=name,
        environment=environment,
        status=StackStatus.DEPLOYED,
        health=StackHealth.HEALTHY,
        is_busy=False,
    )


STACKS = [stack("shop"), stack("shop", "staging"), stack("Shopfront"), stack("blog")]


def test_exact_name_any_case_narrowed_by_environment() -> None:
    assert resolve_stack(STACKS, "SHOP", "Staging").uid == "shop-staging"
    assert resolve_stack(STACKS, "shopfront", None).uid == "Shopfront-production"


def test_ambiguous_lists_the_environments() -> None:
    with pytest.raises(AmbiguousStack) as caught:
        resolve_stack(STACKS, "shop", None)
    assert caught.value.environments == ["production", "staging"]


def test_not_found_suggests_close_and_containing_names() -> None:
    with pytest.raises(StackNotFound) as caught:
        resolve_stack(STACKS, "shpo", None)
    assert "shop" in caught.value.suggestions
    with pytest.raises(StackNotFound) as caught:
        resolve_stack(STACKS, "front", None)
    assert caught.value.suggestions == ["Shopfront"]


def test_blank_name_is_a_usage_problem() -> None:
    with pytest.raises(UsageProblem):
        resolve_stack(STACKS, "  ", None)


def test_services_split_on_commas_without_blanks_or_repeats() -> None:
    assert split_services(["web:1.2,worker", " api ", "web:1.2", ","]) == (
        "web:1.2",
        "worker",
        "api",
    )


def test_user_reference_round_trip() -> None:
    origin = Origin("slack", "U123", "Ev42")
    assert origin.user_reference == "igor:slack:U123:Ev42"
    assert Requester.from_reference(origin.user_reference) == Requester("slack", "U123")
    assert Requester.from_reference("deployed by a hook") is None
    assert len(Origin("cli", "x" * 400).user_reference) == 255


def test_version_needs_no_cloud66() -> None:
    def connect() -> object:
        raise AssertionError("version must not connect")

    env = Environment()
    try:
        done = perform(env, connect, VersionRequest(), Origin("cli", "me"))  # type: ignore[arg-type]
    finally:
        env.close()
    assert isinstance(done, VersionOutcome)
