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
)

__all__ = [
    "Keyring", "Policy", "ScalarFunction", "register", "functions", "register_policy_view",
    "tokenize", "encrypt", "decrypt", "mask", "redact", "generalize", "scrub",
    "apply", "check", "errors", "CloaklineError", "PolicyError", "PlanError", "MissingKey",
    "PrivacyNotMet", "DataError", "UsageError",
]


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
    return _native.functions(keyring or Keyring.empty())


def register(ctx, keyring=None):
    """Register every cloakline SQL function on a ``datafusion.SessionContext``."""
    datafusion = _datafusion()
    for f in functions(keyring):
        ctx.register_udf(datafusion.udf(f))


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
    keyring = keyring or Keyring.empty()
    values, back = _arrow(values)
    if isinstance(values, pa.ChunkedArray):
        chunks = [pa.array(_native.call(name, keyring, c, args)) for c in values.chunks]
        if chunks:
            return pa.chunked_array(chunks)
        return values
    return back(pa.array(_native.call(name, keyring, values, args)))


def tokenize(values, key, key_id, domain=None, length=None):
    """Keyed deterministic tokens (HMAC-SHA256), as SQL ``tokenize``."""
    return _call("tokenize", key, values, key_id, domain, length)


def encrypt(values, key, key_id, domain=None):
    """AES-256-GCM envelopes, as SQL ``encrypt``."""
    return _call("encrypt", key, values, key_id, domain)


def decrypt(values, key, domain=None):
    """The plaintext of ``encrypt``'s envelopes, as SQL ``decrypt``."""
    return _call("decrypt", key, values, domain)


def mask(values, keep_first=0, keep_last=0, mask_char=None):
    """Hide all but the first/last characters (graphemes), as SQL ``mask``."""
    return _call("mask", None, values, keep_first, keep_last, mask_char)


def redact(values, replacement=None):
    """Replace every value, as SQL ``redact``."""
    return _call("redact", None, values, replacement)


def generalize(values, spec):
    """Coarsen values (``"prefix:3"``, ``"date:year"``, …), as SQL ``generalize``."""
    return _call("generalize", None, values, spec)


def scrub(values, key=None, replace_with=None, key_id=None, recognizers=None):
    """Find and replace personal data in free text, as SQL ``scrub``."""
    return _call("scrub", key, values, replace_with, key_id, recognizers)


def apply(policy, input, output, keyring=None, **options):
    """Run a policy over a file, directory or object-store prefix, as ``cloakline apply``.
    Returns the run summary (what ``--json`` prints) as a dict."""
    return _json.loads(_native.apply(policy, input, output, keyring, **options))


def check(policy, input, keyring=None, **options):
    """Measure an input against the policy's privacy models, as ``cloakline check``.
    Returns the report as a dict (``passes`` says whether the models are met)."""
    return _json.loads(_native.check(policy, input, keyring, **options))
