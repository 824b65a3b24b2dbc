//! How a node's activity is shown: the [`Observer`] callbacks the driver
//! calls, and their three views: progress for a person, the message flow
//! for the demo, nothing (but the final JSON) for `--json`.

use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};
use mpc_core::payload::Review;
use mpc_core::Progress;
use mpc_protocol::peer::{SessionProposal, SignProposal};
use serde_json::Value;

use crate::decide;
use crate::display::sanitize;
pub use crate::display::{describe, describe_sign};

/// What a joiner is asked about a sign proposal.
#[derive(Clone, Debug)]
pub struct SignRequest {
    pub from: String,
    pub proposal: SignProposal,
    /// For a transaction: what it does, as this node decoded it.
    pub review: Option<Review>,
    /// The id of the wallet in this node's keystore.
    pub wallet_id: String,
}

/// A refresh proposal for a wallet in this node's keystore, with what
/// changes as this node sees it.
#[derive(Clone, Debug)]
pub struct RefreshRequest {
    pub from: String,
    pub proposal: mpc_protocol::peer::RefreshProposal,
    pub wallet_id: String,
    /// Wallet participants the refresh leaves out: they lose their share.
    pub removed: Vec<String>,
    /// The wallet's address, which stays.
    pub address: String,
}

impl RefreshRequest {
    /// What the user is asked about, every remote string escaped.
    pub fn describe(&self) -> String {
        let p = &self.proposal;
        let removed = match self.removed.as_slice() {
            [] => "nobody is removed".to_string(),
            [one] => format!("{one} will be removed"),
            many => format!("{} will be removed", many.join(", ")),
        };
        sanitize(&format!(
            "refresh wallet {} from {}: new shares (generation {}) for {}; {removed}; the address stays {}",
            self.wallet_id,
            self.from,
            p.generation + 1,
            p.participants.join(", "),
            self.address
        ))
        .into_owned()
    }
}

/// A repair proposal: this node helps, or is the target.
#[derive(Clone, Debug)]
pub struct RepairRequest {
    pub from: String,
    pub proposal: mpc_protocol::peer::RepairProposal,
    /// The target's identity key is not pinned here: it is new to this
    /// node (a reinstalled device has a new key), or someone pretends.
    pub target_unpinned: bool,
}

impl RepairRequest {
    /// What the user is asked about, every remote string escaped.
    pub fn describe(&self) -> String {
        let p = &self.proposal;
        let warn = if self.target_unpinned {
            format!(
                " WARNING: {}'s identity key is new to this node; compare its fingerprint \
                 out of band before you help",
                p.target
            )
        } else {
            String::new()
        };
        sanitize(&format!(
            "repair from {}: {} rebuild the share of {} in wallet {}.{warn}",
            self.from,
            p.helpers.join(", "),
            p.target,
            p.group_public_key
        ))
        .into_owned()
    }
}

/// Callbacks for whoever shows this node's activity (terminal, demo).
pub trait Observer: Send {
    /// A milestone of the session.
    fn progress(&mut self, me: &str, p: &Progress);
    /// A message this node sent: `to` is `"server"` or a peer id;
    /// `via_channel` tells a data channel from the WebSocket.
    fn sent(&mut self, _me: &str, _to: &str, _via_channel: bool, _json: &str) {}
    /// `peer`'s identity key was pinned for the first time (trust on first
    /// use): show its fingerprint so the user can compare it out of band.
    fn pinned(&mut self, _me: &str, _peer: &str, _key: &mpc_core::PublicKey) {}
    /// Asks the user about a proposal the run's [`decide::Policy`] leaves
    /// to them: a blocking question, which the driver runs on a blocking
    /// thread. Without a person to ask, the answer is no.
    fn prompt(&self) -> Box<dyn FnOnce(SessionProposal) -> bool + Send> {
        Box::new(|_| false)
    }
    /// As [`Observer::prompt`], for a sign proposal whose wallet is in the
    /// keystore.
    fn sign_prompt(&self) -> Box<dyn FnOnce(SignRequest) -> bool + Send> {
        Box::new(|_| false)
    }
    /// As [`Observer::prompt`], for a refresh of a wallet in the keystore.
    fn refresh_prompt(&self) -> Box<dyn FnOnce(RefreshRequest) -> bool + Send> {
        Box::new(|_| false)
    }
    /// As [`Observer::prompt`], for a repair.
    fn repair_prompt(&self) -> Box<dyn FnOnce(RepairRequest) -> bool + Send> {
        Box::new(|_| false)
    }
}

/// Short human text for a milestone, every remote string in it escaped.
pub fn progress_text(p: &Progress) -> Option<String> {
    Some(match p {
        // The only milestone of several lines: escape its fields, keep its
        // own line breaks.
        Progress::NeedsSignDecision {
            from,
            proposal,
            review,
            ..
        } => {
            format!(
                "sign proposal received: {}",
                describe_sign(from, proposal, None, review.as_ref())
            )
        }
        other => sanitize(&other.to_string()).into_owned(),
    })
}

/// The notice for a key pinned on first use, the peer id escaped.
pub fn pinned_text(peer: &str, key: &mpc_core::PublicKey) -> String {
    sanitize(&mpc_core::describe::pinned_text(peer, key)).into_owned()
}

/// Shortens long strings (hex packages, SDP) so a message fits a line.
pub fn abbreviate(json: &str) -> String {
    fn walk(v: &mut Value) {
        match v {
            Value::String(s) if s.chars().count() > 40 => {
                let head: String = s.chars().take(16).collect();
                *s = format!("{head}…({} chars)", s.chars().count());
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            Value::Object(o) => o.values_mut().for_each(walk),
            _ => {}
        }
    }
    match serde_json::from_str::<Value>(json) {
        Ok(mut v) => {
            walk(&mut v);
            v.to_string()
        }
        Err(_) => json.to_string(),
    }
}

/// Terminal output of `create`, `join` and `sign`, and the questions a
/// `join` run asks.
pub struct Terminal {
    bar: Option<ProgressBar>,
}

impl Terminal {
    /// `quiet` (for `--json`) shows no progress.
    pub fn new(quiet: bool) -> Terminal {
        let bar = (!quiet).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {msg}").expect("valid template"),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Terminal { bar }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// A y/N question built from what is asked about; the spinner would
    /// overwrite it, so it pauses while the user answers.
    fn ask<T: 'static>(
        &self,
        question: impl FnOnce(T) -> String + Send + 'static,
    ) -> Box<dyn FnOnce(T) -> bool + Send> {
        let bar = self.bar.clone();
        Box::new(move |about| {
            let question = question(about);
            match bar {
                Some(bar) => bar.suspend(|| decide::confirm(&question)),
                None => decide::confirm(&question),
            }
        })
    }
}

impl Observer for Terminal {
    fn progress(&mut self, me: &str, p: &Progress) {
        if let (Some(bar), Some(text)) = (&self.bar, progress_text(p)) {
            bar.set_prefix(me.to_string());
            bar.println(format!("  {text}"));
            bar.set_message(text);
        }
    }

    fn pinned(&mut self, _me: &str, peer: &str, key: &mpc_core::PublicKey) {
        match &self.bar {
            Some(bar) => bar.println(format!("  {}", pinned_text(peer, key))),
            None => eprintln!("{}", pinned_text(peer, key)),
        }
    }

    fn sent(&mut self, _me: &str, to: &str, _via_channel: bool, json: &str) {
        // The core reports no milestone for sending the proposal itself.
        let proposal = json.contains("\"session_proposal\"") || json.contains("\"sign_proposal\"");
        if let (Some(bar), true) = (&self.bar, proposal) {
            bar.println(format!("  proposal sent to {to}"));
        }
    }

    fn sign_prompt(&self) -> Box<dyn FnOnce(SignRequest) -> bool + Send> {
        self.ask(|req: SignRequest| {
            let what = describe_sign(
                &req.from,
                &req.proposal,
                Some(&req.wallet_id),
                req.review.as_ref(),
            );
            format!("Sign? {what}\n")
        })
    }

    fn prompt(&self) -> Box<dyn FnOnce(SessionProposal) -> bool + Send> {
        self.ask(|p: SessionProposal| format!("Take part in {}? ", describe("?", &p)))
    }

    fn refresh_prompt(&self) -> Box<dyn FnOnce(RefreshRequest) -> bool + Send> {
        self.ask(|r: RefreshRequest| format!("Take part? {}\n", r.describe()))
    }

    fn repair_prompt(&self) -> Box<dyn FnOnce(RepairRequest) -> bool + Send> {
        self.ask(|r: RepairRequest| format!("Take part? {}\n", r.describe()))
    }
}

/// The demo's view: every message every node sends, in the spec's
/// "Simulation Run Example" style, one shared output.
#[derive(Clone)]
pub struct FlowPrinter {
    out: Arc<Mutex<()>>,
}

impl FlowPrinter {
    pub fn new() -> FlowPrinter {
        FlowPrinter {
            out: Arc::new(Mutex::new(())),
        }
    }

    pub fn line(&self, text: &str) {
        let _g = self.out.lock().unwrap_or_else(|e| e.into_inner());
        println!("{text}");
    }
}

impl Default for FlowPrinter {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer for FlowPrinter {
    fn progress(&mut self, me: &str, p: &Progress) {
        if let Some(text) = progress_text(p) {
            self.line(&format!("   [{me}] {text}"));
        }
    }

    fn pinned(&mut self, me: &str, peer: &str, key: &mpc_core::PublicKey) {
        self.line(&format!("   [{me}] {}", pinned_text(peer, key)));
    }

    fn sent(&mut self, me: &str, to: &str, via_channel: bool, json: &str) {
        let how = if via_channel { " (WebRTC)" } else { "" };
        self.line(&format!("{me} → {to}{how}: {}", abbreviate(json)));
    }
}

/// Shows nothing, asks nothing (`peers`, and the `--json` demo's nodes).
pub struct Quiet;

impl Quiet {
    pub fn boxed(self) -> Box<dyn Observer> {
        Box::new(self)
    }
}

impl Observer for Quiet {
    fn progress(&mut self, _me: &str, _p: &Progress) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_are_shortened() {
        let long = "ab".repeat(100);
        let out = abbreviate(&format!(
            r#"{{"type":"share","payload":{{"data":"{long}"}}}}"#
        ));
        assert!(out.contains("abababababababab…(200 chars)"), "{out}");
        assert!(out.len() < 100);
        assert_eq!(abbreviate("not json"), "not json");
    }
}
