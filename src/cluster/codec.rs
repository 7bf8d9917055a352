//! Plan codecs: Ballista's own, plus cloakline's policy-view columns. A policy column
//! travels as its [`ColumnSpec`] (policy text, column, types; key ids, never keys) and is
//! rebuilt by each process with its own keyring. Everything else is Ballista's.

use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result as DFResult, TableReference};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan, ScalarUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

use crate::keys::Keyring;
use crate::sql::{ColumnSpec, PolicyColumnFunc};

/// Encode a policy column's spec; other functions go by name (an empty buffer).
fn encode_udf(udf: &ScalarUDF, buf: &mut Vec<u8>) -> DFResult<()> {
    let Some(f) = udf.inner().downcast_ref::<PolicyColumnFunc>() else {
        return Ok(());
    };
    let spec = f.spec().ok_or_else(|| {
        DataFusionError::Plan(format!(
            "{}: this policy view's policy cannot be sent to a cluster (it was changed after \
             loading, or its YAML does not convert to JSON, e.g. `.nan` or duplicate keys); \
             load it from its file",
            udf.name()
        ))
    })?;
    buf.extend(spec.to_bytes());
    Ok(())
}

/// Rebuild a policy column with this process's keyring.
fn decode_udf(name: &str, buf: &[u8], keyring: &Keyring) -> DFResult<Arc<ScalarUDF>> {
    match ColumnSpec::from_bytes(buf) {
        Some(Ok(spec)) => PolicyColumnFunc::from_spec(name, spec, keyring)
            .map(|f| Arc::new(ScalarUDF::new_from_impl(f)))
            .map_err(|e| DataFusionError::Plan(e.to_string())),
        Some(Err(e)) => Err(DataFusionError::Plan(format!("{name}: {e}"))),
        None => Err(DataFusionError::Plan(format!(
            "function {name} is not registered here: is this process a cloakline cluster \
             process of the same version?"
        ))),
    }
}

/// The logical codec (client → scheduler).
#[derive(Debug)]
pub struct LogicalCodec {
    inner: BallistaLogicalExtensionCodec,
    keyring: Arc<Keyring>,
}

impl LogicalCodec {
    pub fn new(keyring: Arc<Keyring>) -> Self {
        LogicalCodec {
            inner: BallistaLogicalExtensionCodec::default(),
            keyring,
        }
    }
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> DFResult<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }
    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> DFResult<()> {
        self.inner.try_encode(node, buf)
    }
    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> DFResult<Arc<dyn TableProvider>> {
        self.inner
            .try_decode_table_provider(buf, table_ref, schema, ctx)
    }
    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> DFResult<()> {
        self.inner.try_encode_table_provider(table_ref, node, buf)
    }
    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> DFResult<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }
    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> DFResult<()> {
        self.inner.try_encode_file_format(buf, node)
    }
    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> DFResult<Arc<ScalarUDF>> {
        decode_udf(name, buf, &self.keyring)
    }
    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> DFResult<()> {
        encode_udf(node, buf)
    }
}

/// An operator of a layer above this one (`apply`'s release writer) that travels in
/// physical plans: its bytes start with [`NodeCodec::tag`]. The door that starts a process
/// hands its codecs in, so this layer never depends on the jobs it carries.
pub trait NodeCodec: std::fmt::Debug + Send + Sync {
    /// A prefix no other plan bytes start with (e.g. `b"cloakline-release/1\n"`).
    fn tag(&self) -> &'static [u8];
    /// Encode `node` after the tag, or `Ok(false)` when it is not this codec's.
    fn encode(&self, node: &Arc<dyn ExecutionPlan>, buf: &mut Vec<u8>) -> DFResult<bool>;
    /// Decode bytes that followed the tag.
    fn decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
    ) -> DFResult<Arc<dyn ExecutionPlan>>;
}

/// The physical codec (scheduler → executors).
#[derive(Debug)]
pub struct PhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
    keyring: Arc<Keyring>,
    nodes: Vec<Arc<dyn NodeCodec>>,
}

impl PhysicalCodec {
    pub fn new(keyring: Arc<Keyring>) -> Self {
        PhysicalCodec {
            inner: BallistaPhysicalExtensionCodec::default(),
            keyring,
            nodes: Vec::new(),
        }
    }

    /// Also carry these operators.
    pub fn with_nodes(mut self, nodes: Vec<Arc<dyn NodeCodec>>) -> Self {
        self.nodes = nodes;
        self
    }
}

impl PhysicalExtensionCodec for PhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        for n in &self.nodes {
            if let Some(rest) = buf.strip_prefix(n.tag()) {
                return n.decode(rest, inputs);
            }
        }
        self.inner.try_decode(buf, inputs, ctx, proto_converter)
    }
    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DFResult<()> {
        for n in &self.nodes {
            let start = buf.len();
            buf.extend_from_slice(n.tag());
            if n.encode(&node, buf)? {
                return Ok(());
            }
            buf.truncate(start);
        }
        self.inner.try_encode(node, buf, proto_converter)
    }
    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> DFResult<Arc<ScalarUDF>> {
        decode_udf(name, buf, &self.keyring)
    }
    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> DFResult<()> {
        encode_udf(node, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Key;
    use base64::Engine as _;
    use datafusion::prelude::SessionContext;

    /// Every form key material could take in plan bytes.
    fn secrets(material: [u8; 32], ids: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        let key = Key::from_bytes("k1", material).unwrap();
        let mut raw = vec![material.to_vec()];
        for (action, domain) in ids {
            raw.push(key.subkey(action, domain).to_vec());
        }
        let mut v = Vec::new();
        for r in raw {
            v.push(("raw".into(), r.clone()));
            v.push(("hex".into(), hex::encode(&r).into_bytes()));
            v.push((
                "base64".into(),
                base64::engine::general_purpose::STANDARD
                    .encode(&r)
                    .into_bytes(),
            ));
        }
        v
    }

    #[test]
    fn plans_carry_key_ids_and_never_key_material() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let material: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0xA5);
        let mut ring = Keyring::default();
        ring.insert(Key::from_bytes("k1", material).unwrap())
            .unwrap();
        let ring = Arc::new(ring);
        let policy = crate::policy::Policy::from_yaml_str(
            "policy: t\nversion: 1\ncontroller: C\njurisdictions: [EU]\npurpose: p\nunlisted: error\nfields:\n  email: { action: tokenize, key: k1, basis: contract }\n  phone: { action: encrypt, key: k1, basis: contract }\n  zip: { action: generalize, keep_prefix: 2, basis: contract }\n",
            "t.yaml",
        )
        .unwrap();
        let bytes = rt.block_on(async {
            let ctx = SessionContext::new();
            crate::sql::register(&ctx, Arc::clone(&ring));
            // A file table, as on a cluster (an in-memory table cannot travel).
            let dir = tempfile::tempdir().unwrap();
            let csv = dir.path().join("c.csv");
            std::fs::write(&csv, "email,phone,zip\na@x.org,+1 555,AB345\n").unwrap();
            ctx.register_csv(
                "c",
                csv.to_str().unwrap(),
                datafusion::prelude::CsvReadOptions::new(),
            )
            .await
            .unwrap();
            crate::sql::register_policy_view(&ctx, "c", &policy, &ring, "c_shared")
                .await
                .unwrap();
            let df = ctx
                .sql("SELECT *, tokenize(email, 'k1', 'mail'), encrypt(zip, 'k1') FROM c_shared")
                .await
                .unwrap();
            let plan = df.clone().into_optimized_plan().unwrap();
            let codec = LogicalCodec::new(Arc::clone(&ring));
            let logical =
                datafusion_proto::bytes::logical_plan_to_bytes_with_extension_codec(&plan, &codec)
                    .unwrap();
            let physical = df.create_physical_plan().await.unwrap();
            let pcodec = PhysicalCodec::new(Arc::clone(&ring));
            let physical = datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec(
                physical, &pcodec,
            )
            .unwrap();
            // Both decode again in a process that holds no keys (the scheduler's side).
            let planning = Arc::new(Keyring::planning_only());
            let sched = SessionContext::new();
            crate::sql::register(&sched, Arc::clone(&planning));
            datafusion_proto::bytes::logical_plan_from_bytes_with_extension_codec(
                &logical,
                &sched.task_ctx(),
                &LogicalCodec::new(planning),
            )
            .unwrap();
            (logical.to_vec(), physical.to_vec())
        });
        let (logical, physical) = bytes;
        let text = String::from_utf8_lossy(&logical);
        assert!(
            text.contains("cloakline-policy-column/1"),
            "no policy column spec"
        );
        assert!(text.contains("k1"), "key ids travel");
        let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        for (what, s) in secrets(
            material,
            &[
                ("tokenize", "email"),
                ("tokenize", "mail"),
                ("encrypt", "phone"),
                ("encrypt", "zip"),
            ],
        ) {
            assert!(
                !find(&logical, &s),
                "key material ({what}) in the logical plan"
            );
            assert!(
                !find(&physical, &s),
                "key material ({what}) in the physical plan"
            );
        }
    }
}
