//! An instance's background work in the cluster: the heartbeat, the
//! sweep of dead instances, and the subscription that delivers other
//! instances' relays and presence here.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tracing::{debug, info, warn};

use super::{timed, Cluster, Unavailable};
use crate::registry::Delivery;
use crate::AppState;

/// The cluster's background work, until shutdown: the subscription
/// (relays for this instance's peers, other instances' joins and leaves),
/// the heartbeat with retried releases, and the sweep of dead instances.
pub async fn run(state: Arc<AppState>, cluster: Arc<Cluster>) {
    let stop = state.shutdown.clone();
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = subscribe(&state, &cluster) => {}
        _ = upkeep(&state, &cluster) => {}
    }
}

async fn upkeep(state: &AppState, cluster: &Cluster) {
    let every = (cluster.config.instance_ttl / 4).max(Duration::from_millis(100));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ok = Instant::now();
    let mut lapsed = false;
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        n += 1;
        match cluster.heartbeat().await {
            Ok(was_alive) => {
                if !was_alive && !lapsed {
                    warn!("this instance's heartbeat had lapsed; disconnecting its clients so they register again");
                    cluster.reset(&state.registry);
                }
                last_ok = Instant::now();
                lapsed = false;
                cluster.healthy.store(true, Ordering::Relaxed);
                cluster.retry_releases().await;
            }
            Err(e) => {
                warn!("heartbeat failed: {e}");
                if !lapsed && last_ok.elapsed() >= cluster.config.instance_ttl {
                    warn!("Redis unreachable for the instance TTL; disconnecting this instance's clients");
                    cluster.healthy.store(false, Ordering::Relaxed);
                    cluster.reset(&state.registry);
                    lapsed = true;
                }
            }
        }
        // Sweeping every other tick is often enough: a dead instance's
        // ids are freed within 1.5 TTL.
        if n % 2 == 0 {
            match cluster.sweep().await {
                Ok(gone) if !gone.is_empty() => {
                    info!(count = gone.len(), "freed the peer ids of dead instances")
                }
                Ok(_) => {}
                Err(e) => debug!("sweep failed: {e}"),
            }
        }
    }
}

async fn subscribe(state: &AppState, cluster: &Cluster) {
    let mine = cluster.key(&["to", &cluster.me]);
    let presence = cluster.key(&["presence"]);
    loop {
        let pubsub = async {
            let mut p = timed(cluster.client.get_async_pubsub()).await?;
            timed(p.subscribe(&mine)).await?;
            timed(p.subscribe(&presence)).await?;
            Ok::<_, Unavailable>(p)
        };
        let pubsub = match pubsub.await {
            Ok(p) => p,
            Err(e) => {
                warn!("cannot subscribe to the cluster's channels: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        debug!(instance = %cluster.me, "subscribed");
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            let Ok(payload) = std::str::from_utf8(msg.get_payload_bytes()) else {
                continue;
            };
            let Some((head, body)) = payload.split_once('\n') else {
                continue;
            };
            if msg.get_channel_name() == presence {
                // Our own joins and leaves reached our watchers directly.
                if head != cluster.me {
                    state.registry.notify_watchers(body.into(), &state.metrics);
                }
            } else {
                deliver_here(state, head, body);
            }
        }
        warn!("lost the cluster subscription; resubscribing");
    }
}

/// A relay another instance published for `to`, one of ours.
fn deliver_here(state: &AppState, to: &str, frame: &str) {
    let m = &state.metrics;
    match state.registry.deliver_routed(to, frame.into(), m) {
        Delivery::Queued => {
            m.messages_relayed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        // The sender's instance already answered; nothing to tell it.
        Delivery::Busy | Delivery::Gone => debug!(%to, "cluster relay not delivered"),
    }
    m.cluster_relays_in
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}
