"""Label matchers (``=``, ``!=``, ``=~``, ``!~``) and silences stored in the ``silences`` table.

Regular expressions have Alertmanager's semantics: RE2 syntax, matched in linear time (no
backtracking, so ``(a+)+b`` costs microseconds on any input), and anchored at both ends
(``host=~web`` matches ``web`` only; write ``web.*`` for the prefix).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

import duckdb
import re2

from monitorkit.rules.errors import AlertNotFoundError, InvalidRequestError, MatcherError
from monitorkit.store.literals import bind

Op = Literal["=", "!=", "=~", "!~"]
MAX_MATCHER_CHARS = 1024  # of one matcher's text: bounds what a silence or route may ask the engine to compile
MAX_MATCHERS = 64  # per silence
# Matched against the stripped text, greedy: linear time on any input (a lazy group before \s*$ is not).
_MATCHER_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*)$")
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # errors come back as exceptions with the message; not on stderr too
_RE2_OPTIONS.never_capture = True  # only "does it match" is asked


@functools.lru_cache(maxsize=4096)
def compile_anchored(pattern: str) -> Any:
    """Return the RE2 program of ``^(?:pattern)$``; raise MatcherError if RE2 refuses it."""
    try:
        return re2.compile(f"^(?:{pattern})$", _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise MatcherError(f"invalid regular expression {pattern!r}: {reason} (RE2 syntax, as Alertmanager: "
                           "no backreferences or lookarounds)") from None


class Matcher(NamedTuple):
    """One label condition: ``Matcher("host", "=~", "web.*")``; regexes match the whole value."""

    label: str
    op: Op
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Tell whether ``labels`` satisfy this condition (a missing label is the empty string)."""
        have = labels.get(self.label, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        hit = compile_anchored(self.value).match(have) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.label}{self.op}{self.value}"


def parse_matcher(text: str) -> Matcher:
    """Parse ``host=web1``, ``alertname=~cpu.*``, ``env!=dev`` or ``mount!~/boot.*``."""
    if len(text) > MAX_MATCHER_CHARS:
        raise MatcherError(f"matcher of {len(text)} characters is over the limit of {MAX_MATCHER_CHARS}: "
                           "write a shorter one, or several")
    match = _MATCHER_RE.match(text.strip())
    if not match:
        raise MatcherError(f"invalid matcher {text!r}: write label=value, label!=value, label=~regex or label!~regex")
    label, op, value = match.groups()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    if op in ("=~", "!~"):
        try:
            compile_anchored(value)
        except MatcherError as exc:
            raise MatcherError(f"in matcher {text!r}: {exc}") from None
    return Matcher(label, op, value)  # type: ignore[arg-type]


def parse_matchers(texts: Iterable[str]) -> list[Matcher]:
    """Parse several matchers; a single text may hold several separated by commas."""
    out: list[Matcher] = []
    for text in texts:
        if len(text) > MAX_MATCHER_CHARS * MAX_MATCHERS:
            raise MatcherError(f"matchers of {len(text)} characters are over the limit; write fewer or shorter ones")
        out.extend(parse_matcher(part) for part in _split(text))
    return out


def _split(text: str) -> list[str]:
    # Commas inside a regex ({1,3}) must not split: split only before "label<op>".
    parts = re.split(r",\s*(?=[A-Za-z_][A-Za-z0-9_]*\s*(?:=~|!~|!=|=))", text)
    return [p for p in parts if p.strip()]


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """Tell whether every matcher holds for ``labels``."""
    return all(m.matches(labels) for m in matchers)


def matchers_from_config(match: Mapping[str, Any] | None, match_re: Mapping[str, Any] | None,
                         matchers: Iterable[str] | None) -> list[Matcher]:
    """Build matchers from the TOML forms ``match = {k = v}``, ``match_re = {k = re}``, ``matchers = [...]``."""
    out = [Matcher(k, "=", str(v)) for k, v in (match or {}).items()]
    for k, v in (match_re or {}).items():
        out.append(parse_matcher(f"{k}=~{v}"))
    out.extend(parse_matchers(matchers or []))
    return out


class Silence(NamedTuple):
    """A silence: alerts whose labels match every matcher are not notified between start and end."""

    id: int
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime

    def active(self, now: datetime) -> bool:
        """Tell whether the silence applies at ``now``."""
        return self.starts_at <= now < self.ends_at

    def status(self, now: datetime) -> str:
        """Return pending, active or expired."""
        return "pending" if now < self.starts_at else ("active" if now < self.ends_at else "expired")

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Tell whether the silence's matchers all hold for ``labels``."""
        return matches_all(self.matchers, labels)


_COLUMNS = "id, matchers, starts_at, ends_at, created_by, comment, created_at"


def _row(row: tuple[Any, ...]) -> Silence:
    return Silence(row[0], tuple(parse_matchers([row[1]])), row[2], row[3], row[4], row[5], row[6])


def list_silences(con: Any, now: datetime, *, expired: bool = False) -> list[Silence]:
    """Return silences not yet expired at ``now`` (all of them with ``expired=True``), newest first."""
    where = "" if expired else "WHERE ends_at > ?"
    params = [] if expired else [now]
    rows = con.execute(bind(f"SELECT {_COLUMNS} FROM silences {where} ORDER BY id DESC", params)).fetchall()
    return [_row(r) for r in rows]


def active_silences(con: Any, now: datetime) -> list[Silence]:
    """Return the silences in force at ``now``."""
    return [s for s in list_silences(con, now) if s.active(now)]


def create_silence(
    con: duckdb.DuckDBPyConnection, matchers: Sequence[Matcher], *, starts_at: datetime, duration: timedelta,
    created_by: str, comment: str, now: datetime,
) -> Silence:
    """Insert a silence and return it; it needs at least one matcher, an author and a comment."""
    if not matchers:
        raise MatcherError("a silence needs at least one matcher, e.g. -m 'host=web1'")
    if len(matchers) > MAX_MATCHERS:
        raise MatcherError(f"a silence takes at most {MAX_MATCHERS} matchers, got {len(matchers)}")
    if duration <= timedelta(0):
        raise InvalidRequestError("a silence must last longer than 0 s, e.g. --for 2h")
    if not created_by.strip() or not comment.strip():
        raise InvalidRequestError("a silence needs --by NAME and --comment TEXT (who silenced what, and why)")
    (next_id,) = con.execute("SELECT coalesce(max(id), 0) + 1 FROM silences").fetchone() or (1,)
    text = ", ".join(str(m) for m in matchers)
    silence = Silence(int(next_id), tuple(matchers), starts_at, starts_at + duration, created_by, comment, now)
    con.execute(bind(
        "INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [silence.id, text, silence.starts_at, silence.ends_at, created_by, comment, now, now],
    ))
    return silence


def expire_silence(con: duckdb.DuckDBPyConnection, silence_id: int, now: datetime) -> Silence:
    """End silence ``silence_id`` at ``now`` (it stays listed as expired) and return it."""
    rows = con.execute(bind(f"SELECT {_COLUMNS} FROM silences WHERE id = ?", [silence_id])).fetchall()
    if not rows:
        raise AlertNotFoundError(f"no silence with id {silence_id}; list them with `monitorkit alerts silences`")
    silence = _row(rows[0])
    if silence.ends_at > now:
        con.execute(bind("UPDATE silences SET ends_at = ?, updated_at = ? WHERE id = ?", [now, now, silence_id]))
        silence = silence._replace(ends_at=now)
    return silence


def silenced_by(silences: Iterable[Silence], labels: Mapping[str, str], now: datetime) -> int | None:
    """Return the id of the first active silence matching ``labels``, or None."""
    for s in silences:
        if s.active(now) and s.matches(labels):
            return s.id
    return None
