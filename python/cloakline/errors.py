"""Exceptions raised by cloakline: one class per kind of failure.

Every message says what failed and what to do; none holds a key byte or a data value.
``kind`` is the stable name the CLI's ``--json`` errors use, ``exit_code`` the CLI's exit
status for the same failure.
"""

import json


class CloaklineError(Exception):
    """Base class of every cloakline failure."""

    def __init__(self, message, kind="internal", exit_code=1, detail=None):
        super().__init__(message)
        self.kind = kind
        self.exit_code = exit_code
        self._detail = detail


class PolicyError(CloaklineError, ValueError):
    """The policy is invalid (with file, line and column in the message)."""


class PlanError(PolicyError):
    """The policy does not fit the data (a missing column, a wrong type)."""


class KeyringError(CloaklineError, ValueError):
    """The keyring cannot be read or is invalid."""


class MissingKey(CloaklineError, KeyError):
    """A key id the policy or function names is not in the keyring."""

    def __str__(self):  # KeyError quotes its argument; a message reads better plain.
        return Exception.__str__(self)


class UsageError(CloaklineError, ValueError):
    """An argument is wrong (an unknown option, a bad combination)."""


class DataError(CloaklineError):
    """The data cannot be read or transformed (a file, a value of the wrong type)."""


class ConsentError(DataError):
    """The consent ledger is missing or unreadable, or refuses the run (an unknown purpose,
    conflicting events, ``on_missing: fail``, no subject matched)."""


class StorageError(CloaklineError, OSError):
    """An object store failed or refused."""


class ClusterError(CloaklineError):
    """A cluster's scheduler or executors failed."""


class VerificationFailed(CloaklineError):
    """The release does not match its provenance; ``result`` holds every check."""

    @property
    def result(self):
        return json.loads(self._detail) if self._detail else None


class Interrupted(CloaklineError, KeyboardInterrupt):
    """The job was cancelled; nothing was committed."""


class InternalError(CloaklineError):
    """A bug in cloakline; please report it."""


class PrivacyNotMet(CloaklineError):
    """The privacy models are not met; ``assessment`` holds what was measured."""

    @property
    def assessment(self):
        return json.loads(self._detail) if self._detail else None


# The CLI's stable error kinds (`--json`'s `kind`), each to its exception class.
_BY_KIND = {
    "policy": PolicyError,
    "rule": PolicyError,
    "plan": PlanError,
    "keyring": KeyringError,
    "missingKey": MissingKey,
    "usage": UsageError,
    "privacy": PrivacyNotMet,
    "storage": StorageError,
    "consent": ConsentError,
    "cluster": ClusterError,
    "verification": VerificationFailed,
    "interrupted": Interrupted,
    "internal": InternalError,
}


def from_kind(message, kind, exit_code, detail=None):
    """The exception for an error of ``kind``: data, transform, io, arrow and parquet
    failures (and any kind added later) are ``DataError``s."""
    return _BY_KIND.get(kind, DataError)(message, kind, exit_code, detail)
