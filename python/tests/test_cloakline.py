"""The Python door against the CLI, the published test vectors and the stock datafusion
wheel. The repository root is two levels up; `cloakline` must be installed (maturin)."""

import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cloakline

ROOT = pathlib.Path(os.environ.get("CLOAKLINE_ROOT", pathlib.Path(__file__).resolve().parents[2]))
DEMO = ROOT / "examples" / "demo-keyring.json"
POLICY = ROOT / "policies" / "customers.yaml"
CUSTOMERS = ROOT / "examples" / "customers.csv"


def vectors():
    spec = importlib.util.spec_from_file_location("vectors", ROOT / "docs" / "vectors.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def secret(key_id):
    ring = json.loads(DEMO.read_text())
    return bytes.fromhex(next(k["secret_hex"] for k in ring["keys"] if k["id"] == key_id))


@pytest.fixture(scope="module")
def ring():
    return cloakline.Keyring.load(str(DEMO))


def test_tokens_equal_the_published_construction(ring):
    v = vectors()
    values = ["alice@example.com", "张伟@例子.中国", "", None]
    got = cloakline.tokenize(pa.array(values), key=ring, key_id="k1", domain="email")
    want = [None if x is None else v.token(secret("k1"), "email", x, 32) for x in values]
    assert got.to_pylist() == want


def test_tokens_equal_what_apply_writes(ring, tmp_path):
    out = tmp_path / "c.parquet"
    summary = cloakline.apply(str(POLICY), str(CUSTOMERS), str(out), keyring=ring)
    assert summary["rowsOut"] > 0
    released = pq.read_table(out)
    import pyarrow.csv as pcsv

    # cloakline reads an empty CSV field as null.
    raw = pcsv.read_csv(CUSTOMERS, convert_options=pcsv.ConvertOptions(strings_can_be_null=True))
    emails = raw.column("email").combine_chunks()
    ours = cloakline.tokenize(emails, key=ring, key_id="k1", domain="email")
    assert ours.to_pylist() == released.column("email").to_pylist()


def test_encrypt_then_decrypt_gives_the_input_and_opens_with_the_vectors(ring):
    v = vectors()
    values = pa.array(["110101199003074518", "", "ünïcödé", None])
    env = cloakline.encrypt(values, key=ring, key_id="k2", domain="national_id")
    assert env.null_count == 1
    assert cloakline.decrypt(env, key=ring, domain="national_id").to_pylist() == values.to_pylist()
    opened = v.open_envelope(secret("k2"), "national_id", env[0].as_py()).decode()
    assert opened == "110101199003074518"


def test_sliced_dictionary_and_chunked_inputs(ring):
    base = pa.array(["a", "b", None, "a", "c"])
    sliced = base.slice(1, 3)
    assert cloakline.mask(sliced, keep_last=0).to_pylist() == ["*", None, "*"]
    dictionary = base.dictionary_encode()
    plain = cloakline.tokenize(base, key=ring, key_id="k1", domain="d")
    assert cloakline.tokenize(dictionary, key=ring, key_id="k1", domain="d").to_pylist() == plain.to_pylist()
    chunked = pa.chunked_array([base.slice(0, 2), base.slice(2)])
    got = cloakline.tokenize(chunked, key=ring, key_id="k1", domain="d")
    assert isinstance(got, pa.ChunkedArray)
    assert got.to_pylist() == plain.to_pylist()


def test_polars_series_in_polars_series_out(ring):
    pl = pytest.importorskip("polars")
    s = pl.Series("email", ["alice@example.com", None])
    got = cloakline.tokenize(s, key=ring, key_id="k1", domain="email")
    assert isinstance(got, pl.Series) and got.name == "email"
    want = cloakline.tokenize(pa.array(["alice@example.com", None]), key=ring, key_id="k1", domain="email")
    assert got.to_list() == want.to_pylist()


def test_sql_functions_through_the_datafusion_ffi(ring):
    datafusion = pytest.importorskip("datafusion")
    ctx = datafusion.SessionContext()
    cloakline.register(ctx, ring)
    t = ctx.sql("SELECT tokenize('alice@example.com', 'k1', 'email') AS t").to_arrow_table()
    want = cloakline.tokenize(pa.array(["alice@example.com"]), key=ring, key_id="k1", domain="email")
    assert t.column("t").to_pylist() == want.to_pylist()
    m = ctx.sql("SELECT mask('+49 30 1234', 0, 4) AS m").to_arrow_table()
    assert m.column("m").to_pylist() == ["*******1234"]


def test_policy_view_returns_what_apply_writes(ring, tmp_path):
    datafusion = pytest.importorskip("datafusion")
    out = tmp_path / "c.parquet"
    cloakline.apply(str(POLICY), str(CUSTOMERS), str(out), keyring=ring)
    released = pq.read_table(out)
    # The same table, read as apply reads it.
    ctx = datafusion.SessionContext()
    ctx.register_table("customers", cloakline.table(CUSTOMERS, str(POLICY)))
    policy = cloakline.Policy.load(str(POLICY))
    cloakline.register_policy_view(ctx, "customers", policy, ring, "customers_shared")
    view = ctx.sql("SELECT * FROM customers_shared").to_arrow_table()
    assert view.column_names == released.column_names
    for name in view.column_names:
        if name == "national_id":  # encrypted: fresh nonces; decrypts alike
            a = cloakline.decrypt(view.column(name).combine_chunks(), key=ring, domain="national_id")
            b = cloakline.decrypt(released.column(name).combine_chunks(), key=ring, domain="national_id")
            assert a.to_pylist() == b.to_pylist()
            continue
        assert view.column(name).to_pylist() == released.column(name).to_pylist(), name


def test_check_returns_the_report_as_a_dict():
    report = cloakline.check(
        str(ROOT / "policies" / "adult.yaml"), str(ROOT / "examples" / "adult.csv"), delimiter=";"
    )
    assert report["k"] == 5
    assert report["meetsModels"] in (True, False)
    assert "age" in report["quasiIdentifiers"]


def test_bad_inputs_raise_the_right_exceptions(ring, tmp_path):
    with pytest.raises(cloakline.MissingKey) as e:
        cloakline.tokenize(pa.array(["x"]), key=ring, key_id="nope")
    assert "nope" in str(e.value)
    with pytest.raises(TypeError):
        cloakline.tokenize(["not", "arrow"], key=ring, key_id="k1")
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy: x\nversion: one\n")
    with pytest.raises(cloakline.PolicyError) as e:
        cloakline.Policy.load(str(bad))
    assert "bad.yaml" in str(e.value)
    with pytest.raises(cloakline.CloaklineError) as e:
        cloakline.Keyring.load(str(tmp_path / "missing.json"))
    assert "missing.json" in str(e.value)
    with pytest.raises(cloakline.CloaklineError) as e:
        cloakline.apply(str(POLICY), str(tmp_path / "none.csv"), str(tmp_path / "o.parquet"), keyring=ring)
    assert e.value.exit_code == 2
    with pytest.raises(cloakline.PrivacyNotMet) as e:
        strict = tmp_path / "strict.yaml"
        shutil.copytree(ROOT / "policies" / "adult", tmp_path / "adult")
        strict.write_text(
            (ROOT / "policies" / "adult.yaml").read_text().replace("on_violation: generalize", "on_violation: fail")
        )
        cloakline.apply(
            str(strict), str(ROOT / "examples" / "adult.csv"), str(tmp_path / "a.parquet"), delimiter=";"
        )
    assert e.value.assessment is not None


def test_no_key_bytes_in_reprs_or_messages(ring, tmp_path):
    secrets = [secret(k).hex() for k in ("k1", "k2")]
    texts = [repr(ring), str(ring.ids())]
    for call in (
        lambda: cloakline.tokenize(pa.array(["x"]), key=ring, key_id="nope"),
        lambda: cloakline.decrypt(pa.array(["not an envelope"]), key=ring),
    ):
        with pytest.raises(cloakline.CloaklineError) as e:
            call()
        texts.append(str(e.value))
    for t in texts:
        for s in secrets:
            assert s not in t and s[:16] not in t
    assert "fingerprint" in repr(ring) and "k1" in repr(ring)


def test_a_datafusion_of_another_major_is_refused(monkeypatch):
    datafusion = pytest.importorskip("datafusion")
    monkeypatch.setattr(datafusion, "__version__", "54.1.0")
    with pytest.raises(ImportError) as e:
        cloakline.register(datafusion.SessionContext())
    assert "55" in str(e.value)


def test_a_table_for_another_datafusion_major_is_refused(monkeypatch):
    datafusion = pytest.importorskip("datafusion")
    monkeypatch.setattr(datafusion, "__version__", "56.0.0")
    with pytest.raises(ImportError) as e:
        cloakline.table(CUSTOMERS)
    assert "55" in str(e.value)
    with pytest.raises(ImportError):
        cloakline.functions()


def test_import_warns_about_an_installed_datafusion_of_another_major(tmp_path):
    # A fake `datafusion` 54 distribution ahead on the path: importing cloakline warns.
    dist = tmp_path / "datafusion-54.0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: datafusion\nVersion: 54.0.0\n")
    r = subprocess.run(
        [sys.executable, "-W", "always", "-c", "import cloakline"],
        env={**os.environ, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "DataFusion 55" in r.stderr and "54.0.0" in r.stderr


def test_deterministic_envelopes_equal_cryptography_aes_siv(ring):
    """An independent implementation: `cryptography`'s AESSIV over the documented layout."""
    v = vectors()
    values = ["110101199003074518", "", "Zoë 🚀 身份证", None, "110101199003074518"]
    got = cloakline.encrypt_deterministic(pa.array(values), key=ring, key_id="k2", domain="national_id")
    want = [None if x is None else v.siv_envelope(secret("k2"), "k2", "national_id", x.encode()) for x in values]
    assert got.to_pylist() == want
    assert got[0] == got[4]
    assert cloakline.decrypt(got, key=ring, domain="national_id").to_pylist() == values


def test_fpe_equals_an_ff1_written_from_the_nist_spec(ring):
    """docs/vectors.py's FF1 (which reproduces NIST's samples) against the Rust door."""
    import random

    v = vectors()
    rng = random.Random(7)
    alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    digits = ["".join(rng.choice("0123456789") for _ in range(rng.randint(6, 30))) for _ in range(40)]
    got = cloakline.fpe(pa.array(digits), key=ring, key_id="k1", domain="acct")
    assert got.to_pylist() == [v.fpe(secret("k1"), "acct", d, "0123456789") for d in digits]
    assert cloakline.fpe_decrypt(got, key=ring, key_id="k1", domain="acct").to_pylist() == digits
    words = ["".join(rng.choice(alnum) for _ in range(rng.randint(4, 20))) for _ in range(40)]
    got = cloakline.fpe(pa.array(words), key=ring, key_id="k1", domain="w", alphabet="alphanumeric")
    assert got.to_pylist() == [v.fpe(secret("k1"), "w", x, alnum) for x in words]
    with pytest.raises(cloakline.DataError) as e:
        cloakline.fpe(pa.array(["12345"]), key=ring, key_id="k1")
    assert "too short" in str(e.value) and "12345" not in str(e.value)
