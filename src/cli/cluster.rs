//! `cloakline cluster scheduler|executor`: Ballista processes with cloakline inside
//! (docs/CLUSTER.md).

use super::*;
use cloakline::cluster::{ExecutorOptions, SchedulerOptions};

#[derive(Subcommand)]
pub(crate) enum ClusterCommand {
    /// Start a scheduler. It plans queries with cloakline's functions and holds no keys;
    /// its gRPC port must not be reachable from outside the cluster (docs/CLUSTER.md).
    Scheduler {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:50050", value_name = "HOST:PORT")]
        bind: std::net::SocketAddr,
        /// The host name executors and clients reach this scheduler by (default: the bind
        /// address).
        #[arg(long, value_name = "HOST")]
        external_host: Option<String>,
        /// Seconds without a heartbeat before an executor is declared lost and its tasks run
        /// elsewhere.
        #[arg(long, default_value_t = 30, value_name = "SECONDS")]
        executor_timeout: u64,
        /// Executors that must be alive before the scheduler reports ready (`GET /readyz`
        /// on its port answers 200), for orchestrators' readiness probes.
        #[arg(long, default_value_t = 1, value_name = "N")]
        min_executors: usize,
    },
    /// Start an executor. It transforms with its own --keyring (mount it as a secret); key
    /// material never travels in plans.
    Executor {
        /// The scheduler's address.
        #[arg(long, value_name = "HOST:PORT")]
        scheduler: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1", value_name = "HOST")]
        bind: String,
        /// The host name the scheduler and other executors reach this one by.
        #[arg(long, value_name = "HOST")]
        external_host: Option<String>,
        /// Arrow Flight port (results and shuffles).
        #[arg(long, default_value_t = 50051, value_name = "PORT")]
        flight_port: u16,
        /// gRPC port (tasks pushed by the scheduler).
        #[arg(long, default_value_t = 50052, value_name = "PORT")]
        grpc_port: u16,
        /// Directory for shuffle files (default: a scratch directory removed on exit).
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
        /// Tasks run at once (default: one per core).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
        task_slots: Option<u64>,
        /// Seconds between heartbeats to the scheduler.
        #[arg(long, default_value_t = 5, value_name = "SECONDS")]
        heartbeat: u64,
        #[command(flatten)]
        keyring: KeyringArg,
    },
}

pub(crate) fn run(command: ClusterCommand, cancel: &Cancel) -> Result<()> {
    let rt = runtime()?;
    let cancelled = {
        let cancel = cancel.clone();
        async move {
            while !cancel.is_cancelled() {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    };
    let serve = async {
        match command {
            ClusterCommand::Scheduler {
                bind,
                external_host,
                executor_timeout,
                min_executors,
            } => {
                let o = SchedulerOptions {
                    bind,
                    external_host: external_host.unwrap_or_else(|| bind.ip().to_string()),
                    storage: storage(),
                    executor_timeout_seconds: executor_timeout,
                    min_executors,
                    // Plans only: a scheduler holds no key material.
                    nodes: cloakline::jobs::apply::cluster::cluster_nodes(
                        Arc::new(cloakline::keys::Keyring::planning_only()),
                        storage(),
                    ),
                };
                errln!("cluster scheduler listening on {bind}");
                cloakline::cluster::run_scheduler(o).await
            }
            ClusterCommand::Executor {
                scheduler,
                bind,
                external_host,
                flight_port,
                grpc_port,
                work_dir,
                task_slots,
                heartbeat,
                keyring,
            } => {
                let (host, port) = scheduler
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
                    .ok_or_else(|| {
                        Error::Usage(format!("--scheduler {scheduler}: expected HOST:PORT"))
                    })?;
                let path = keyring.keyring.ok_or_else(|| {
                    Error::Usage(
                        "an executor transforms with its own keys: pass --keyring FILE (or \
                         CLOAKLINE_KEYRING)"
                            .into(),
                    )
                })?;
                let keyring = Arc::new(load_keyring(&path)?);
                let o = ExecutorOptions {
                    scheduler_host: host,
                    scheduler_port: port,
                    bind_host: bind.clone(),
                    external_host: external_host.or(Some(bind)),
                    flight_port,
                    grpc_port,
                    work_dir,
                    task_slots: task_slots
                        .map(|n| n as usize)
                        .unwrap_or_else(cloakline::engine::default_threads),
                    keyring: Arc::clone(&keyring),
                    storage: storage(),
                    heartbeat_seconds: heartbeat,
                    nodes: cloakline::jobs::apply::cluster::cluster_nodes(keyring, storage()),
                };
                errln!("cluster executor: flight port {flight_port}, scheduler {scheduler}");
                let r = cloakline::cluster::run_executor(o).await;
                // Ballista returns when the scheduler stops the executor (e.g. heartbeats
                // later than --executor-timeout): say so rather than exit silently.
                if r.is_ok() {
                    errln!(
                        "cluster executor: stopped (the scheduler ended it, e.g. after missed \
                         heartbeats, or it shut down); start it again to rejoin"
                    );
                }
                r
            }
        }
    };
    rt.block_on(async {
        tokio::select! {
            r = serve => r,
            _ = cancelled => Ok(()),
        }
    })
}
