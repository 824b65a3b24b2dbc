//! The scenarios: one run of one scenario on a fresh server, and what the
//! scenarios share (their metrics and how their client tasks end). Each
//! scenario, and the callgrind mode of `cpu`, has its own file.

mod callgrind;
mod connect;
mod cpu;
mod idle;
mod latency;

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::args::{Args, Scenario, Target};
use crate::server::Server;
use crate::Res;

const SCENARIO_TIMEOUT: Duration = Duration::from_secs(240);

/// One scenario's measurements: metric name → value.
pub type Metrics = BTreeMap<&'static str, f64>;

/// Runs `scenario` once on a server of its own, started and stopped here.
pub async fn run(args: &Args, target: Target, scenario: Scenario) -> Res<Metrics> {
    let server = Server::spawn(args, target).await?;
    let result = timeout(SCENARIO_TIMEOUT, async {
        match scenario {
            Scenario::Cpu => cpu::run(args, &server).await,
            Scenario::Idle => idle::run(args, &server).await,
            Scenario::Latency => latency::run(args, &server).await,
            Scenario::Connect => connect::run(args, &server).await,
        }
    })
    .await
    .unwrap_or_else(|_| Err(format!("scenario did not finish in {SCENARIO_TIMEOUT:?}")));
    let log = server.log.clone();
    let mut server = server;
    let result = match (result, server.check_alive()) {
        (Err(e), Err(dead)) => Err(format!("{e}; {dead}")),
        (r, _) => r,
    };
    server.stop().await;
    // Let the kernel reap the sockets of the last run before the next one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    result.map_err(|e| format!("{e} (server log: {})", log.display()))
}

/// The error of the first task that ended (they only end by failing).
async fn first_failure(tasks: &mut [JoinHandle<Res<()>>]) -> Option<String> {
    for h in tasks.iter_mut() {
        if h.is_finished() {
            return Some(match h.await {
                Ok(Ok(())) => "a client task ended early".into(),
                Ok(Err(e)) => format!("client: {e}"),
                Err(e) => format!("client task: {e}"),
            });
        }
    }
    None
}

/// Aborts every client task; fails with the first one that had ended.
async fn stop_tasks(tasks: &mut [JoinHandle<Res<()>>]) -> Res<()> {
    let failed = first_failure(tasks).await;
    for h in tasks.iter() {
        h.abort();
    }
    failed.map_or(Ok(()), Err)
}
