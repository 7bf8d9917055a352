//! Starting a scheduler or an executor with cloakline inside, and connecting a client.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::default_session_builder;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};

use super::{LogicalCodec, NodeCodec, PhysicalCodec, StoreRegistry};
use crate::error::{Error, Result};
use crate::io::store::StorageOptions;
use crate::keys::Keyring;

/// A cluster failure, for people: which process, what failed.
fn cluster_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Cluster {
        scheduler: what.to_string(),
        message: e.to_string(),
    }
}

/// A session with cloakline's functions bound to `keyring` and stores from `registry`.
fn session_state(
    config: SessionConfig,
    keyring: Arc<Keyring>,
    registry: Arc<StoreRegistry>,
) -> datafusion::common::Result<SessionState> {
    let runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(registry)
        .build_arc()?;
    let mut state = SessionStateBuilder::new_from_existing(default_session_builder(config)?)
        .with_runtime_env(runtime)
        .build();
    // `register_udf` adds to the built state; the builder's setter would replace the list.
    for udf in crate::sql::functions(keyring) {
        state.register_udf(Arc::new(udf))?;
    }
    Ok(state)
}

/// What `cloakline cluster scheduler` runs with.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub bind: SocketAddr,
    /// The host name executors and clients reach this scheduler by.
    pub external_host: String,
    pub storage: StorageOptions,
    /// Seconds without a heartbeat after which an executor is dead and its tasks re-run.
    pub executor_timeout_seconds: u64,
    /// Executors alive before `/readyz` on the scheduler's port answers 200.
    pub min_executors: usize,
    /// Operators of upper layers that travel in plans (`apply`'s release writer).
    pub nodes: Vec<Arc<dyn NodeCodec>>,
}

/// Run a scheduler until the process ends. It holds no key material.
pub async fn run_scheduler(o: SchedulerOptions) -> Result<()> {
    let keyring = Arc::new(Keyring::planning_only());
    let registry = Arc::new(StoreRegistry::new(o.storage.clone()));
    let ring = Arc::clone(&keyring);
    let config = SchedulerConfig {
        bind_host: o.bind.ip().to_string(),
        bind_port: o.bind.port(),
        external_host: o.external_host.clone(),
        executor_timeout_seconds: o.executor_timeout_seconds,
        min_ready_executors: o.min_executors,
        expire_dead_executor_interval_seconds: o.executor_timeout_seconds.clamp(1, 15),
        override_session_builder: Some(Arc::new(move |c| {
            session_state(c, Arc::clone(&ring), Arc::clone(&registry))
        })),
        override_logical_codec: Some(Arc::new(LogicalCodec::new(Arc::clone(&keyring)))),
        override_physical_codec: Some(Arc::new(
            PhysicalCodec::new(keyring).with_nodes(o.nodes.clone()),
        )),
        ..Default::default()
    };
    tracing::info!(bind = %o.bind, "cluster: scheduler starting");
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| cluster_error("starting the scheduler", e))?;
    start_server(cluster, o.bind, Arc::new(config))
        .await
        .map_err(|e| cluster_error(&format!("scheduler on {}", o.bind), e))
}

/// What `cloakline cluster executor` runs with.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub scheduler_host: String,
    pub scheduler_port: u16,
    /// Address to listen on, and the host name others reach this executor by.
    pub bind_host: String,
    pub external_host: Option<String>,
    /// Arrow Flight port (results and shuffles) and gRPC port.
    pub flight_port: u16,
    pub grpc_port: u16,
    /// Where shuffle files go; a scratch directory by default.
    pub work_dir: Option<PathBuf>,
    /// Concurrent tasks.
    pub task_slots: usize,
    pub keyring: Arc<Keyring>,
    pub storage: StorageOptions,
    /// Seconds between heartbeats to the scheduler.
    pub heartbeat_seconds: u64,
    /// Operators of upper layers that travel in plans, built with this executor's keyring.
    pub nodes: Vec<Arc<dyn NodeCodec>>,
}

/// Run an executor until the process ends (or the scheduler goes away).
pub async fn run_executor(o: ExecutorOptions) -> Result<()> {
    let registry = Arc::new(StoreRegistry::new(o.storage.clone()));
    let state = session_state(
        SessionConfig::new_with_ballista(),
        Arc::clone(&o.keyring),
        Arc::clone(&registry),
    )
    .map_err(|e| cluster_error("preparing the executor", e))?;
    let scratch;
    let work_dir = match &o.work_dir {
        Some(d) => d.clone(),
        None => {
            scratch = crate::io::ScratchDir::create()?;
            scratch.path().to_path_buf()
        }
    };
    let wd = work_dir.clone();
    let stores = Arc::clone(&registry);
    let config = ExecutorProcessConfig {
        bind_host: o.bind_host.clone(),
        external_host: o.external_host.clone(),
        port: o.flight_port,
        grpc_port: o.grpc_port,
        scheduler_host: o.scheduler_host.clone(),
        scheduler_port: o.scheduler_port,
        vcores: o.task_slots.max(1),
        work_dir: Some(work_dir.display().to_string()),
        executor_heartbeat_interval_seconds: o.heartbeat_seconds.max(1),
        override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(&state))),
        override_runtime_producer: Some(Arc::new(move |_| {
            RuntimeEnvBuilder::new()
                .with_temp_file_path(wd.clone())
                .with_object_store_registry(Arc::clone(&stores) as _)
                .build_arc()
        })),
        override_logical_codec: Some(Arc::new(LogicalCodec::new(Arc::clone(&o.keyring)))),
        override_physical_codec: Some(Arc::new(
            PhysicalCodec::new(Arc::clone(&o.keyring)).with_nodes(o.nodes.clone()),
        )),
        ..Default::default()
    };
    tracing::info!(scheduler = %format!("{}:{}", o.scheduler_host, o.scheduler_port), flight = o.flight_port, "cluster: executor starting");
    start_executor_process(Arc::new(config)).await.map_err(|e| {
        cluster_error(
            &format!(
                "executor (scheduler {}:{})",
                o.scheduler_host, o.scheduler_port
            ),
            e,
        )
    })
}

/// A client session whose queries run on the scheduler at `url` (`df://host:port`), with
/// cloakline's functions bound to `keyring` (planning and checks happen here too; the
/// executors transform with their own keyrings).
pub async fn connect(
    url: &str,
    keyring: Arc<Keyring>,
    storage: &StorageOptions,
) -> Result<SessionContext> {
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| u.scheme() == "df" && u.host().is_some());
    if parsed.is_none() {
        return Err(Error::Usage(format!(
            "--cluster {url}: expected df://HOST:PORT (the scheduler's address)"
        )));
    }
    let registry = Arc::new(StoreRegistry::new(storage.clone()));
    let config = SessionConfig::new_with_ballista()
        .with_ballista_logical_extension_codec(Arc::new(LogicalCodec::new(Arc::clone(&keyring))))
        .with_ballista_physical_extension_codec(Arc::new(PhysicalCodec::new(Arc::clone(&keyring))));
    let runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(registry)
        .build_arc()
        .map_err(|e| cluster_error("preparing the client", e))?;
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_runtime_env(runtime)
        .build();
    let ctx = SessionContext::remote_with_state(url, state)
        .await
        .map_err(|e| cluster_error(url, e))?;
    // After the upgrade to a remote state: it replaces the function list. Key ids only: the
    // client's optimizer must not fold a keyed function with the client's keys.
    crate::sql::register(&ctx, Arc::new(keyring.ids_only()));
    Ok(ctx)
}

/// Run a physical plan built here (one holding operators with no logical form, such as
/// `apply`'s release writer) on the scheduler at `url`, in the session of `ctx` (from
/// [`connect`]). The plan travels with `nodes` besides the usual codecs.
pub async fn submit_physical(
    url: &str,
    ctx: &SessionContext,
    plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    keyring: Arc<Keyring>,
    nodes: Vec<Arc<dyn NodeCodec>>,
) -> Result<datafusion::execution::SendableRecordBatchStream> {
    use ballista_core::extension::SessionConfigExt as _;
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| u.scheme() == "df" && u.host().is_some())
        .ok_or_else(|| {
            Error::Usage(format!(
                "--cluster {url}: expected df://HOST:PORT (the scheduler's address)"
            ))
        })?;
    let host = parsed.host_str().unwrap_or_default();
    let scheduler = format!("http://{host}:{}", parsed.port().unwrap_or(50050));
    let config = ctx.copied_config();
    let codec = PhysicalCodec::new(keyring).with_nodes(nodes);
    ballista_core::execution_plans::execute_physical_plan::<
        datafusion_proto::protobuf::PhysicalPlanNode,
    >(
        scheduler,
        &config.ballista_config(),
        plan,
        &codec,
        ctx.session_id(),
        config,
    )
    .await
    .map_err(|e| cluster_error(url, e))
}
