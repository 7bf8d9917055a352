//! The Python door (docs/PYTHON.md): cloakline's SQL functions for the stock `datafusion`
//! wheel through the DataFusion FFI, every transform over Arrow arrays (the Arrow PyCapsule
//! interface, no copies through Python objects), and the jobs. Key material never leaves
//! Rust: a `Keyring` shows ids and fingerprints only.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, make_array};
use arrow::datatypes::{Field, Schema};
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema, from_ffi, to_ffi};
use datafusion::common::ScalarValue;
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF};
use datafusion_ffi::udf::FFI_ScalarUDF;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyTuple};

use cloakline::engine::Cancel;
use cloakline::error::Error;
use cloakline::keys::Keyring;
use cloakline::policy::Policy;

/// The DataFusion major version whose FFI this build speaks.
const DATAFUSION_MAJOR: u32 = 55;

/// A cloakline error as the Python exception of its kind (`cloakline.errors`), with `kind`,
/// and for a privacy failure the assessment (as JSON) for `PrivacyNotMet.assessment`.
fn raise(py: Python<'_>, e: &Error) -> PyErr {
    let assessment = match e {
        Error::Privacy {
            assessment: Some(d),
            ..
        } => d
            .get::<cloakline::privacy::Assessment>()
            .and_then(|a| serde_json::to_string(a).ok()),
        _ => None,
    };
    raise_with(py, e, assessment)
}

/// `raise`, with `detail` (JSON) for the exception's structured part: the assessment of a
/// privacy failure, the checks of a failed verification. The class comes from the error's
/// stable `kind` (`cloakline.errors.from_kind`), the one name the CLI's `--json` uses too.
fn raise_with(py: Python<'_>, e: &Error, detail: Option<String>) -> PyErr {
    raise_parts(py, &e.to_string(), e.kind(), e.exit_code(), detail)
}

/// The exception of `kind` (as `cloakline.errors.from_kind` names them) with `message`.
fn raise_parts(
    py: Python<'_>,
    message: &str,
    kind: &str,
    code: i32,
    detail: Option<String>,
) -> PyErr {
    let made = py
        .import("cloakline.errors")
        .and_then(|m| m.getattr("from_kind"))
        .and_then(|f| f.call1((message, kind, code, detail)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(_) => PyValueError::new_err(message.to_string()),
    }
}

/// A keyring, loaded in Rust. Python sees ids and fingerprints, never key bytes.
#[pyclass(name = "Keyring", module = "cloakline", frozen)]
struct PyKeyring {
    inner: Arc<Keyring>,
}

#[pymethods]
impl PyKeyring {
    /// Load a keyring file (`cloakline keys generate --keyring FILE` writes one).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let ring = Keyring::load(&path).map_err(|e| raise(py, &e))?;
        Ok(PyKeyring {
            inner: Arc::new(ring),
        })
    }

    /// An empty keyring, for functions and jobs that take no key.
    #[staticmethod]
    fn empty() -> Self {
        PyKeyring {
            inner: Arc::new(Keyring::default()),
        }
    }

    /// The key ids, in order.
    fn ids(&self) -> Vec<String> {
        self.inner.ids().map(str::to_string).collect()
    }

    /// Whether it holds the public demo keys (whatever they protect is not protected).
    #[getter]
    fn is_demo(&self) -> bool {
        self.inner.is_demo()
    }

    fn __repr__(&self) -> String {
        let keys: Vec<String> = self
            .inner
            .ids()
            .map(|id| match self.inner.get(id) {
                Ok(k) => format!("{id} (fingerprint {})", k.fingerprint()),
                Err(_) => id.to_string(),
            })
            .collect();
        format!(
            "Keyring(source={:?}, keys=[{}]{})",
            self.inner.source(),
            keys.join(", "),
            if self.inner.is_demo() {
                ", DEMO KEYS"
            } else {
                ""
            }
        )
    }
}

/// A loaded, validated policy.
#[pyclass(name = "Policy", module = "cloakline", frozen)]
struct PyPolicy {
    inner: Arc<Policy>,
}

#[pymethods]
impl PyPolicy {
    /// Load and validate a policy file (YAML).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let p = Policy::load(&path).map_err(|e| raise(py, &e))?;
        Ok(PyPolicy { inner: Arc::new(p) })
    }

    /// Validate policy text; `source` names it in errors.
    #[staticmethod]
    #[pyo3(signature = (text, source = "<string>"))]
    fn from_yaml(py: Python<'_>, text: &str, source: &str) -> PyResult<Self> {
        let p = Policy::from_yaml_str(text, source).map_err(|e| raise(py, &e))?;
        Ok(PyPolicy { inner: Arc::new(p) })
    }

    #[getter]
    fn name(&self) -> String {
        self.inner.name.clone()
    }

    #[getter]
    fn version(&self) -> u64 {
        self.inner.version
    }

    #[getter]
    fn source(&self) -> String {
        self.inner.source.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "Policy(name={:?}, version={}, source={:?})",
            self.inner.name, self.inner.version, self.inner.source
        )
    }
}

/// One cloakline function for `datafusion.udf(...)` / `SessionContext.register_udf`: it
/// hands DataFusion an `FFI_ScalarUDF` capsule.
#[pyclass(name = "ScalarFunction", module = "cloakline", frozen)]
struct PyScalarFunction {
    udf: Arc<ScalarUDF>,
}

#[pymethods]
impl PyScalarFunction {
    #[getter]
    fn name(&self) -> String {
        self.udf.name().to_string()
    }

    fn __datafusion_scalar_udf__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let udf = FFI_ScalarUDF::from(Arc::clone(&self.udf));
        PyCapsule::new_with_value(py, udf, c"datafusion_scalar_udf")
    }

    fn __repr__(&self) -> String {
        format!("ScalarFunction({:?})", self.udf.name())
    }
}

/// Every cloakline SQL function bound to `keyring`.
#[pyfunction]
fn functions(keyring: &PyKeyring) -> Vec<PyScalarFunction> {
    cloakline::sql::functions(Arc::clone(&keyring.inner))
        .into_iter()
        .map(|u| PyScalarFunction { udf: Arc::new(u) })
        .collect()
}

/// An object with `__arrow_c_schema__` as an Arrow schema.
fn import_schema(obj: &Bound<'_, PyAny>) -> PyResult<Schema> {
    let capsule = obj.call_method0("__arrow_c_schema__")?;
    let capsule = capsule.cast_into::<PyCapsule>()?;
    let ptr = capsule.pointer_checked(Some(c"arrow_schema"))?;
    // The capsule keeps the schema alive while it is read.
    let ffi = unsafe { ptr.cast::<FFI_ArrowSchema>().as_ref() };
    Schema::try_from(ffi).map_err(|e| PyTypeError::new_err(format!("not an Arrow schema: {e}")))
}

/// An object with `__arrow_c_array__` (a pyarrow Array, and anything speaking the Arrow
/// PyCapsule interface) as an Arrow array, taking the buffers over without a copy.
fn import_array(obj: &Bound<'_, PyAny>) -> PyResult<(ArrayRef, Field)> {
    if !obj.hasattr("__arrow_c_array__")? {
        return Err(PyTypeError::new_err(
            "expected an Arrow array (pyarrow.Array, or an object with __arrow_c_array__); \
             convert a Polars Series with .to_arrow() or pass it to the cloakline wrapper",
        ));
    }
    let pair = obj.call_method0("__arrow_c_array__")?;
    let pair = pair.cast_into::<PyTuple>()?;
    let schema = pair.get_item(0)?.cast_into::<PyCapsule>()?;
    let array = pair.get_item(1)?.cast_into::<PyCapsule>()?;
    let schema_ptr = schema.pointer_checked(Some(c"arrow_schema"))?;
    let array_ptr = array.pointer_checked(Some(c"arrow_array"))?;
    let ffi_schema = unsafe { schema_ptr.cast::<FFI_ArrowSchema>().as_ref() };
    // Move the array out: the capsule's destructor then releases an empty struct.
    let ffi_array = unsafe {
        std::ptr::replace(
            array_ptr.cast::<FFI_ArrowArray>().as_ptr(),
            FFI_ArrowArray::empty(),
        )
    };
    let field = Field::try_from(ffi_schema)
        .map_err(|e| PyTypeError::new_err(format!("not an Arrow array: {e}")))?;
    let data = unsafe { from_ffi(ffi_array, ffi_schema) }
        .map_err(|e| PyTypeError::new_err(format!("not an Arrow array: {e}")))?;
    // Offsets and child lengths checked before a kernel indexes them: a faulty producer
    // gets an error, not an out-of-bounds read.
    data.validate_data()
        .map_err(|e| PyTypeError::new_err(format!("not a valid Arrow array: {e}")))?;
    Ok((make_array(data), field))
}

/// An Arrow array handed back through the PyCapsule interface (`pyarrow.array(x)` takes it
/// without a copy).
#[pyclass(name = "ArrowArray", module = "cloakline", frozen)]
struct PyArrowExport {
    array: ArrayRef,
}

#[pymethods]
impl PyArrowExport {
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let _ = requested_schema;
        let (array, schema) = to_ffi(&self.array.to_data())
            .map_err(|e| PyValueError::new_err(format!("exporting the result: {e}")))?;
        let schema = PyCapsule::new_with_value(py, schema, c"arrow_schema")?;
        let array = PyCapsule::new_with_value(py, array, c"arrow_array")?;
        PyTuple::new(py, [schema.into_any(), array.into_any()])
    }

    fn __len__(&self) -> usize {
        self.array.len()
    }
}

/// A literal argument of a SQL function from Python: `str`, `int` or `bool`.
fn literal(obj: &Bound<'_, PyAny>) -> PyResult<ScalarValue> {
    if let Ok(b) = obj.extract::<bool>()
        && obj.is_instance_of::<pyo3::types::PyBool>()
    {
        return Ok(ScalarValue::Boolean(Some(b)));
    }
    if let Ok(i) = obj.extract::<i64>() {
        return Ok(ScalarValue::Int64(Some(i)));
    }
    if let Ok(s) = obj.extract::<String>() {
        return Ok(ScalarValue::Utf8(Some(s)));
    }
    Err(PyTypeError::new_err(format!(
        "a function argument must be a str, int or bool, not {}",
        obj.get_type().name()?
    )))
}

/// Run SQL function `name` (bound to `keyring`) over `values` (an Arrow array) with literal
/// `args`: the same kernel as SQL and `apply`, without the GIL.
#[pyfunction]
#[pyo3(signature = (name, keyring, values, args))]
fn call(
    py: Python<'_>,
    name: &str,
    keyring: &PyKeyring,
    values: &Bound<'_, PyAny>,
    args: Vec<Bound<'_, PyAny>>,
) -> PyResult<PyArrowExport> {
    let udf = cloakline::sql::functions(Arc::clone(&keyring.inner))
        .into_iter()
        .find(|u| u.name() == name)
        .ok_or_else(|| PyValueError::new_err(format!("no cloakline function {name:?}")))?;
    let (mut array, mut field) = import_array(values)?;
    // SQL's planner unpacks dictionaries before a function sees them; so does this door.
    if let arrow::datatypes::DataType::Dictionary(_, value) = array.data_type() {
        let value = value.as_ref().clone();
        array = arrow::compute::cast(&array, &value)
            .map_err(|e| PyTypeError::new_err(format!("unpacking a dictionary array: {e}")))?;
        field = field.with_data_type(value);
    }
    let scalars = args.iter().map(literal).collect::<PyResult<Vec<_>>>()?;
    // A key id the keyring lacks is a MissingKey, as for a policy.
    // (The descriptor counts the value as argument 0; `scalars` start after it.)
    let key_arg = cloakline::kernels::descriptor::sql_transform(name)
        .and_then(|t| t.sql)
        .and_then(|sql| sql.key_argument)
        .and_then(|i| i.checked_sub(1));
    if let Some(ScalarValue::Utf8(Some(id))) = key_arg.and_then(|i| scalars.get(i)) {
        keyring
            .inner
            .check_data_key(id)
            .map_err(|e| raise(py, &e))?;
    }
    let result = py.detach(move || {
        let rows = array.len();
        let mut fields = vec![Arc::new(field.with_name("value"))];
        fields.extend(
            scalars
                .iter()
                .enumerate()
                .map(|(i, s)| Arc::new(Field::new(format!("arg{i}"), s.data_type(), true))),
        );
        let refs: Vec<Option<&ScalarValue>> = std::iter::once(None)
            .chain(scalars.iter().map(Some))
            .collect();
        let return_field = udf.return_field_from_args(ReturnFieldArgs {
            arg_fields: &fields,
            scalar_arguments: &refs,
        })?;
        let mut cols = vec![ColumnarValue::Array(array)];
        cols.extend(scalars.into_iter().map(ColumnarValue::Scalar));
        let out = udf.invoke_with_args(ScalarFunctionArgs {
            args: cols,
            arg_fields: fields,
            number_rows: rows,
            return_field,
            config_options: Arc::new(ConfigOptions::default()),
        })?;
        out.into_array(rows)
    });
    match result {
        Ok(array) => Ok(PyArrowExport { array }),
        // A function's own error (a missing key id, a bad argument) says what to fix; the
        // DataFusion wrapping adds nothing for a Python caller.
        Err(e) => match e.find_root() {
            datafusion::error::DataFusionError::External(inner) => {
                if let Some(v) = inner.downcast_ref::<cloakline::sql::ValueError>() {
                    // Failing on the values is about the data, not the call.
                    return Err(raise_parts(py, &v.to_string(), "transform", 1, None));
                }
                match inner.downcast_ref::<Error>() {
                    Some(err) => Err(raise(py, err)),
                    None => Err(raise(py, &Error::Usage(named(name, &inner.to_string())))),
                }
            }
            root => Err(raise(
                py,
                &Error::Usage(named(name, &strip_df(&root.to_string()))),
            )),
        },
    }
}

/// A function's message, led by its name once.
fn named(name: &str, message: &str) -> String {
    if message.starts_with(&format!("{name}:")) {
        message.to_string()
    } else {
        format!("{name}: {message}")
    }
}

/// DataFusion's category prefixes ("Error during planning: ", "Execution error: ") add
/// nothing for a Python caller.
fn strip_df(text: &str) -> String {
    for p in [
        "Error during planning: ",
        "Execution error: ",
        "Internal error: ",
    ] {
        if let Some(rest) = text.strip_prefix(p) {
            return rest.to_string();
        }
    }
    text.to_string()
}

/// The columns of a policy view over a table of `schema`: per output column (input column,
/// output name, function or `None` to keep it), built by the same code as the SQL door.
#[pyfunction]
fn policy_view_columns(
    py: Python<'_>,
    policy: &PyPolicy,
    keyring: &PyKeyring,
    schema: &Bound<'_, PyAny>,
    table: &str,
) -> PyResult<Vec<(String, String, Option<PyScalarFunction>)>> {
    let schema = Arc::new(import_schema(schema)?);
    let cols = cloakline::sql::policy_view_columns(&policy.inner, &keyring.inner, schema, table)
        .map_err(|e| raise(py, &e))?;
    Ok(cols
        .into_iter()
        .map(|c| {
            (
                c.source,
                c.output,
                c.function.map(|u| PyScalarFunction { udf: Arc::new(u) }),
            )
        })
        .collect())
}

/// Run `job` on a Tokio runtime without the GIL, answering Ctrl-C: a KeyboardInterrupt
/// cancels the job (it commits nothing) and is raised once it has stopped.
fn run_job<T: Send + 'static>(
    py: Python<'_>,
    cancel: Cancel,
    job: impl std::future::Future<Output = cloakline::Result<T>> + Send + 'static,
) -> PyResult<T> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| PyValueError::new_err(format!("starting the runtime: {e}")))?;
    let handle = rt.spawn(job);
    let mut interrupted = None;
    loop {
        if handle.is_finished() {
            break;
        }
        py.detach(|| std::thread::sleep(std::time::Duration::from_millis(50)));
        if interrupted.is_none()
            && let Err(e) = py.check_signals()
        {
            cancel.cancel();
            interrupted = Some(e);
        }
    }
    let result = py.detach(|| rt.block_on(handle));
    if let Some(e) = interrupted {
        return Err(e);
    }
    match result {
        Ok(r) => r.map_err(|e| raise(py, &e)),
        Err(_) => Err(raise(
            py,
            &Error::Internal("the job panicked; nothing was written".into()),
        )),
    }
}

fn keyring_of(py: Python<'_>, k: Option<&Bound<'_, PyAny>>) -> PyResult<Arc<Keyring>> {
    match k {
        None => Ok(Arc::new(Keyring::default())),
        Some(k) => {
            if let Ok(r) = k.cast::<PyKeyring>() {
                return Ok(Arc::clone(&r.get().inner));
            }
            let path: PathBuf = k.extract().map_err(|_| {
                PyTypeError::new_err("keyring must be a cloakline.Keyring or a path")
            })?;
            Keyring::load(&path)
                .map(Arc::new)
                .map_err(|e| raise(py, &e))
        }
    }
}

fn policy_of(py: Python<'_>, p: &Bound<'_, PyAny>) -> PyResult<Arc<Policy>> {
    if let Ok(r) = p.cast::<PyPolicy>() {
        return Ok(Arc::clone(&r.get().inner));
    }
    let path: PathBuf = p
        .extract()
        .map_err(|_| PyTypeError::new_err("policy must be a cloakline.Policy or a path"))?;
    Policy::load(&path).map(Arc::new).map_err(|e| raise(py, &e))
}

fn format_of(f: Option<&str>) -> PyResult<Option<cloakline::io::Format>> {
    f.map(|f| {
        f.parse()
            .map_err(|e: cloakline::error::Problem| PyValueError::new_err(e.to_string()))
    })
    .transpose()
}

/// A CSV delimiter: one ASCII character.
fn delimiter_byte(d: Option<char>) -> PyResult<Option<u8>> {
    match d {
        None => Ok(None),
        Some(c) if c.is_ascii() => Ok(Some(c as u8)),
        Some(_) => Err(PyValueError::new_err(
            "delimiter must be one ASCII character",
        )),
    }
}

/// `cloakline apply`: the summary (what `--json` prints), as JSON text.
#[pyfunction]
#[pyo3(signature = (policy, input, output, keyring = None, *, overwrite = false,
    input_format = None, output_format = None, threads = None, sign_key = None,
    partition_by = None, zstd_level = 1, cluster = None, delimiter = None,
    consent_ledger = None, as_of = None, ledger_memory = None))]
#[allow(clippy::too_many_arguments)]
fn apply(
    py: Python<'_>,
    policy: &Bound<'_, PyAny>,
    input: String,
    output: String,
    keyring: Option<&Bound<'_, PyAny>>,
    overwrite: bool,
    input_format: Option<&str>,
    output_format: Option<&str>,
    threads: Option<usize>,
    sign_key: Option<String>,
    partition_by: Option<Vec<String>>,
    zstd_level: i32,
    cluster: Option<String>,
    delimiter: Option<char>,
    consent_ledger: Option<String>,
    as_of: Option<String>,
    ledger_memory: Option<u64>,
) -> PyResult<String> {
    let policy = policy_of(py, policy)?;
    let ring = keyring_of(py, keyring)?;
    let consent = consent_options(py, consent_ledger, as_of, ledger_memory)?;
    let cancel = Cancel::new();
    let mut job = cloakline::jobs::apply::Apply::new(
        policy,
        ring,
        cloakline::io::Location::parse(&input),
        cloakline::io::Location::parse(&output),
    )
    .with_overwrite(overwrite)
    .with_input_format(format_of(input_format)?)
    .with_output_format(format_of(output_format)?)
    .with_sign_key(sign_key)
    .with_partition_by(partition_by.unwrap_or_default())
    .with_zstd_level(zstd_level)
    .with_cluster(cluster)
    .with_consent(consent)
    .with_cancel(cancel.clone());
    if let Some(t) = threads {
        job = job.with_threads(t);
    }
    if let Some(d) = delimiter_byte(delimiter)? {
        job = job.with_explicit_delimiter(d);
    }
    let summary = run_job(py, cancel, job.run())?;
    to_json(&summary)
}

/// The consent keywords of `apply` and `check`.
fn consent_options(
    py: Python<'_>,
    ledger: Option<String>,
    as_of: Option<String>,
    memory: Option<u64>,
) -> PyResult<cloakline::plan::consent::ConsentOptions> {
    Ok(cloakline::plan::consent::ConsentOptions {
        ledger: ledger.as_deref().map(cloakline::io::Location::parse),
        as_of: as_of
            .as_deref()
            .map(cloakline::plan::consent::parse_as_of)
            .transpose()
            .map_err(|e| raise(py, &e))?,
        memory,
    })
}

/// `cloakline check`: the report (what `--json` prints), as JSON text.
#[pyfunction]
#[pyo3(signature = (policy, input, keyring = None, *, preview = true, cluster = None,
    delimiter = None, consent_ledger = None, as_of = None, ledger_memory = None))]
#[allow(clippy::too_many_arguments)]
fn check(
    py: Python<'_>,
    policy: &Bound<'_, PyAny>,
    input: String,
    keyring: Option<&Bound<'_, PyAny>>,
    preview: bool,
    cluster: Option<String>,
    delimiter: Option<char>,
    consent_ledger: Option<String>,
    as_of: Option<String>,
    ledger_memory: Option<u64>,
) -> PyResult<String> {
    let consent = consent_options(py, consent_ledger, as_of, ledger_memory)?;
    let mut read = cloakline::io::ReadOptions::default();
    if let Some(d) = delimiter_byte(delimiter)? {
        read = read.with_explicit_delimiter(d);
    }
    let policy = policy_of(py, policy)?;
    let ring = keyring_of(py, keyring)?;
    let job =
        cloakline::jobs::check::Check::new(policy, ring, cloakline::io::Location::parse(&input))
            .with_preview(preview)
            .with_read_options(read)
            .with_cluster(cluster)
            .with_consent(consent);
    let report = run_job(py, Cancel::new(), job.run())?;
    to_json(&report)
}

fn to_json<T: serde::Serialize>(value: &T) -> PyResult<String> {
    serde_json::to_string(value).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// `cloakline scan`: personal data found per column (what `--json` prints), as JSON text;
/// with `draft_policy`, a drafted policy written there.
#[pyfunction]
#[pyo3(signature = (input, *, sample = 100_000, policy = None, draft_policy = None,
    key_id = "k1", jurisdictions = None, overwrite = false, input_format = None,
    delimiter = None))]
#[allow(clippy::too_many_arguments)]
fn scan(
    py: Python<'_>,
    input: String,
    sample: usize,
    policy: Option<&Bound<'_, PyAny>>,
    draft_policy: Option<PathBuf>,
    key_id: &str,
    jurisdictions: Option<Vec<String>>,
    overwrite: bool,
    input_format: Option<&str>,
    delimiter: Option<char>,
) -> PyResult<String> {
    let mut read = cloakline::io::ReadOptions::default();
    if let Some(d) = delimiter_byte(delimiter)? {
        read = read.with_explicit_delimiter(d);
    }
    let mut job = cloakline::jobs::scan::Scan::new(cloakline::io::Location::parse(&input))
        .with_format(format_of(input_format)?)
        .with_read_options(read)
        .with_sample(sample);
    if let Some(p) = policy {
        job = job.with_recognizers(Arc::clone(&policy_of(py, p)?.recognizers));
    }
    if let Some(d) = draft_policy {
        let jur = jurisdictions.unwrap_or_else(|| vec!["EU".into()]);
        let jur: Vec<&str> = jur.iter().map(String::as_str).collect();
        job = job.with_draft_policy(d, key_id, &jur, overwrite);
    }
    let report = run_job(py, Cancel::new(), job.run())?;
    to_json(&report)
}

/// `cloakline verify`: the checks (what `--json` prints), as JSON text. A release that does
/// not match its record raises `VerificationFailed` carrying the checks.
#[pyfunction]
#[pyo3(signature = (output, *, provenance = None, policy = None, keyring = None,
    public_key = None, require_signature = false, delimiter = None, consent_ledger = None))]
#[allow(clippy::too_many_arguments)]
fn verify(
    py: Python<'_>,
    output: String,
    provenance: Option<String>,
    policy: Option<String>,
    keyring: Option<&Bound<'_, PyAny>>,
    public_key: Option<PathBuf>,
    require_signature: bool,
    delimiter: Option<char>,
    consent_ledger: Option<String>,
) -> PyResult<String> {
    let mut read = cloakline::io::ReadOptions::default();
    if let Some(d) = delimiter_byte(delimiter)? {
        read = read.with_delimiter(d);
    }
    let mut job = cloakline::jobs::verify::Verify::new(cloakline::io::Location::parse(&output))
        .with_read_options(read)
        .require_signature(require_signature);
    if keyring.is_some() {
        job = job.with_keyring(keyring_of(py, keyring)?);
    }
    if let Some(p) = public_key {
        job = job.with_public_key(cloakline::keys::read_public_key(&p).map_err(|e| raise(py, &e))?);
    }
    if let Some(p) = provenance {
        job = job.with_provenance(cloakline::io::Location::parse(&p));
    }
    if let Some(p) = policy {
        job = job.with_policy(cloakline::io::Location::parse(&p));
    }
    if let Some(p) = consent_ledger {
        job = job.with_consent_ledger(cloakline::io::Location::parse(&p));
    }
    let result = run_job(py, Cancel::new(), job.run())?;
    let json = to_json(&result)?;
    if result.passed() {
        Ok(json)
    } else {
        let e = Error::Verification(format!("{output} does not match its provenance"));
        Err(raise_with(py, &e, Some(json)))
    }
}

/// `cloakline report`: the record of an output rendered as `html` or `md`; also written to
/// `output` when given (never over an input, a record or a release's file).
#[pyfunction]
#[pyo3(signature = (input, *, format = "html", output = None))]
fn report(py: Python<'_>, input: String, format: &str, output: Option<String>) -> PyResult<String> {
    let format: cloakline::jobs::report::ReportFormat = format
        .parse()
        .map_err(|e: cloakline::error::Problem| PyValueError::new_err(e.to_string()))?;
    let job = cloakline::jobs::report::Report::new(cloakline::io::Location::parse(&input))
        .with_format(format)
        .with_output(output.as_deref().map(cloakline::io::Location::parse));
    run_job(py, Cancel::new(), job.run())
}

/// A table provider planned in cloakline's own session: a foreign DataFusion session only
/// runs the physical plan, so the scan reads the files exactly as `apply` does whatever the
/// caller's session holds.
#[derive(Debug)]
struct PlannedHere {
    state: datafusion::execution::SessionState,
    inner: Arc<dyn datafusion::catalog::TableProvider>,
}

#[async_trait::async_trait]
impl datafusion::catalog::TableProvider for PlannedHere {
    fn schema(&self) -> arrow::datatypes::SchemaRef {
        self.inner.schema()
    }
    fn table_type(&self) -> datafusion::logical_expr::TableType {
        datafusion::logical_expr::TableType::Base
    }
    async fn scan(
        &self,
        _caller: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        filters: &[datafusion::prelude::Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        self.inner
            .scan(&self.state, projection, filters, limit)
            .await
    }
}

/// A file or directory read as `apply` reads it (the policy's `type:` declarations, the
/// delimiter, Hive partitions), for `SessionContext.register_table`.
#[pyclass(name = "Table", module = "cloakline", frozen)]
struct PyTable {
    provider: Arc<dyn datafusion::catalog::TableProvider>,
    shown: String,
}

#[pymethods]
impl PyTable {
    fn __datafusion_table_provider__<'py>(
        &self,
        py: Python<'py>,
        session: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
        let attr = "__datafusion_logical_extension_codec__";
        let capsule = if session.hasattr(attr)? {
            session.getattr(attr)?.call0()?
        } else {
            session
        };
        let capsule = capsule.cast_into::<PyCapsule>().map_err(|_| {
            PyTypeError::new_err("expected a datafusion SessionContext (its extension codec)")
        })?;
        let ptr = capsule
            .pointer_checked(Some(c"datafusion_logical_extension_codec"))?
            .cast::<FFI_LogicalExtensionCodec>();
        // Safety: `pointer_checked` verified the capsule's name and a non-null pointer; the
        // datafusion wheel stores an initialised codec under that name.
        let codec = unsafe { ptr.as_ref() }.clone();
        let provider = datafusion_ffi::table_provider::FFI_TableProvider::new_with_ffi_codec(
            Arc::clone(&self.provider),
            false,
            Some(runtime()?.handle().clone()),
            codec,
        );
        PyCapsule::new_with_value(py, provider, c"datafusion_table_provider")
    }

    fn __repr__(&self) -> String {
        format!("cloakline.Table({})", self.shown)
    }
}

/// The runtime the tables' scans run on (the FFI calls into it from the caller's threads).
/// A runtime that cannot start (no threads left) is an error, never a panic.
fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RT: std::sync::OnceLock<std::io::Result<tokio::runtime::Runtime>> =
        std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    })
    .as_ref()
    .map_err(|e| PyValueError::new_err(format!("starting the runtime: {e}")))
}

/// `path` (a file, or a directory of files of one format) as a table read as `apply` reads
/// it: with `policy`, its `type:` declarations hold (a ZIP code stays text).
#[pyfunction]
#[pyo3(signature = (path, policy = None, *, delimiter = None))]
fn table(
    py: Python<'_>,
    path: PathBuf,
    policy: Option<&Bound<'_, PyAny>>,
    delimiter: Option<char>,
) -> PyResult<PyTable> {
    let policy = policy.map(|p| policy_of(py, p)).transpose()?;
    let mut read = cloakline::io::ReadOptions::default();
    if let Some(d) = delimiter_byte(delimiter)? {
        read = read.with_explicit_delimiter(d);
    }
    let ctx = datafusion::prelude::SessionContext::new();
    let arg = cloakline::sql::tables::TableArg {
        name: "t".into(),
        path: path.clone(),
    };
    let rt = runtime()?;
    let provider = py
        .detach(|| {
            rt.block_on(async {
                cloakline::sql::tables::register_file(&ctx, &arg, policy.as_deref(), &read).await?;
                ctx.table_provider("t")
                    .await
                    .map_err(|e| Error::Internal(format!("reading back a table: {e}")))
            })
        })
        .map_err(|e| raise(py, &e))?;
    Ok(PyTable {
        provider: Arc::new(PlannedHere {
            state: ctx.state(),
            inner: provider,
        }),
        shown: path.display().to_string(),
    })
}

#[pymodule]
fn _cloakline(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("DATAFUSION_MAJOR", DATAFUSION_MAJOR)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyKeyring>()?;
    m.add_class::<PyPolicy>()?;
    m.add_class::<PyScalarFunction>()?;
    m.add_class::<PyArrowExport>()?;
    m.add_class::<PyTable>()?;
    m.add_function(wrap_pyfunction!(table, m)?)?;
    m.add_function(wrap_pyfunction!(functions, m)?)?;
    m.add_function(wrap_pyfunction!(call, m)?)?;
    m.add_function(wrap_pyfunction!(policy_view_columns, m)?)?;
    m.add_function(wrap_pyfunction!(apply, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(scan, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(report, m)?)?;
    Ok(())
}
