"""SimProfile: what the embedded server's simulator imitates of a platform (a leaf module).

The server's simulator (``splitkit.server.simulator``) reads a profile; the client-side
probe (``splitkit.probe``) writes one from what it measured. Both import this module, which
imports nothing from splitkit but the argument checks, so client and server still meet
only on the wire and in this data shape.

A profile is a frozen value with units in the field names::

    SimProfile(latency_ms=80, jitter_ms=40, rate_per_s=10, burst=20,
               failures=(FailureRule(status=503, rate=0.01, retry_after_s=1),),
               page_ms_per_record=0.02, seed=0)

Built-in names (:data:`PROFILES`): ``local`` (off), ``flatfile``, ``slow-network``,
``rate-limited``. :func:`sim_profile` turns a name, a JSON file path, a dict or a profile
into a profile, with field overrides.
"""

from __future__ import annotations

import bisect
import fnmatch
import itertools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

from splitkit._checks import integer, non_empty_str, positive_number

FAILURE_STATUSES: Final = (500, 503)


@dataclass(frozen=True)
class FailureRule:
    """A share ``rate`` (0 to 1) of the requests matching ``route`` answered ``status``.

    ``route`` is ``"METHOD /path"`` with ``*`` wildcards, the path relative to ``/v1``:
    ``"* *"`` is every request, ``"GET /sheets/*/records"`` the records pages,
    ``"POST /jobs/*/complete"`` completing a job. A 503 is answered *before* the request is
    carried out (with ``Retry-After: retry_after_s`` when set: "not processed, come back");
    a 500 *after* it was carried out (the answer lost: the caller must reconcile).
    """

    status: int = 503
    rate: float = 0.0
    route: str = "* *"
    retry_after_s: float | None = None

    def __post_init__(self) -> None:
        if self.status not in FAILURE_STATUSES:
            raise ValueError(f"a failure's status must be 500 or 503, got {self.status!r}")
        rate = positive_number("rate", self.rate, allow_zero=True, what="a share from 0 to 1")
        if rate > 1:
            raise ValueError(f"a failure's rate must be a share from 0 to 1, got {self.rate!r}")
        object.__setattr__(self, "rate", rate)
        route = non_empty_str("route", self.route, what="'METHOD /path' like 'GET /jobs/*'")
        method, _, path = route.strip().partition(" ")
        if not path.strip().startswith(("/", "*")):
            raise ValueError(
                f"a failure's route must be 'METHOD /path' (path relative to /v1, * "
                f"wildcards) like 'GET /sheets/*/records' or '* *', got {self.route!r}"
            )
        object.__setattr__(self, "route", f"{method.upper()} {path.strip()}")
        if self.retry_after_s is not None:
            seconds = positive_number("retry_after_s", self.retry_after_s, allow_zero=True)
            object.__setattr__(self, "retry_after_s", seconds)

    def matches(self, method: str, path: str) -> bool:
        """Whether a request (``path`` relative to ``/v1``) falls under this rule."""
        want_method, _, want_path = self.route.partition(" ")
        return fnmatch.fnmatchcase(method.upper(), want_method) and fnmatch.fnmatchcase(
            path, want_path
        )

    @classmethod
    def parse(cls, text: str) -> FailureRule:
        """``"STATUS:RATE"`` or ``"STATUS:RATE:METHOD /path"`` (the ``serve --fail`` form),
        e.g. ``"503:0.01"`` or ``"500:0.05:POST /jobs/*/complete"``. A 503 parsed this way
        carries ``Retry-After: 1``."""
        pieces = str(text).split(":", 2)
        try:
            status, rate = int(pieces[0]), float(pieces[1])
        except (ValueError, IndexError):
            raise ValueError(
                "a failure must be STATUS:RATE or STATUS:RATE:METHOD /path, e.g. '503:0.01' "
                f"or '500:0.05:POST /jobs/*/complete', got {text!r}"
            ) from None
        route = pieces[2] if len(pieces) == 3 else "* *"
        return cls(status, rate, route, 1.0 if status == 503 else None)


def _percentiles(value: object) -> tuple[tuple[float, float], ...]:
    """``{percentile: ms}`` (keys 0 to 100, values non-decreasing) as sorted pairs."""
    if not isinstance(value, Mapping | tuple | list):
        raise ValueError(
            f"latency_percentiles_ms must be a dict of percentile to ms like "
            f"{{50: 80, 90: 150, 99: 400}}, got {value!r}"
        )
    pairs = value.items() if isinstance(value, Mapping) else value
    try:
        points = sorted((float(p), float(ms)) for p, ms in pairs)
    except (TypeError, ValueError):
        raise ValueError(
            f"latency_percentiles_ms must map percentiles to milliseconds, got {value!r}"
        ) from None
    if not points or any(not 0 <= p <= 100 or not math.isfinite(ms) or ms < 0 for p, ms in points):
        raise ValueError(
            "latency_percentiles_ms needs percentiles from 0 to 100 and non-negative ms, "
            f"got {value!r}"
        )
    if any(b[1] < a[1] for a, b in itertools.pairwise(points)):
        raise ValueError(f"latency_percentiles_ms must not decrease, got {value!r}")
    return tuple(points)


@dataclass(frozen=True)
class SimProfile:
    """What the simulator does to each ``/v1`` request (every figure 0/None: nothing).

    - ``latency_ms`` + up to ``jitter_ms`` (uniform) before each answer; or, when
      ``latency_percentiles_ms`` is set (a measured ``{percentile: ms}``), a latency drawn
      from that distribution (linear between the given points) instead.
    - ``rate_per_s``: a token bucket per bearer token (``burst`` deep, default
      ``max(1, rate_per_s)``); a request finding it empty is answered 429 with
      ``Retry-After`` (``retry_after_s``, or the whole seconds until a token is back).
    - ``failures``: :class:`FailureRule` s, the first matching rule applies.
    - ``page_ms_per_record``: a records page waits this much more per record it returns.
    - ``seed``: the random draws (jitter, failures) repeat for the same sequence of requests.
    - ``name`` and ``source`` say what the profile is and where its figures come from.
    """

    name: str = "custom"
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    latency_percentiles_ms: tuple[tuple[float, float], ...] | None = None
    rate_per_s: float | None = None
    burst: int | None = None
    retry_after_s: float | None = None
    failures: tuple[FailureRule, ...] = ()
    page_ms_per_record: float = 0.0
    seed: int = 0
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        non_empty_str("name", self.name)
        for name in ("latency_ms", "jitter_ms", "page_ms_per_record"):
            value = positive_number(
                name, getattr(self, name), allow_zero=True, what="a number of ms >= 0"
            )
            object.__setattr__(self, name, value)
        if self.latency_percentiles_ms is not None:
            points = _percentiles(self.latency_percentiles_ms)
            object.__setattr__(self, "latency_percentiles_ms", points)
        if self.rate_per_s is not None:
            rate = positive_number("rate_per_s", self.rate_per_s, what="requests/s > 0 or None")
            object.__setattr__(self, "rate_per_s", rate)
        if self.burst is not None:
            what = "a positive integer (requests in a burst) or None"
            object.__setattr__(self, "burst", integer("burst", self.burst, low=1, what=what))
        if self.retry_after_s is not None:
            seconds = positive_number("retry_after_s", self.retry_after_s, allow_zero=True)
            object.__setattr__(self, "retry_after_s", seconds)
        rules = self.failures
        if not isinstance(rules, tuple | list):
            raise ValueError(f"failures must be a list of FailureRule, got {rules!r}")
        rules = tuple(FailureRule(**r) if isinstance(r, Mapping) else r for r in rules)
        for rule in rules:
            if not isinstance(rule, FailureRule):
                raise ValueError(f"failures must hold FailureRule or dicts, got {rule!r}")
        object.__setattr__(self, "failures", rules)
        object.__setattr__(self, "seed", integer("seed", self.seed, what="an integer"))
        if not isinstance(self.source, str):
            raise ValueError(f"source must be a string, got {self.source!r}")

    @property
    def enabled(self) -> bool:
        """Whether the profile changes anything at all."""
        return bool(
            self.latency_ms
            or self.jitter_ms
            or self.latency_percentiles_ms
            or self.rate_per_s
            or any(rule.rate for rule in self.failures)
            or self.page_ms_per_record
        )

    @property
    def bucket_size(self) -> int:
        """The token bucket's depth: ``burst``, else one second's worth (at least 1)."""
        if self.burst is not None:
            return self.burst
        return max(1, int(self.rate_per_s or 1))

    def latency_at(self, fraction: float) -> float:
        """The latency in ms for a uniform draw ``fraction`` in [0, 1)."""
        points = self.latency_percentiles_ms
        if not points:
            return self.latency_ms + fraction * self.jitter_ms
        pct = fraction * 100
        i = bisect.bisect_left([p for p, _ in points], pct)
        if i == 0:
            return points[0][1]
        if i == len(points):
            return points[-1][1]
        (p0, v0), (p1, v1) = points[i - 1], points[i]
        return v0 + (v1 - v0) * (pct - p0) / (p1 - p0)

    def failure_for(self, method: str, path: str) -> FailureRule | None:
        """The first rule matching the request (``path`` relative to ``/v1``), if any."""
        return next((r for r in self.failures if r.matches(method, path)), None)

    def describe(self) -> str:
        """One line: what the profile does (``serve`` prints it)."""
        said = []
        if self.latency_percentiles_ms:
            shown = ", ".join(f"p{p:g} {ms:g} ms" for p, ms in self.latency_percentiles_ms)
            said.append(f"latency {shown}")
        elif self.latency_ms or self.jitter_ms:
            said.append(f"latency {self.latency_ms:g} ms + up to {self.jitter_ms:g} ms")
        if self.rate_per_s:
            said.append(f"{self.rate_per_s:g} requests/s per token (bursts of {self.bucket_size})")
        for rule in self.failures:
            if rule.rate:
                said.append(f"{rule.rate:.2%} {rule.status} on {rule.route}")
        if self.page_ms_per_record:
            said.append(f"{self.page_ms_per_record:g} ms per record of a page")
        return f"{self.name}: {'; '.join(said) or 'nothing simulated'} (seed {self.seed})"

    # -- as JSON ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failures"] = [asdict(rule) for rule in self.failures]
        if self.latency_percentiles_ms is not None:
            data["latency_percentiles_ms"] = {f"{p:g}": ms for p, ms in self.latency_percentiles_ms}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SimProfile:
        if not isinstance(data, Mapping):
            raise ValueError(f"a profile must be a JSON object, got {data!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown profile fields {unknown}; the fields are {sorted(known)}")
        values = dict(data)
        if "failures" in values and isinstance(values["failures"], list):
            values["failures"] = tuple(values["failures"])
        return cls(**values)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the profile as JSON (what ``serve --simulate FILE`` loads)."""
        target = Path(path)
        # a file for people too (indented); not the wire, so not the wire's encoder
        target.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SimProfile:
        """A profile from a JSON file written by :meth:`save` (or by hand)."""
        source = Path(path)
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"there is no profile file {str(source)!r}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"the profile file {str(source)!r} is not JSON: {exc}") from None
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"the profile file {str(source)!r}: {exc}") from None


_ASSUMED = (
    "assumed, not measured: typical figures for a cloud API reached over the internet; "
    "run `splitkit probe --out profile.json` against your account for real ones"
)

PROFILES: Final[dict[str, SimProfile]] = {
    "local": SimProfile(name="local", source="the embedded server as it is: nothing added"),
    "flatfile": SimProfile(
        name="flatfile",
        latency_ms=60.0,
        jitter_ms=60.0,
        rate_per_s=20.0,
        burst=40,
        failures=(FailureRule(503, 0.002, "* *", 1.0), FailureRule(500, 0.001, "* *")),
        page_ms_per_record=0.02,
        source=_ASSUMED,
    ),
    "slow-network": SimProfile(
        name="slow-network",
        latency_ms=250.0,
        jitter_ms=150.0,
        page_ms_per_record=0.05,
        source="a slow or distant link: 250-400 ms per request (assumed)",
    ),
    "rate-limited": SimProfile(
        name="rate-limited",
        latency_ms=20.0,
        jitter_ms=10.0,
        rate_per_s=5.0,
        burst=5,
        source="a tight rate limit: 5 requests/s per token, bursts of 5 (assumed)",
    ),
}


def sim_profile(
    spec: SimProfile | str | os.PathLike[str] | Mapping[str, Any], **overrides: Any
) -> SimProfile:
    """A profile from a built-in name (:data:`PROFILES`), a JSON file path, a dict or a
    profile, with ``overrides`` (field=value, e.g. ``seed=3``) applied on top."""
    if isinstance(spec, SimProfile):
        profile = spec
    elif isinstance(spec, Mapping):
        profile = SimProfile.from_dict(spec)
    elif isinstance(spec, str) and spec in PROFILES:
        profile = PROFILES[spec]
    elif isinstance(spec, str | os.PathLike) and (
        isinstance(spec, os.PathLike) or spec.endswith(".json") or os.sep in spec
    ):
        profile = SimProfile.load(spec)
    else:
        names = ", ".join(repr(name) for name in PROFILES)
        raise ValueError(
            f"a simulator profile must be one of {names}, a path to a profile JSON file, a "
            f"dict or a SimProfile, got {spec!r}"
        )
    known = {f.name for f in fields(SimProfile)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown profile fields {unknown}; the fields are {sorted(known)}")
    return replace(profile, **overrides) if overrides else profile
