"""Keyring backends for tests: in memory, one that drops writes, one that fails."""

from __future__ import annotations

from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked, NoKeyringError, PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    """Keeps passwords in a dict."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.passwords[(service, username)]
        except KeyError:
            raise PasswordDeleteError("not found") from None


class DroppingKeyring(MemoryKeyring):
    """Accepts writes and keeps nothing (like keyring's null backend)."""

    def set_password(self, service: str, username: str, password: str) -> None:
        return None


class FailingKeyring(KeyringBackend):
    """No keyring at all (like keyring's fail backend on a headless machine)."""

    priority = 0  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise NoKeyringError("No recommended backend was available.")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise NoKeyringError("No recommended backend was available.")

    def delete_password(self, service: str, username: str) -> None:
        raise NoKeyringError("No recommended backend was available.")


class LockedKeyring(KeyringBackend):
    """A Secret Service whose collection is locked and whose unlock prompt was dismissed
    (or could not be shown: no display): keyring's SecretService backend raises this."""

    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")

    def delete_password(self, service: str, username: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")
