"""Retries of model calls: which faults are transient, how long to wait, and how a failure is recorded.

Built on tenacity (the agent runs its tries through ``AsyncRetrying``); every failed try is kept in
the trace (:class:`ModelCallError` carries them when all tries fail).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import openai
from tenacity import RetryCallState, wait_random_exponential


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one model call on transient endpoint faults (see :func:`is_transient`).

    Waits use exponential backoff with full jitter (``uniform(0, min(max_backoff_s, initial_backoff_s
    * 2**n))``, the AWS Architecture Blog's "Exponential Backoff And Jitter"; tenacity's
    ``wait_random_exponential``), or the server's ``Retry-After`` header when it sends one (capped
    at ``max_retry_after_s``).

    Attributes:
        max_retries: retries after the first try (so ``max_retries + 1`` tries in all), >= 0.
        initial_backoff_s / max_backoff_s / max_retry_after_s: seconds.
    """

    max_retries: int = 4
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 20.0
    max_retry_after_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")

    def wait(self, retry_state: RetryCallState) -> float:
        """Seconds to wait before the next try (a tenacity ``wait`` strategy)."""
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        response = getattr(exc, "response", None)
        header = response.headers.get("retry-after") if response is not None else None
        if header:
            try:
                return min(max(float(header), 0.0), self.max_retry_after_s)
            except ValueError:
                pass  # an HTTP date: fall back to backoff
        return wait_random_exponential(multiplier=self.initial_backoff_s, max=self.max_backoff_s)(retry_state)


class ModelCallError(RuntimeError):
    """A model call failed on every try with transient faults; ``failures`` lists each try."""

    def __init__(self, message: str, failures: list[dict[str, Any]]):
        super().__init__(message)
        self.failures = failures


class EmptyCompletion(Exception):
    """The endpoint answered 200 with no content."""


class BadResponseBody(Exception):
    """The endpoint answered 200 with a body that is not a completion (e.g. an HTML error page)."""


_CLIENT_MODULES = ("openai", "langchain_openai", "httpx", "httpcore", "aiohttp", "json")


def _raised_by_client(exc: BaseException) -> bool:
    """Whether ``exc`` was raised inside the HTTP/JSON client stack (a bad body), not in our code."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "") if tb is not None else ""
    return module.split(".")[0] in _CLIENT_MODULES


def is_transient(exc: BaseException) -> bool:
    """Whether a model-call exception is a transport fault worth retrying.

    Transient: connection errors and timeouts, dropped connections and truncated bodies
    (``openai.APIConnectionError``), HTTP 408, 409, 429 and 5xx, bodies that are not the expected
    JSON (``openai.APIResponseValidationError``, or a ``ValueError`` raised inside the openai /
    langchain-openai / httpx / aiohttp / json code that parses the body), and empty completions. Anything
    else, a ``ValueError`` from our own code included, is a bug or a refusal and is not retried.
    """
    if isinstance(exc, (openai.APIConnectionError, openai.APIResponseValidationError, EmptyCompletion, BadResponseBody)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return isinstance(exc, ValueError) and _raised_by_client(exc)


def failure_kind(exc: BaseException) -> str:
    """A short category of a failed call: ``rate_limit``, ``server_error``, ``timeout``,
    ``connection``, ``bad_body``, ``empty``, or ``http_<status>``."""
    if isinstance(exc, EmptyCompletion):
        return "empty"
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code == 429:
            return "rate_limit"
        return "server_error" if exc.status_code >= 500 else f"http_{exc.status_code}"
    return "bad_body"


def describe_error(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 300 characters)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300]


__all__ = ["BadResponseBody", "EmptyCompletion", "ModelCallError", "RetryPolicy", "describe_error", "failure_kind", "is_transient"]
