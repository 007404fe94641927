"""Exit codes and the one family of errors igor raises on purpose.

Every error carries a sentence saying what went wrong and, where there is one,
a hint in facts (which scope a token lacks, where tokens are made). What to
type is the edge's to say: an error names its `remedy`, and the terminal and
the chat adapters word it for their reader (a person at a shell can run
`igor register`; a person in Slack has to ask whoever runs the bot). The edges
map errors to output and exit codes; nothing in between catches broad
exceptions.
"""

from __future__ import annotations

from enum import Enum, IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime


class ExitCode(IntEnum):
    """Process exit codes (SPEC section 3)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    # A followed deployment was cancelled (someone asked for it): not a failure of
    # igor nor of the deployment, and a script may want to tell it apart.
    CANCELLED = 3
    NOT_AUTHORISED = 4
    UNAVAILABLE = 5
    INTERRUPTED = 130


class Remedy(Enum):
    """What fixes an error, for each edge to word: a token to store again."""

    REGISTER_CLOUD66 = "register-cloud66"
    REGISTER_SLACK = "register-slack"


class IgorError(Exception):
    """An expected failure: a message for the user, a hint, an exit code, a remedy."""

    exit_code: ExitCode = ExitCode.FAILED
    remedy: Remedy | None = None

    def __init__(self, message: str, hint: str = "", *, remedy: Remedy | None = None) -> None:
        super().__init__(message)
        self.message = message
        if remedy is not None:
            self.remedy = remedy
        self.hint = hint


# What the user asked for cannot be done (exit 1).


class StackNotFound(IgorError):
    """No stack has that name (in that environment)."""

    def __init__(
        self, name: str, environment: str | None, suggestions: list[str], message: str
    ) -> None:
        hint = ""
        if suggestions:
            hint = "Did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
        else:
            hint = "Run `igor list` to see your stacks."
        super().__init__(message, hint)
        self.name = name
        self.environment = environment
        self.suggestions = suggestions


class AmbiguousStack(IgorError):
    """One name in several environments, and no `-e` to choose."""

    def __init__(self, name: str, environments: list[str]) -> None:
        choices = ", ".join(environments)
        super().__init__(
            f"There are {len(environments)} stacks named {name!r} ({choices}).",
            f"Choose one with -e, for example `-e {environments[0]}`.",
        )
        self.name = name
        self.environments = environments


class UnknownService(IgorError):
    """A `-v` service the stack does not have."""

    def __init__(self, stack: str, unknown: list[str], available: list[str]) -> None:
        names = ", ".join(unknown)
        hint = (
            "Its services are: " + ", ".join(available) + "."
            if available
            else "It has no services to choose from; deploy without -v."
        )
        super().__init__(f"Stack {stack!r} has no service named {names}.", hint)
        self.unknown = unknown
        self.available = available


class UsageProblem(IgorError):
    """Options that parse but do not make sense together."""

    exit_code = ExitCode.USAGE


class BadApiUrl(UsageProblem):
    """The Cloud 66 API base URL (IGOR_API_URL) is not a URL igor can use."""


# Tokens (exit 4).


class NotRegistered(IgorError):
    """No token to talk to Cloud 66 (or Slack) with."""

    exit_code = ExitCode.NOT_AUTHORISED
    remedy: Remedy | None = Remedy.REGISTER_CLOUD66


class KeyringUnavailable(IgorError):
    """No usable OS keyring on this machine."""

    exit_code = ExitCode.NOT_AUTHORISED


# Cloud 66 answered with an error, or could not be reached.


class Cloud66Error(IgorError):
    """Cloud 66 answered with an error."""

    exit_code = ExitCode.UNAVAILABLE

    def __init__(self, message: str, hint: str = "", status: int | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


class Unauthorized(Cloud66Error):
    """401: the token is wrong, expired or revoked."""

    exit_code = ExitCode.NOT_AUTHORISED
    remedy: Remedy | None = Remedy.REGISTER_CLOUD66


class Forbidden(Cloud66Error):
    """403: the token lacks a scope; `scope` names the one the failed call needed."""

    exit_code = ExitCode.NOT_AUTHORISED
    remedy: Remedy | None = Remedy.REGISTER_CLOUD66

    def __init__(
        self, message: str, hint: str = "", status: int | None = None, *, scope: str = "public"
    ) -> None:
        super().__init__(message, hint, status)
        self.scope = scope


class TrialExpired(Cloud66Error):
    """402: the Cloud 66 account's trial has expired."""

    exit_code = ExitCode.NOT_AUTHORISED


class NotFound(Cloud66Error):
    """404 from the API."""

    exit_code = ExitCode.FAILED


class Conflict(Cloud66Error):
    """409 from the API."""

    exit_code = ExitCode.FAILED


class Throttled(Cloud66Error):
    """503 `throttled` (final until `reset_at`), or 429 after every retry (`reset_at` None)."""

    def __init__(
        self,
        message: str,
        hint: str = "",
        status: int | None = None,
        *,
        reset_at: datetime | None = None,
    ) -> None:
        super().__init__(message, hint, status)
        self.reset_at = reset_at


class Unreachable(Cloud66Error):
    """Cloud 66 could not be reached (DNS, refused, timeouts) after every retry."""


class ApiError(Cloud66Error):
    """Any other error answer, or an answer igor cannot read."""


class UnreadableAnswer(ApiError):
    """A 2xx answer whose body is not what the docs show (following says so, never loops)."""


class OutcomeUnknown(Cloud66Error):
    """A deploy or cancel was sent but no readable answer came back: it may have happened."""


class ServicesNeedDocker(IgorError):
    """`-v` on a stack that is not a docker stack (Cloud 66 deploys services of docker stacks)."""

    def __init__(self, stack: str, hint: str = "Deploy the whole stack without -v.") -> None:
        super().__init__(
            f"{stack} is not a docker stack: -v/--service applies to docker stacks only.", hint
        )


class RefNeedsClassic(IgorError):
    """`--ref` on a docker stack (Cloud 66 takes `git_ref` on classic stacks only)."""

    def __init__(self, stack: str) -> None:
        super().__init__(
            f"{stack} is a docker stack: --ref applies to classic stacks only. Nothing was posted.",
            "Deploy an image tag with -v name:tag instead (e.g. -v web:1.4.2).",
        )


class AuditLost(IgorError):
    """`[audit] required = true`, and the audit file cannot be written: changes wait."""

    def __init__(self, problem: str) -> None:
        super().__init__(
            f"The audit file cannot be written ({problem}), and [audit] required = true "
            "holds changes back until it can. Nothing was posted.",
            "Ask whoever runs igor to free space for the audit file.",
        )


class TooManyStacks(IgorError):
    """`list --wide` over more stacks than it reads deployments for."""

    def __init__(self, count: int, most: int) -> None:
        super().__init__(
            f"--wide reads each stack's deployments: {count} stacks would cost at least "
            f"{count} requests of the 3,000 an hour Cloud 66 allows. Nothing was read.",
            f"Narrow the list to at most {most} stacks with -s or -e.",
        )


class CannotRedeploy(IgorError):
    """A rollback or promotion refused before anything was posted (the message says why)."""


class NothingToGoBackTo(CannotRedeploy):
    """No successful deployment to roll back to (or none before the live one)."""


class NoSuchDeployment(CannotRedeploy):
    """`--to ID` names no deployment of the stack."""


class AlreadyLive(CannotRedeploy):
    """What would be deployed is what runs now."""


class NotShownByCloud66(CannotRedeploy):
    """Cloud 66 does not show what a deployment ran (its hash, or its image tags)."""


class DifferentRepositories(CannotRedeploy):
    """`promote` between stacks that deploy from different repositories."""


class NothingToPromote(CannotRedeploy):
    """`promote` from a stack with no successful deployment."""


class ChangedSinceConfirmed(CannotRedeploy):
    """What a confirmed rollback or promotion would deploy is no longer what was asked."""
