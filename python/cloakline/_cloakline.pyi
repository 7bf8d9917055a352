"""Type stubs of the native module (Rust, pyo3)."""

from typing import Any, Optional, Sequence

DATAFUSION_MAJOR: int
__version__: str

class Keyring:
    """A keyring loaded in Rust: ids and fingerprints are visible, key bytes never."""
    @staticmethod
    def load(path: str) -> "Keyring": ...
    @staticmethod
    def empty() -> "Keyring": ...
    def ids(self) -> list[str]: ...
    @property
    def is_demo(self) -> bool: ...

class Policy:
    """A loaded and validated policy."""
    @staticmethod
    def load(path: str) -> "Policy": ...
    @staticmethod
    def from_yaml(text: str, source: str = "<string>") -> "Policy": ...
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def source(self) -> str: ...

class ScalarFunction:
    """A cloakline SQL function for `datafusion.udf(...)` (an FFI_ScalarUDF capsule)."""
    @property
    def name(self) -> str: ...
    def __datafusion_scalar_udf__(self) -> object: ...

class ArrowArray:
    """A result array; `pyarrow.array(x)` takes it without a copy."""
    def __arrow_c_array__(self, requested_schema: Optional[object] = None) -> tuple[object, object]: ...
    def __len__(self) -> int: ...

def functions(keyring: Keyring) -> list[ScalarFunction]: ...
def call(name: str, keyring: Keyring, values: Any, args: Sequence[Any]) -> ArrowArray: ...
def policy_view_columns(
    policy: Policy, keyring: Keyring, schema: Any, table: str
) -> list[tuple[str, str, Optional[ScalarFunction]]]: ...
def apply(
    policy: Any,
    input: str,
    output: str,
    keyring: Any = None,
    *,
    overwrite: bool = False,
    input_format: Optional[str] = None,
    output_format: Optional[str] = None,
    threads: Optional[int] = None,
    sign_key: Optional[str] = None,
    partition_by: Optional[list[str]] = None,
    zstd_level: int = 1,
    cluster: Optional[str] = None,
    delimiter: Optional[str] = None,
    consent_ledger: Optional[str] = None,
    as_of: Optional[str] = None,
    ledger_memory: Optional[int] = None,
) -> str: ...
def check(
    policy: Any,
    input: str,
    keyring: Any = None,
    *,
    preview: bool = True,
    cluster: Optional[str] = None,
    delimiter: Optional[str] = None,
    consent_ledger: Optional[str] = None,
    as_of: Optional[str] = None,
    ledger_memory: Optional[int] = None,
) -> str: ...
def scan(
    input: str,
    *,
    sample: int = 100_000,
    policy: Any = None,
    draft_policy: Optional[str] = None,
    key_id: str = "k1",
    jurisdictions: Optional[list[str]] = None,
    overwrite: bool = False,
    input_format: Optional[str] = None,
    delimiter: Optional[str] = None,
) -> str: ...
def verify(
    output: str,
    *,
    provenance: Optional[str] = None,
    policy: Optional[str] = None,
    keyring: Any = None,
    public_key: Optional[str] = None,
    require_signature: bool = False,
    delimiter: Optional[str] = None,
    consent_ledger: Optional[str] = None,
) -> str: ...
def report(input: str, *, format: str = "html", output: Optional[str] = None) -> str: ...

class Table:
    """A file or directory read as `apply` reads it, for `SessionContext.register_table`."""
    def __datafusion_table_provider__(self, session: object) -> object: ...

def table(path: str, policy: Optional[Policy] = None, *, delimiter: Optional[str] = None) -> Table: ...
