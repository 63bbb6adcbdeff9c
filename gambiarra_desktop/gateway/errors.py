"""The gateway's domain errors. Like the hub's, they carry words and no HTTP:
``hub/api/responses.py`` maps them to statuses and the seed's ``{"error", "details"}``."""

from __future__ import annotations

from gambiarra_desktop.hub.errors import HubError, RetryLaterError


class GatewayError(HubError):
    """Base of the gateway's errors; ``details`` is the seed's optional second field."""

    def __init__(self, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.details = details


class InvalidCredentialsError(GatewayError):
    def __init__(self) -> None:
        super().__init__("Invalid credentials")


class AuthenticationRequiredError(GatewayError):
    def __init__(self) -> None:
        super().__init__("Authentication required",
                         "send Authorization: Bearer <token> from POST /v1/auth/login")


class InvalidTokenError(GatewayError):
    def __init__(self, details: str) -> None:
        super().__init__("Invalid token", details)


class CrossOriginLoginError(GatewayError):
    """A login sent by a web page of another origin: refused before it counts, so a page
    opened in the admin's browser cannot lock the admin out with wrong guesses."""

    def __init__(self) -> None:
        super().__init__("Cross-origin login refused",
                         "log in from the app, the command line, or the hub's own page")


class LoginLockedError(RetryLaterError):
    """Too many failed logins from one address."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("Too many failed logins from this address; retry later",
                         retry_after_s)


class InvalidFieldError(GatewayError):
    def __init__(self, field: str, details: str) -> None:
        super().__init__(f"Invalid field: {field}", details)
        self.field = field


class ModelNotFoundError(GatewayError):
    def __init__(self, model_id: str) -> None:
        super().__init__("Model not found", f"no model entry with id {model_id!r}")


class DuplicateModelError(GatewayError):
    def __init__(self, model_id: str) -> None:
        super().__init__("Model already exists", f"a model entry with id {model_id!r} exists")


class ProviderNotFoundError(GatewayError):
    def __init__(self, provider: str) -> None:
        super().__init__("Provider not found", f"no provider {provider!r}")


class NoModelAvailableError(GatewayError):
    """``auto`` found no enabled, usable entry in the layers it may use."""

    def __init__(self, details: str) -> None:
        super().__init__("No model available", details)


class AllModelsFailedError(GatewayError):
    """Every entry tried failed before any byte reached the client."""

    def __init__(self, details: str) -> None:
        super().__init__("All models failed", details)
