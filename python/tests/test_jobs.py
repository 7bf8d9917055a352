"""scan, verify and report from Python: the CLI's jobs, their results as dicts, their
failures as exceptions, and Ctrl-C."""

import json
import shutil
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import cloakline

ROOT = pathlib.Path(os.environ.get("CLOAKLINE_ROOT", pathlib.Path(__file__).resolve().parents[2]))
DEMO = ROOT / "examples" / "demo-keyring.json"
POLICY = ROOT / "policies" / "customers.yaml"
CUSTOMERS = ROOT / "examples" / "customers.csv"


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "c.parquet"
    cloakline.apply(POLICY, CUSTOMERS, out, keyring=DEMO)
    return out


def test_scan_finds_the_personal_columns_and_drafts_a_policy(tmp_path):
    draft = tmp_path / "draft.yaml"
    report = cloakline.scan(CUSTOMERS, sample=1000, draft_policy=draft, jurisdictions=["EU", "CN"])
    kinds = {c["name"]: c for c in report["columns"]}
    assert "email" in kinds and report["rows"] > 0
    text = draft.read_text()
    assert "TODO" in text and "email" in text
    # A reviewed policy is never overwritten by accident.
    with pytest.raises(cloakline.UsageError) as e:
        cloakline.scan(CUSTOMERS, draft_policy=draft)
    assert "draft.yaml" in str(e.value) and "overwrite" in str(e.value)
    assert draft.read_text() == text
    cloakline.scan(CUSTOMERS, draft_policy=draft, overwrite=True, key_id="k9")
    assert "k9" in draft.read_text()
    with pytest.raises(cloakline.UsageError) as e:
        cloakline.scan(CUSTOMERS, draft_policy=tmp_path / "d2.yaml", jurisdictions=["US"])
    assert "EU" in str(e.value)
    assert not (tmp_path / "d2.yaml").exists()


def test_scan_of_a_missing_file_names_it(tmp_path):
    with pytest.raises(cloakline.CloaklineError) as e:
        cloakline.scan(tmp_path / "absent.csv")
    assert "absent.csv" in str(e.value) and e.value.exit_code == 2


def test_verify_passes_a_release_and_fails_a_tampered_one(release, tmp_path):
    result = cloakline.verify(release)
    assert result["passed"] is True
    assert any(c["name"] for c in result["checks"])
    copy = tmp_path / "c.parquet"
    data = bytearray(release.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    (tmp_path / "c.parquet.provenance.json").write_bytes(
        pathlib.Path(str(release) + ".provenance.json").read_bytes()
    )
    with pytest.raises(cloakline.VerificationFailed) as e:
        cloakline.verify(copy)
    assert e.value.result["passed"] is False
    assert any(not c["passed"] and not c["skipped"] for c in e.value.result["checks"])
    assert e.value.exit_code != 0


def test_verify_checks_the_policy_and_the_signature(release, tmp_path):
    assert cloakline.verify(release, policy=str(POLICY))["passed"]
    other = tmp_path / "other.yaml"
    other.write_text(POLICY.read_text() + "\n# edited\n")
    with pytest.raises(cloakline.VerificationFailed):
        cloakline.verify(release, policy=str(other))
    # An unsigned record fails when a signature is required.
    with pytest.raises(cloakline.VerificationFailed):
        cloakline.verify(release, require_signature=True)


def test_report_renders_html_and_markdown_and_writes_only_where_safe(release, tmp_path):
    html = cloakline.report(release)
    assert html.lstrip().lower().startswith("<!doctype html") and "</html>" in html
    md = cloakline.report(release, format="md", output=tmp_path / "r.md")
    assert (tmp_path / "r.md").read_text() == md and md.startswith("#")
    assert "anonymous" not in md.lower().replace("not anonymous", "")
    with pytest.raises(ValueError):
        cloakline.report(release, format="pdf")
    before = release.read_bytes()
    with pytest.raises(cloakline.UsageError):
        cloakline.report(release, output=release)
    assert release.read_bytes() == before


CTRL_C = textwrap.dedent(
    """
    import sys, cloakline, pyarrow as pa, pyarrow.csv as pcsv
    n = int(sys.argv[3])
    ids = pa.array([f"user{i}@example.org" for i in range(n)])
    pcsv.write_csv(pa.table({"email": ids, "note": ids}), sys.argv[1])
    policy = cloakline.Policy.from_yaml(
        "policy: big\\nversion: 1\\ncontroller: Example\\njurisdictions: [EU]\\npurpose: test\\n"
        "fields:\\n"
        "  email: { action: tokenize, key: k1, basis: legitimate_interests }\\n"
        "  note: { action: scrub, basis: legitimate_interests }\\n"
    )
    print("started", flush=True)
    try:
        cloakline.apply(policy, sys.argv[1], sys.argv[2], keyring=sys.argv[4])
    except KeyboardInterrupt as e:
        print("interrupted", type(e).__name__, flush=True)
        sys.exit(130)
    print("finished", flush=True)
    """
)


def test_ctrl_c_cancels_a_job_and_commits_nothing(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(CTRL_C)
    out = tmp_path / "out.parquet"
    p = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "big.csv"), str(out), "2000000", str(DEMO)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout.readline().strip() == "started"
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert "finished" not in stdout, "the job ended before Ctrl-C; give it more rows"
    assert "interrupted KeyboardInterrupt" in stdout, stderr
    assert p.returncode == 130
    # Nothing committed, nothing half-written beside it.
    leftovers = [f for f in os.listdir(tmp_path) if f not in ("job.py", "big.csv")]
    assert leftovers == [], leftovers


def test_the_docs_example_runs(tmp_path):
    """docs/PYTHON.md's example, run as written in a copy of the repository's examples."""
    doc = (ROOT / "docs" / "PYTHON.md").read_text()
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    for d in ("examples", "policies"):
        shutil.copytree(ROOT / d, tmp_path / d)
    r = subprocess.run(
        [sys.executable, "-c", code + "\nprint(len(shared), summary['rowsOut'], checks['passed'])"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    rows, rows_out, passed = r.stdout.split()
    assert rows == rows_out and passed == "True"


def test_a_table_reads_as_apply_reads(tmp_path):
    datafusion = pytest.importorskip("datafusion")
    policy = cloakline.Policy.load(str(POLICY))
    ctx = datafusion.SessionContext()
    ctx.register_table("c", cloakline.table(CUSTOMERS, policy))
    schema = ctx.table("c").schema()
    assert str(schema.field("zip").type) == "string"  # declared `type: string`
    # Without the policy, inference makes it a number, as DataFusion's own CSV reader does.
    ctx.register_table("u", cloakline.table(CUSTOMERS))
    assert str(ctx.table("u").schema().field("zip").type) == "int64"
    n = ctx.sql("SELECT count(*) AS n FROM c").to_arrow_table().column("n")[0].as_py()
    import pyarrow.csv as pcsv

    assert n == pcsv.read_csv(CUSTOMERS).num_rows
    with pytest.raises(cloakline.CloaklineError) as e:
        cloakline.table(tmp_path / "absent.csv")
    assert "absent.csv" in str(e.value)


def test_a_draft_policy_never_replaces_the_scanned_input_nor_takes_a_hostile_key_id(tmp_path):
    data = tmp_path / "c.csv"
    shutil.copy(CUSTOMERS, data)
    before = data.read_bytes()
    with pytest.raises(cloakline.UsageError) as e:
        cloakline.scan(data, draft_policy=data, overwrite=True)
    assert "same file" in str(e.value)
    assert data.read_bytes() == before
    with pytest.raises(cloakline.UsageError) as e:
        cloakline.scan(data, draft_policy=tmp_path / "d.yaml", key_id="k1\nfields: {}")
    assert "key id" in str(e.value)
    assert not (tmp_path / "d.yaml").exists()


def test_consent_ledger_through_python(tmp_path):
    (tmp_path / "data.csv").write_text("id,email\nc1,a@x.com\nc2,b@x.com\nc3,c@x.com\n")
    (tmp_path / "ledger.csv").write_text(
        "subject_id,purpose,event,timestamp\n"
        "c1,p,given,2026-01-01\nc2,p,given,2026-01-01\nc2,p,withdrawn,2026-03-01\n"
    )
    (tmp_path / "p.yaml").write_text(textwrap.dedent("""\
        policy: t
        version: 1
        controller: C
        jurisdictions: [EU]
        purpose: p
        consent: { ledger: ledger.csv, subject: id, purpose: p }
        fields:
          id: { action: keep, basis: contract }
          email: { action: keep, basis: consent }
        """))
    out = tmp_path / "out.csv"
    s = cloakline.apply(tmp_path / "p.yaml", tmp_path / "data.csv", out, as_of="2026-02-01")
    assert s["consent"]["rowsRemovedMissing"] == 1 and s["rowsOut"] == 2
    assert cloakline.verify(out, consent_ledger=str(tmp_path / "ledger.csv"))["passed"]
    s = cloakline.apply(tmp_path / "p.yaml", tmp_path / "data.csv", tmp_path / "later.csv")
    assert s["consent"]["rowsRemovedWithdrawn"] == 1 and s["rowsOut"] == 1
    # A one-byte budget reduces the ledger on disk: the same release.
    s = cloakline.apply(tmp_path / "p.yaml", tmp_path / "data.csv", tmp_path / "disk.csv",
                        ledger_memory=1)
    assert s["consent"]["rowsRemovedWithdrawn"] == 1 and s["rowsOut"] == 1
    assert (tmp_path / "disk.csv").read_bytes() == (tmp_path / "later.csv").read_bytes()
    # Consent keywords for a policy without a `consent:` block would be ignored: refused.
    (tmp_path / "plain.yaml").write_text(
        (tmp_path / "p.yaml").read_text().replace(
            "consent: { ledger: ledger.csv, subject: id, purpose: p }\n", ""
        ).replace("basis: consent", "basis: contract")
    )
    for job in (cloakline.apply, cloakline.check):
        args = (tmp_path / "plain.yaml", tmp_path / "data.csv")
        if job is cloakline.apply:
            args += (tmp_path / "plain-out.csv",)
        with pytest.raises(cloakline.UsageError, match="consent"):
            job(*args, as_of="2026-02-01")
    assert not (tmp_path / "plain-out.csv").exists()
    with pytest.raises(cloakline.errors.ConsentError) as e:
        cloakline.apply(tmp_path / "p.yaml", tmp_path / "data.csv", tmp_path / "x.csv",
                        consent_ledger=str(tmp_path / "missing.csv"))
    assert e.value.exit_code == 1 and not (tmp_path / "x.csv").exists()
    # A policy view cannot enforce the ledger: refused rather than released unchecked.
    datafusion = pytest.importorskip("datafusion")
    ctx = datafusion.SessionContext()
    ctx.register_csv("t", str(tmp_path / "data.csv"))
    with pytest.raises(cloakline.UsageError, match="consent"):
        cloakline.register_policy_view(ctx, "t", str(tmp_path / "p.yaml"))
