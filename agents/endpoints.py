"""Checking OpenAI-compatible endpoints before a run or an evaluation calls them, and URLs as they may be recorded.

:func:`preflight` is used by ``scireflect annotate`` and ``scireflect judge`` (through
:func:`scireflect.run.endpoints.open_teams`) and by ``scireflect eval``; :func:`redact_url` wherever an
endpoint is written to a file.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import openai


class EndpointCheckError(RuntimeError):
    """An endpoint failed its check (unreachable, key rejected, model not served, no images, credentials
    in the URL); the message says what to do and shows the URL redacted."""


_SECRET_PARAMS = re.compile(r"key|token|secret|pass|pwd|auth|sig|credential|session", re.IGNORECASE)


def redact_url(url: str | None) -> str | None:
    """A URL as it may be recorded: user info (``user:pass@``) and secret-looking query values removed.

    ``http://u:p@host:8000/v1?api_key=abc&x=1`` becomes ``http://***@host:8000/v1?api_key=***&x=1``.
    Used wherever an endpoint is written to a file (``run.json``, an export's ``filter_report.json``).
    """
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = urlencode([(k, "***" if _SECRET_PARAMS.search(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)],
                      safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, "" if not parts.fragment else "***"))


PROBE_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC")
"""A 1x1 PNG: what :func:`preflight` sends to learn whether a model takes images."""

FIGURES_HINT = ("use --figures text to send the figures' caption, OCR text and mentions instead, or a vision-language "
                "model (the embedded model takes images with --mmproj FILE: see docs/figures.md)")


async def _probe_images(client: openai.AsyncOpenAI, base_url: str, model: str) -> None:
    """Send :data:`PROBE_PNG` to ``model``; raise :class:`EndpointCheckError` when the endpoint refuses it."""
    url = "data:image/png;base64," + base64.b64encode(PROBE_PNG).decode("ascii")
    try:
        await client.chat.completions.create(model=model, max_tokens=1, temperature=0.0, messages=[
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "Say ok."}]}])
    except (openai.APIStatusError, openai.APIConnectionError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise EndpointCheckError(f"model {model} at {redact_url(base_url)} cannot take images ({message}); {FIGURES_HINT}") from None


def refuse_credentials_in_url(base_url: str) -> None:
    """Refuse an endpoint URL carrying ``user:pass@``: the clients would send its basic-auth header
    and the API key's ``Bearer`` header together, which aiohttp rejects on every call ("Cannot
    combine AUTHORIZATION header with AUTH argument", then retried as if transient) and which a
    server reads either way. The key belongs in ``OPENAI_API_KEY`` (or the role's ``api_key_env``).

    Raises:
        EndpointCheckError: the URL has a user name or a password (the message shows it redacted).
    """
    parts = urlsplit(base_url)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise EndpointCheckError(f"endpoint {redact_url(base_url)} has a user name or password in its URL (user:pass@host), which "
                       "scireflect does not send: remove it from --base-url (or base_url/replicas in --config) and "
                       "put the API key in OPENAI_API_KEY (or the role's api_key_env); it is sent as a Bearer token")


async def preflight(endpoints: Mapping[str, tuple[str, set[str]]], *, images: bool = False) -> None:
    """Check that each endpoint answers and serves the models the run needs.

    Args:
        endpoints: ``{base_url: (api_key, {model names})}``.
        images: also send each model a 1x1 image (the run's questions have figures to send).

    Raises:
        EndpointCheckError: a URL with a user name or password (:func:`refuse_credentials_in_url`, checked
            for every endpoint before any is called), unreachable endpoint, rejected key, a model the endpoint does not list (the
            message lists what it serves), or (``images``) a model that refuses an image (the message
            says to use ``--figures text``). Endpoints without a ``/models`` route are not checked
            for names.
    """
    for base_url in endpoints:
        refuse_credentials_in_url(base_url)
    for base_url, (api_key, models) in endpoints.items():
        client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=15.0, max_retries=1)
        try:
            listed = [m.id async for m in client.models.list()]
        except openai.APIConnectionError as exc:
            raise EndpointCheckError(f"endpoint unreachable: {redact_url(base_url)} ({exc.__cause__ or exc}); is the server running?") from None
        except openai.AuthenticationError:
            raise EndpointCheckError(f"endpoint {redact_url(base_url)} rejected the API key; set it in OPENAI_API_KEY (or the role's api_key_env)") from None
        except (openai.NotFoundError, openai.UnprocessableEntityError):
            listed = []  # no /models route: cannot check names here
        except openai.APIError as exc:
            await client.close()
            raise EndpointCheckError(f"endpoint {redact_url(base_url)} failed when listing models: {exc}") from None
        try:
            missing = sorted(m for m in models if m not in listed)
            if missing and listed:
                raise EndpointCheckError(
                    f"model not found: {', '.join(missing)} is not served by {redact_url(base_url)}; available: {', '.join(listed[:20])}"
                )
            for model in sorted(models) if images else []:
                await _probe_images(client, base_url, model)
        finally:
            await client.close()


__all__ = ["FIGURES_HINT", "PROBE_PNG", "EndpointCheckError", "preflight", "redact_url", "refuse_credentials_in_url"]
