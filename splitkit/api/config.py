"""Client settings as explicit value objects.

Nothing here reads the environment unless asked: ``ClientConfig.from_env()``
takes a mapping (``os.environ`` by default), so tests can hand in a dict.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from splitkit._checks import non_empty_str, positive_int, positive_number, secret

__all__ = ["PRODUCTION_URL", "ClientConfig", "RetryPolicy"]

PRODUCTION_URL = "https://api.x.flatfile.com/v1"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry a failed request.

    ``attempts`` counts every try, the first included (1 = never retry): it
    is the most requests one client call makes (a paging call such as
    ``list_parts``: per page). No other layer of splitkit resends requests
    (aiohttp, under ``AsyncClient``, may resend a GET, PUT or DELETE once more
    per attempt on a dropped connection; never a POST).
    The wait before retry *n* is ``initial * 2**(n-1)`` plus up to ``jitter``
    seconds, capped at ``max_wait``; the ``Retry-After`` of a 429 or 503
    replaces it (capped too).

    What is resent at all is decided per request: see ``splitkit.api._base``.
    A POST that may have been processed (a 500/502/504, or no answer after it
    was sent) is never resent; it raises with ``maybe_processed=True``.
    """

    attempts: int = 4
    initial: float = 0.1
    max_wait: float = 5.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "attempts", positive_int("attempts", self.attempts))
        positive_number("initial", self.initial, allow_zero=True)
        positive_number("max_wait", self.max_wait, allow_zero=True)
        positive_number("jitter", self.jitter, allow_zero=True)

    def backoff(self, retry_number: int, random_fraction: float) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based)."""
        wait = self.initial * 2.0 ** (retry_number - 1) + random_fraction * self.jitter
        return min(wait, self.max_wait)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Where the API is and how to talk to it.

    ``base_url`` includes the version root (``.../v1``), like the official
    Python SDK's ``base_url``. The token is kept out of ``repr``.
    """

    base_url: str
    token: str = field(repr=False)
    environment_id: str | None = None
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or not self.base_url.strip():
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        url = self.base_url.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        object.__setattr__(self, "base_url", url)
        secret("token", self.token)  # never echoed: it may be a real secret with a typo
        if self.environment_id is not None:
            non_empty_str("environment_id", self.environment_id, what="a non-empty string or None")
        object.__setattr__(self, "timeout", positive_number("timeout", self.timeout))
        if not isinstance(self.retry, RetryPolicy):
            raise ValueError(f"retry must be a RetryPolicy, got {self.retry!r}")

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> ClientConfig:
        """Read the settings the Flatfile SDKs read.

        Token: ``FLATFILE_API_KEY``, else ``FLATFILE_BEARER_TOKEN`` (the alias
        counts only when the primary is unset or empty). URL:
        ``FLATFILE_API_URL`` with ``/v1`` appended when missing, else
        production. Environment: ``FLATFILE_ENVIRONMENT_ID``.
        """
        env = os.environ if env is None else env
        token = env.get("FLATFILE_API_KEY") or env.get("FLATFILE_BEARER_TOKEN")
        if not token:
            raise ValueError(
                "FLATFILE_API_KEY (or FLATFILE_BEARER_TOKEN) must be set to read the config "
                "from the environment"
            )
        typed = env.get("FLATFILE_API_URL")
        url = (typed or PRODUCTION_URL).strip().rstrip("/")
        parts = urlsplit(url)
        if typed and (parts.scheme not in ("http", "https") or not parts.netloc):
            # Checked before /v1 is added: the message shows what the user typed.
            raise ValueError(
                f"FLATFILE_API_URL must be an http(s) URL like https://api.x.flatfile.com, "
                f"got {typed!r}"
            )
        if not url.endswith("/v1"):
            url += "/v1"
        return cls(
            base_url=url,
            token=token,
            environment_id=env.get("FLATFILE_ENVIRONMENT_ID") or None,
            timeout=timeout,
            retry=RetryPolicy() if retry is None else retry,
        )
