//! `connect`: connections (TCP + WebSocket upgrade + register + reply) per
//! second, and the server CPU each costs.

use std::time::Instant;

use super::Metrics;
use crate::args::Args;
use crate::client::connect_many;
use crate::server::Server;
use crate::Res;

/// Connections per second: TCP + upgrade + register + reply, bounded concurrency.
pub async fn run(args: &Args, server: &Server) -> Res<Metrics> {
    let t = server.target;
    let ids: Vec<String> = (0..args.connect_count)
        .map(|i| format!("c{i:05}"))
        .collect();
    let c0 = server.cpu_secs()?;
    let t0 = Instant::now();
    let conns = connect_many(t, &server.addrs, &ids, args.connect_concurrency).await?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = server.cpu_secs()? - c0;
    drop(conns);
    Ok(Metrics::from([
        ("connects_per_s", args.connect_count as f64 / secs),
        ("cpu_us_per_connect", cpu * 1e6 / args.connect_count as f64),
    ]))
}
