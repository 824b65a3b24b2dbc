//! `mpc-wallet simulate`: a whole wallet creation between in-memory nodes
//! through the real core, deterministic for a seed.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use mpc_core::sim::{self, Outcome, SimConfig};
use mpc_protocol::peer::Curve;

pub fn simulate(n: usize, t: u16, curve: Curve, seed: u64, json: bool) -> ExitCode {
    if !(2..=mpc_core::session::MAX_PARTICIPANTS).contains(&n) {
        eprintln!(
            "error: --participants must be between 2 and {}",
            mpc_core::session::MAX_PARTICIPANTS
        );
        return ExitCode::from(2);
    }
    if t < 2 || usize::from(t) > n {
        eprintln!("error: --threshold must be between 2 and --participants ({n})");
        return ExitCode::from(2);
    }
    let mut config = SimConfig::new(n, t, curve, seed);
    config.record = !json;
    let report = sim::run(&config);
    let ok = report.agreed_key().is_some();
    let mut text = String::new();

    if json {
        let mut keys = serde_json::Map::new();
        let mut aborted = serde_json::Map::new();
        for (id, outcome) in &report.outcomes {
            match outcome {
                Outcome::Finished(w) => {
                    keys.insert(id.clone(), w.group_public_key.clone().into());
                }
                Outcome::Aborted(r) => {
                    aborted.insert(id.clone(), r.to_string().into());
                }
                other => {
                    aborted.insert(id.clone(), format!("{other:?}").into());
                }
            }
        }
        let mut out = serde_json::json!({
            "session_id": report.session_id,
            "curve": curve.as_str(),
            "threshold": t,
            "participants": report.node_ids,
            "group_public_key": keys,
        });
        if !aborted.is_empty() {
            out["aborted"] = aborted.into();
        }
        let _ = writeln!(text, "{out}");
    } else {
        text.push_str(&report.render_flow());
        let _ = writeln!(text);
        let _ = writeln!(
            text,
            "{} relayed and {} data-channel messages in {} ms of simulated time (seed {seed}; {} relay duplicates).",
            report.stats.relay_messages,
            report.stats.channel_messages,
            report.end_ms,
            report.stats.relay_duplicated
        );
        for (id, outcome) in &report.outcomes {
            match outcome {
                Outcome::Finished(w) => {
                    let _ = writeln!(
                        text,
                        "{id}: wallet {} (share {} of {n})",
                        w.group_public_key, w.identifier
                    );
                }
                Outcome::Aborted(r) => {
                    let _ = writeln!(text, "{id}: aborted: {r}");
                }
                other => {
                    let _ = writeln!(text, "{id}: {other:?}");
                }
            }
        }
        match report.agreed_key() {
            Some(key) => {
                let _ = writeln!(
                    text,
                    "All {n} nodes agree on the {t}-of-{n} {curve} group key {key}"
                );
            }
            None => {
                let _ = writeln!(text, "The nodes did not agree on a group key.");
            }
        }
    }
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
