"""The Python half of benches/python.sh: prints `tokenize SECONDS` (1,000,000 strings,
pyarrow array in, array out, best of 7) and `view SECONDS` (the policy view through the
stock datafusion wheel written to Parquet, best of 3)."""

import sys
import time

import datafusion
import pyarrow as pa

import cloakline

rows, data, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ring = cloakline.Keyring.load("examples/demo-keyring.json")
emails = pa.array([f"user{i}@example.org" for i in range(rows)])
best = float("inf")
for _ in range(7):
    t = time.perf_counter()
    got = cloakline.tokenize(emails, key=ring, key_id="k1", domain="email")
    best = min(best, time.perf_counter() - t)
    assert len(got) == rows
print(f"tokenize {best:.6f}")

policy = cloakline.Policy.load("policies/customers.yaml")
best = float("inf")
for _ in range(3):
    t = time.perf_counter()
    ctx = datafusion.SessionContext()
    ctx.register_table("customers", cloakline.table(data, policy))
    cloakline.register_policy_view(ctx, "customers", policy, ring, "customers_shared")
    ctx.sql("SELECT * FROM customers_shared").write_parquet(out, compression="zstd", compression_level=1)
    best = min(best, time.perf_counter() - t)
print(f"view {best:.6f}")
