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
