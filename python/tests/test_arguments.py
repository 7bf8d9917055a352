"""Every Arrow function refuses a wrong argument with the right exception and a message that
names the function and the argument."""

import os
import pathlib

import pyarrow as pa
import pytest

import cloakline

ROOT = pathlib.Path(os.environ.get("CLOAKLINE_ROOT", pathlib.Path(__file__).resolve().parents[2]))
DEMO = ROOT / "examples" / "demo-keyring.json"
S = pa.array(["a@x.org", None, ""])


@pytest.fixture(scope="module")
def ring():
    return cloakline.Keyring.load(str(DEMO))


@pytest.mark.parametrize(
    "call, exc, words",
    [
        (lambda r: cloakline.tokenize(S, key=r, key_id=5), TypeError, ["tokenize", "key_id"]),
        (lambda r: cloakline.tokenize(S, key=r, key_id="k1", length="32"), TypeError, ["length"]),
        (lambda r: cloakline.tokenize(S, key=r, key_id="k1", length=0), cloakline.UsageError, ["tokenize"]),
        (lambda r: cloakline.tokenize(S, key=42, key_id="k1"), TypeError, ["tokenize", "key"]),
        (lambda r: cloakline.tokenize(S, key=None, key_id="k1"), cloakline.MissingKey, ["no keyring", "k1"]),
        (lambda r: cloakline.tokenize(S, key=r, key_id="nope"), cloakline.MissingKey, ["nope", "k1"]),
        (lambda r: cloakline.tokenize(["a"], key=r, key_id="k1"), TypeError, ["pyarrow"]),
        (lambda r: cloakline.encrypt(S, key=r, key_id=["k2"]), TypeError, ["encrypt", "key_id"]),
        (lambda r: cloakline.encrypt(S, key=r, key_id="nope"), cloakline.MissingKey, ["nope"]),
        (lambda r: cloakline.decrypt(pa.array([5]), key=r), cloakline.UsageError, ["decrypt", "string"]),
        (lambda r: cloakline.decrypt(pa.array(["not an envelope"]), key=r), cloakline.CloaklineError, ["decrypt"]),
        (lambda r: cloakline.mask(S, keep_first="1"), TypeError, ["mask", "keep_first"]),
        (lambda r: cloakline.mask(S, keep_first=True), TypeError, ["keep_first"]),
        (lambda r: cloakline.mask(S, keep_last=-1), cloakline.UsageError, ["keep_last", "0 or more"]),
        (lambda r: cloakline.mask(S, mask_char=1), TypeError, ["mask_char"]),
        (lambda r: cloakline.redact(S, replacement=5), TypeError, ["redact", "replacement"]),
        (lambda r: cloakline.generalize(S, 3), TypeError, ["generalize", "spec"]),
        (lambda r: cloakline.generalize(S, "nonsense:3"), cloakline.UsageError, ["generalize", "prefix:N"]),
        (lambda r: cloakline.generalize(pa.array([1.5]), "prefix:3"), cloakline.UsageError, ["Float64"]),
        (lambda r: cloakline.scrub(S, replace_with="bogus"), cloakline.UsageError, ["scrub", "placeholder"]),
        (lambda r: cloakline.scrub(S, replace_with=3), TypeError, ["scrub", "replace_with"]),
    ],
)
def test_a_wrong_argument_raises_a_clear_error(ring, call, exc, words):
    with pytest.raises(exc) as e:
        call(ring)
    text = str(e.value)
    for w in words:
        assert w in text, (w, text)
    # Never a data value in the message.
    assert "a@x.org" not in text


def test_a_keyring_path_works_like_a_keyring(ring):
    by_path = cloakline.tokenize(S, key=str(DEMO), key_id="k1")
    assert by_path.to_pylist() == cloakline.tokenize(S, key=ring, key_id="k1").to_pylist()


def test_jobs_refuse_wrong_options(tmp_path):
    policy = ROOT / "policies" / "customers.yaml"
    data = ROOT / "examples" / "customers.csv"
    with pytest.raises(TypeError):
        cloakline.apply(policy, data, tmp_path / "o.parquet", keyring=DEMO, no_such_option=1)
    with pytest.raises(ValueError):
        cloakline.apply(policy, data, tmp_path / "o.parquet", keyring=DEMO, output_format="xlsx")
    with pytest.raises(ValueError):
        cloakline.check(policy, data, delimiter="ab")
    with pytest.raises(TypeError):
        cloakline.apply(42, data, tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()


def test_every_error_kind_has_its_exception_class():
    e = cloakline.errors
    for kind, cls in [("policy", e.PolicyError), ("rule", e.PolicyError), ("plan", e.PlanError),
                      ("keyring", e.KeyringError), ("missingKey", e.MissingKey),
                      ("usage", e.UsageError), ("privacy", e.PrivacyNotMet),
                      ("storage", e.StorageError), ("cluster", e.ClusterError),
                      ("verification", e.VerificationFailed), ("interrupted", e.Interrupted),
                      ("internal", e.InternalError), ("data", e.DataError),
                      ("transform", e.DataError), ("io", e.DataError), ("parquet", e.DataError)]:
        exc = e.from_kind("message", kind, 2)
        assert type(exc) is cls, kind
        assert exc.kind == kind and exc.exit_code == 2 and str(exc) == "message"


def test_an_array_pyarrow_builds_unchecked_is_refused_not_read(ring):
    import struct

    # pyarrow's from_buffers checks only that the last offset fits the data; these pass that
    # check and break Arrow's rules: offsets that go backwards, and bytes that are not UTF-8.
    backwards = pa.Array.from_buffers(
        pa.string(), 2, [None, pa.py_buffer(struct.pack("<3i", 0, 3, 1)), pa.py_buffer(b"abc")])
    not_utf8 = pa.Array.from_buffers(
        pa.string(), 1, [None, pa.py_buffer(struct.pack("<2i", 0, 3)), pa.py_buffer(b"\xff\xfe\xfd")])
    for bad in (backwards, not_utf8):
        for call in (
            lambda: cloakline.tokenize(bad, key=ring, key_id="k1"),
            lambda: cloakline.mask(bad, keep_last=1),
        ):
            with pytest.raises(TypeError) as e:
                call()
            assert "not a valid Arrow array" in str(e.value)
