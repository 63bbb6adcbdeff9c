"""Errors of keys, budgets and rate limits, in words; ``hub/api/responses.py`` maps them
to HTTP like every other domain error."""

from __future__ import annotations

from gambiarra_desktop.gateway.errors import GatewayError
from gambiarra_desktop.hub.errors import RetryLaterError


class InvalidApiKeyError(GatewayError):
    def __init__(self) -> None:
        super().__init__("Invalid API key", "the key is unknown, malformed or revoked")


class ApiKeyRequiredError(GatewayError):
    def __init__(self, details: str) -> None:
        super().__init__("API key required", details)


class KeyNotValidHereError(GatewayError):
    def __init__(self, details: str) -> None:
        super().__init__("API key not valid here", details)


class ApiKeyNotFoundError(GatewayError):
    def __init__(self, key_id: str) -> None:
        super().__init__("API key not found", f"no API key with id {key_id!r}")


class RateLimitedError(RetryLaterError):
    """Over a rate limit; carries the ``X-RateLimit-*`` headers of the refusal."""

    def __init__(self, details: str, retry_after_s: int, headers: dict[str, str]) -> None:
        super().__init__("Rate limit exceeded", retry_after_s)
        self.details = details
        self.headers = headers


class BudgetExceededError(RetryLaterError):
    def __init__(self, details: str, retry_after_s: int) -> None:
        super().__init__("Budget exceeded", retry_after_s)
        self.details = details


class TooManyKeysError(GatewayError):
    """The hub holds as many live keys as it lists and checks cheaply; revoke one first."""

    def __init__(self, limit: int) -> None:
        super().__init__("Too many API keys",
                         f"this hub already has {limit} live API keys; revoke one first")
