"""cloakline: policy-driven de-identification for Arrow data, with provenance.

    import cloakline, datafusion, pyarrow as pa
    ring = cloakline.Keyring.load("keys.json")
    ctx = datafusion.SessionContext()
    cloakline.register(ctx, ring)
    cloakline.tokenize(pa.array(["a@x.org", None]), key=ring, key_id="k1", domain="email")

See docs/PYTHON.md.
"""

import json as _json

from . import errors
from ._cloakline import (
    DATAFUSION_MAJOR,
    Keyring,
    Policy,
    ScalarFunction,
    Table,
    __version__,
)
from . import _cloakline as _native
from .errors import (
    CloaklineError,
    DataError,
    MissingKey,
    PlanError,
    PolicyError,
    PrivacyNotMet,
    UsageError,
    VerificationFailed,
)

__all__ = [
    "Keyring", "Policy", "ScalarFunction", "Table", "table", "register", "functions", "register_policy_view",
    "tokenize", "encrypt", "decrypt", "encrypt_deterministic", "fpe", "fpe_decrypt", "mask", "redact", "generalize", "scrub",
    "apply", "check", "scan", "verify", "report", "errors", "CloaklineError", "PolicyError", "PlanError", "MissingKey",
    "PrivacyNotMet", "DataError", "UsageError", "VerificationFailed",
]


def _check_installed_datafusion():
    """At import: an installed `datafusion` of another major cannot take these functions.
    Warn now (the Arrow transforms and jobs still work); `register` and friends refuse."""
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return
    try:
        installed = version("datafusion")
    except PackageNotFoundError:
        return
    if installed.split(".")[0] != str(DATAFUSION_MAJOR):
        import warnings

        warnings.warn(
            f"cloakline speaks the FFI of DataFusion {DATAFUSION_MAJOR}, and the installed "
            f"`datafusion` package is {installed}: its SQL functions and tables cannot be "
            f"registered there (pip install 'datafusion=={DATAFUSION_MAJOR}.*')",
            RuntimeWarning,
            stacklevel=2,
        )


_check_installed_datafusion()


def _datafusion():
    """The `datafusion` module, checked to speak this build's FFI."""
    try:
        import datafusion
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "cloakline's SQL functions need the `datafusion` package: "
            f"pip install 'datafusion=={DATAFUSION_MAJOR}.*'"
        ) from e
    version = getattr(datafusion, "__version__", "0")
    major = int(str(version).split(".")[0])
    if major != DATAFUSION_MAJOR:
        raise ImportError(
            f"cloakline speaks the FFI of DataFusion {DATAFUSION_MAJOR}, and the installed "
            f"`datafusion` package is {version}: pip install 'datafusion=={DATAFUSION_MAJOR}.*'"
        )
    return datafusion


def functions(keyring=None):
    """Every cloakline SQL function bound to ``keyring``, as objects DataFusion takes."""
    _datafusion()
    return _native.functions(keyring or Keyring.empty())


def register(ctx, keyring=None):
    """Register every cloakline SQL function on a ``datafusion.SessionContext``."""
    datafusion = _datafusion()
    for f in functions(keyring):
        ctx.register_udf(datafusion.udf(f))


def table(path, policy=None, *, delimiter=None):
    """``path`` (a file, or a directory of files of one format) read exactly as ``apply``
    reads it (with ``policy``: its ``type:`` declarations, so a ZIP code stays text), for
    ``ctx.register_table(name, cloakline.table(...))``."""
    import os

    _datafusion()  # a table provider of another FFI major must never reach its session
    if isinstance(policy, (str, os.PathLike)):
        policy = Policy.load(os.fspath(policy))
    return _native.table(os.fspath(path), policy, delimiter=delimiter)


def _quote(name):
    return '"' + name.replace('"', '""') + '"'


def register_policy_view(ctx, table, policy, keyring=None, view=None):
    """Register ``view`` (default ``<table>_shared``) over the registered ``table``: the
    policy's output columns, computed by the same kernels as ``apply``."""
    datafusion = _datafusion()
    if isinstance(policy, str):
        policy = Policy.load(policy)
    keyring = keyring or Keyring.empty()
    view = view or f"{table}_shared"
    schema = ctx.table(table).schema()
    columns = _native.policy_view_columns(policy, keyring, schema, table)
    if not columns:
        raise PlanError(
            f"policy {policy.name} leaves no column of {table} in the output", "plan", 2
        )
    select = []
    for source, output, function in columns:
        if function is None:
            select.append(f"{_quote(source)} AS {_quote(output)}")
        else:
            ctx.register_udf(datafusion.udf(function))
            select.append(f"{_quote(function.name)}({_quote(source)}) AS {_quote(output)}")
    df = ctx.sql(f"SELECT {', '.join(select)} FROM {_quote(table)}")
    ctx.register_view(view, df)
    return view


def _arrow(values):
    """``values`` as something speaking the Arrow PyCapsule interface, and how to give the
    result back: pyarrow arrays and chunked arrays, Polars Series."""
    import pyarrow as pa

    if hasattr(values, "to_arrow") and type(values).__module__.startswith("polars"):
        import polars as pl

        name = values.name
        return values.to_arrow(), lambda arr: pl.from_arrow(arr).alias(name)
    if isinstance(values, pa.ChunkedArray):
        return values, None
    if hasattr(values, "__arrow_c_array__"):
        return values, lambda arr: arr
    raise TypeError(
        "expected a pyarrow Array or ChunkedArray or a Polars Series, not "
        f"{type(values).__name__}"
    )


def _keyring(name, key):
    """A keyring argument: a ``Keyring``, a keyring file's path, or None (no keys)."""
    import os

    if key is None:
        return Keyring.empty()
    if isinstance(key, Keyring):
        return key
    if isinstance(key, (str, os.PathLike)):
        return Keyring.load(os.fspath(key))
    raise TypeError(
        f"{name}: key must be a cloakline.Keyring or a keyring file's path, "
        f"not {type(key).__name__}"
    )


def _expect(name, param, value, kind):
    """Refuse an argument of the wrong Python type with a TypeError naming it (None means
    left out)."""
    if value is None:
        return
    ok = isinstance(value, str) if kind is str else (
        isinstance(value, int) and not isinstance(value, bool)
    )
    if not ok:
        what = "a string" if kind is str else "an integer"
        raise TypeError(f"{name}: {param} must be {what}, not {type(value).__name__}")


def _call(name, keyring, values, *args):
    import pyarrow as pa

    args = list(args)
    while args and args[-1] is None:
        args.pop()
    if any(a is None for a in args):
        raise UsageError(
            f"{name}: an optional argument was left out before one that was given; "
            "give the earlier ones too",
            "usage",
            2,
        )
    values, back = _arrow(values)
    if isinstance(values, pa.ChunkedArray):
        chunks = [pa.array(_native.call(name, keyring, c, args)) for c in values.chunks]
        if chunks:
            return pa.chunked_array(chunks)
        return values
    return back(pa.array(_native.call(name, keyring, values, args)))


def tokenize(values, key, key_id, domain=None, length=None):
    """Keyed deterministic tokens (HMAC-SHA256), as SQL ``tokenize``."""
    _expect("tokenize", "key_id", key_id, str)
    _expect("tokenize", "domain", domain, str)
    _expect("tokenize", "length", length, int)
    return _call("tokenize", _keyring("tokenize", key), values, key_id, domain, length)


def encrypt(values, key, key_id, domain=None):
    """AES-256-GCM envelopes, as SQL ``encrypt``."""
    _expect("encrypt", "key_id", key_id, str)
    _expect("encrypt", "domain", domain, str)
    return _call("encrypt", _keyring("encrypt", key), values, key_id, domain)


def decrypt(values, key, domain=None):
    """The plaintext of ``encrypt``'s envelopes, as SQL ``decrypt``."""
    _expect("decrypt", "domain", domain, str)
    return _call("decrypt", _keyring("decrypt", key), values, domain)


def encrypt_deterministic(values, key, key_id, domain=None):
    """AES-SIV envelopes (equal values, equal envelopes), as SQL ``encrypt_deterministic``;
    ``decrypt`` opens them."""
    _expect("encrypt_deterministic", "key_id", key_id, str)
    _expect("encrypt_deterministic", "domain", domain, str)
    return _call("encrypt_deterministic", _keyring("encrypt_deterministic", key), values, key_id, domain)


def fpe(values, key, key_id, domain=None, alphabet=None):
    """NIST FF1 format-preserving encryption over a named alphabet (default ``digits``), as
    SQL ``fpe``."""
    for name, v in (("key_id", key_id), ("domain", domain), ("alphabet", alphabet)):
        _expect("fpe", name, v, str)
    return _call("fpe", _keyring("fpe", key), values, key_id, domain, alphabet)


def fpe_decrypt(values, key, key_id, domain=None, alphabet=None):
    """The inverse of ``fpe`` with the same arguments, as SQL ``fpe_decrypt``."""
    for name, v in (("key_id", key_id), ("domain", domain), ("alphabet", alphabet)):
        _expect("fpe_decrypt", name, v, str)
    return _call("fpe_decrypt", _keyring("fpe_decrypt", key), values, key_id, domain, alphabet)


def mask(values, keep_first=0, keep_last=0, mask_char=None):
    """Hide all but the first/last characters (graphemes), as SQL ``mask``."""
    _expect("mask", "keep_first", keep_first, int)
    _expect("mask", "keep_last", keep_last, int)
    _expect("mask", "mask_char", mask_char, str)
    return _call("mask", Keyring.empty(), values, keep_first, keep_last, mask_char)


def redact(values, replacement=None):
    """Replace every value, as SQL ``redact``."""
    _expect("redact", "replacement", replacement, str)
    return _call("redact", Keyring.empty(), values, replacement)


def generalize(values, spec):
    """Coarsen values (``"prefix:3"``, ``"bin:10"``, ``"breaks:18,30,65"``), as SQL ``generalize``."""
    _expect("generalize", "spec", spec, str)
    return _call("generalize", Keyring.empty(), values, spec)


def scrub(values, key=None, replace_with=None, key_id=None, recognizers=None):
    """Find and replace personal data in free text, as SQL ``scrub``."""
    _expect("scrub", "replace_with", replace_with, str)
    _expect("scrub", "key_id", key_id, str)
    _expect("scrub", "recognizers", recognizers, str)
    return _call("scrub", _keyring("scrub", key), values, replace_with, key_id, recognizers)


def apply(policy, input, output, keyring=None, **options):
    """Run a policy over a file, directory or object-store prefix, as ``cloakline apply``.
    Returns the run summary (what ``--json`` prints) as a dict."""
    return _json.loads(_native.apply(policy, str(input), str(output), keyring, **options))


def check(policy, input, keyring=None, **options):
    """Measure an input against the policy's privacy models, as ``cloakline check``.
    Returns the report as a dict (``meetsModels`` says whether the models are met)."""
    return _json.loads(_native.check(policy, str(input), keyring, **options))


def scan(input, **options):
    """Find personal data per column, as ``cloakline scan``. Returns the report as a dict;
    ``draft_policy=path`` also writes a drafted policy (refused over an existing file unless
    ``overwrite=True``)."""
    return _json.loads(_native.scan(str(input), **options))


def verify(output, **options):
    """Check a release against its provenance, as ``cloakline verify``. Returns the checks
    as a dict; a release that does not match raises ``VerificationFailed`` (its ``result``
    holds the checks)."""
    return _json.loads(_native.verify(str(output), **options))


def report(input, format="html", output=None):
    """The record of an output rendered for a reviewer (``"html"`` or ``"md"``), as
    ``cloakline report``. Returns the text; also writes it to ``output`` when given."""
    return _native.report(str(input), format=format, output=None if output is None else str(output))
