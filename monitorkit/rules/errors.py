"""Typed errors of the rule engine, alerting and health checks."""

from __future__ import annotations

from monitorkit.errors import MonitorkitError


class RuleError(MonitorkitError):
    """A rule file cannot be used: bad header, bad SQL or wrong columns."""


class RuleFileError(RuleError, ValueError):
    """A rule file's header or SQL text is malformed."""


class RuleEvalError(RuleError):
    """A rule failed when evaluated: SQL error, wrong columns or over its time budget."""


class RuleTimeoutError(RuleEvalError):
    """A rule ran past its time budget and was interrupted."""


class UnknownRuleError(RuleError, KeyError):
    """No rule with that name is loaded."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown rule"


class AlertingConfigError(MonitorkitError, ValueError):
    """The [alerting] section of monitorkit.toml is invalid."""


class MatcherError(AlertingConfigError):
    """A label matcher such as ``host=web1`` or ``alertname=~cpu.*`` is malformed."""


class AlertNotFoundError(MonitorkitError, KeyError):
    """No alert or silence has that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class RuleTestError(MonitorkitError):
    """A rule unit-test file (TOML) is malformed."""


class InvalidRequestError(MonitorkitError, ValueError):
    """An ack, silence or heartbeat request is incomplete or invalid."""
