#!/usr/bin/env python3
"""Check a cloakline output from another language: pyarrow reads the Parquet file, and the
tokens and envelopes are verified with the formats of docs/FORMATS.md, independently of the
Rust code (see docs/vectors.py).

usage: check_output.py OUTPUT.parquet INPUT.csv KEYRING.json
"""
import csv
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs"))
from vectors import open_envelope, token  # noqa: E402


def main() -> None:
    out, inp, ring = sys.argv[1:4]
    keys = {k["id"]: bytes.fromhex(k["secret_hex"]) for k in json.load(open(ring))["keys"]}
    table = pq.read_table(out)
    rows = list(csv.DictReader(open(inp, encoding="utf-8")))
    assert table.num_rows == len(rows), (table.num_rows, len(rows))

    meta = pq.read_metadata(out).metadata
    doc = json.loads(meta[b"cloakline.provenance"])
    assert doc["cl:format"] == "cloakline-provenance/v2"
    fields = {f.name: f for f in table.schema}
    assert fields["email"].metadata[b"cloakline.action"] == b"tokenize"

    email = table.column("email").to_pylist()
    cid = table.column("customer_id").to_pylist()
    nid = table.column("national_id").to_pylist()
    for i, r in enumerate(rows):
        if r["email"]:
            assert email[i] == token(keys["k1"], "email", r["email"]), i
        else:
            assert email[i] is None, i
        assert cid[i] == token(keys["k1"], "customer_id", r["customer_id"], 24, "c_"), i
        assert open_envelope(keys["k2"], "national_id", nid[i]).decode() == r["national_id"], i
    print(f"interop: pyarrow read {table.num_rows} rows; tokens and envelopes verified in Python")


if __name__ == "__main__":
    main()
