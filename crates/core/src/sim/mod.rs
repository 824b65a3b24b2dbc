//! A deterministic in-memory network that drives n [`Node`]s against each
//! other, with a fake signaling server and fake WebRTC.
//!
//! # Fault model
//!
//! * **Relay** (signaling server over WebSocket): every relayed message gets
//!   its own random delay, so relayed messages are reordered freely, even
//!   between the same two nodes (stronger than a real server, which keeps
//!   per-pair order). Each may also be duplicated. Loss is off by default:
//!   WebSocket is reliable and the core does not retransmit, so a lost
//!   relay message can only end in a clean timeout abort, never a wallet;
//!   [`NetConfig::relay_loss`] exists to test exactly that.
//! * **Data channels** are reliable and ordered per link, as WebRTC's
//!   default channel is: random delays interleave messages across links,
//!   but never reorder, drop or duplicate within one.
//! * **WebRTC setup** is simulated: an offerer's driver sends a fake offer
//!   through the core (so it rides the relay), the answerer's driver answers,
//!   and when the answer arrives both ends see `ChannelOpen`.
//! * **Node faults** ([`Fault`]): declining, never answering, vanishing at a
//!   chosen step (with or without its channels closing), and, with the
//!   `faults` feature, sending a bad share or equivocating on commitments.
//!
//! The same [`SimConfig`] (seed included) always gives the same run.
//!
//! # Modules
//!
//! | module    | owns |
//! |-----------|------|
//! | `config`  | what to simulate: [`SimConfig`], [`NetConfig`], [`Fault`], [`SignPlan`] |
//! | `network` | the queue, clock and RNG, relay and channel delivery, fake WebRTC, [`garbage`] |
//! | `server`  | the model signaling server: challenges, registered keys, relay targets |
//! | `users`   | decisions, declining and vanishing, the signing plan, outcomes |
//! | `report`  | [`SimReport`] and its parts, [`abbreviate_json`] |
//!
//! This module holds one of each and the run loop that hands every due
//! event to its node and every resulting action to its owner.

mod config;
mod network;
mod report;
mod server;
mod users;

pub use config::{Fault, NetConfig, RepairPlan, SignPlan, SimConfig, VanishAt};
pub use network::garbage;
pub use report::{abbreviate_json, LogEntry, Outcome, Path, SimReport, Stats};

use rand_core::RngCore;

use crate::node::{Action, Command, Config, Event, Node, Progress};
use network::{Item, Network};
use server::Server;
use users::Users;

/// Node ids for a simulation of `n`: `node01`, `node02`, ...
pub fn node_ids(n: usize) -> Vec<String> {
    let width = n.to_string().len().max(2);
    (1..=n).map(|i| format!("node{i:0width$}")).collect()
}

/// Runs one session: node 0 registers, lists peers and proposes a wallet to
/// everyone; the others accept unless a [`Fault`] says otherwise.
pub fn run(config: &SimConfig) -> SimReport {
    run_observed(config, &mut |_, _| {})
}

/// As [`run`], showing every action (with the node's index) to `observer`
/// before the simulator carries it out.
pub fn run_observed(config: &SimConfig, observer: &mut dyn FnMut(usize, &Action)) -> SimReport {
    Sim::new(config, observer).run()
}

struct Sim<'a> {
    cfg: &'a SimConfig,
    observer: &'a mut dyn FnMut(usize, &Action),
    nodes: Vec<Node>,
    net: Network,
    server: Server,
    users: Users<'a>,
}

const TICK_MS: u64 = 100;

impl<'a> Sim<'a> {
    fn new(cfg: &'a SimConfig, observer: &'a mut dyn FnMut(usize, &Action)) -> Self {
        let mut net = Network::new(cfg);
        // Each node's seed is drawn first, in node order.
        let mut nodes = Vec::with_capacity(cfg.participants);
        for i in 0..net.ids().len() {
            let mut seed = [0u8; 32];
            net.rng().fill_bytes(&mut seed);
            let mut c = Config::new(net.id(i));
            c.timeout_ms = cfg.timeout_ms;
            c.server_host = Some(server::HOST.into());
            #[allow(unused_mut)]
            let mut node = Node::new(c, seed, 0);
            #[cfg(feature = "faults")]
            node.set_misbehaviour(users::misbehaviour_for(cfg, net.ids(), i));
            nodes.push(node);
        }
        Sim {
            cfg,
            observer,
            nodes,
            net,
            server: Server::default(),
            users: Users::new(cfg),
        }
    }

    fn run(mut self) -> SimReport {
        let n = self.nodes.len();
        for i in 0..n {
            self.server.connect(i, &mut self.net);
            self.net
                .schedule(0, i, Item::Event(Event::Command(Command::Register)));
        }
        self.net
            .schedule(1, 0, Item::Event(Event::Command(Command::ListPeers)));
        let create = Command::Create {
            session_id: None,
            participants: self.net.ids().to_vec(),
            threshold: self.cfg.threshold,
            curve: self.cfg.curve,
        };
        self.net.schedule(2, 0, Item::Event(Event::Command(create)));
        self.net.schedule(TICK_MS, 0, Item::TickAll);
        self.net.schedule_noise(self.cfg.noise);
        while let Some((node, item)) = self.net.next(self.cfg.max_time_ms) {
            match item {
                Item::TickAll => {
                    if self.users.done() && !self.net.busy() {
                        break;
                    }
                    let at = self.net.now();
                    for i in 0..n {
                        self.deliver(i, Event::Tick(at));
                    }
                    self.net.schedule(at + TICK_MS, 0, Item::TickAll);
                }
                Item::Event(e) => self.deliver(node, e),
                Item::Noise => {
                    let e = self.net.garbage(self.users.session_id());
                    self.deliver(node, e);
                }
                Item::PeerText { from, text } => {
                    if let Some(e) = self.net.parse(from, &text) {
                        self.deliver(node, e);
                    }
                }
            }
        }
        self.report()
    }

    fn report(self) -> SimReport {
        let end_ms = self.net.now();
        let (ids, mut stats, log) = self.net.finish();
        let ending = self.users.finish(&ids);
        stats.rejected = ending.rejections.values().map(Vec::len).sum();
        SimReport {
            sign_session_id: ending.sign_session_id,
            sign_outcomes: ending.sign_outcomes,
            refresh_outcomes: ending.refresh_outcomes,
            repair_outcomes: ending.repair_outcomes,
            outcomes: ending.outcomes,
            node_ids: ids,
            session_id: ending.session_id,
            rejections: ending.rejections,
            confirmations: ending.confirmations,
            log,
            stats,
            end_ms,
            #[cfg(feature = "faults")]
            shares_sent: self
                .nodes
                .iter()
                .flat_map(|n| n.shares_sent().iter().cloned())
                .collect(),
        }
    }

    fn deliver(&mut self, i: usize, event: Event) {
        if self.users.gone().contains(&i) {
            return;
        }
        self.net.observe(i, &event);
        let actions = self.nodes[i].handle(event);
        // A node set to vanish on sending some type vanishes instead of
        // carrying out the batch that contains it.
        if let Some(close_channels) = self.users.vanishes_on(i, &actions) {
            self.users.vanish(i);
            if close_channels {
                self.net.close_channels_of(i);
            }
            return;
        }
        for a in actions {
            (self.observer)(i, &a);
            self.act(i, a);
        }
    }

    /// Hands node `i`'s action to whoever carries it out.
    fn act(&mut self, i: usize, action: Action) {
        let net = &mut self.net;
        match action {
            Action::SendSignal(msg) => self.server.handle(i, msg, net, self.users.gone()),
            Action::SendPeer { to, msg } => net.send_peer(i, &to, msg),
            Action::Connect { peer, offerer } => net.connect(i, peer, offerer),
            Action::WebRtcSignal { from, signal } => net.webrtc_signal(i, from, signal),
            Action::Progress(Progress::NeedsDecision { proposal, .. }) => {
                self.users.decide(i, proposal, net)
            }
            Action::Progress(Progress::NeedsSignDecision { proposal, .. }) => {
                self.users.decide_sign(i, proposal, net)
            }
            Action::Progress(Progress::NeedsRefreshDecision { proposal, .. }) => {
                self.users.decide_refresh(i, proposal.session_id, net)
            }
            Action::Refreshed(w) => self.users.refreshed(i, w),
            Action::Progress(Progress::NeedsRepairDecision { proposal, .. }) => {
                self.users.decide_repair(i, proposal, net)
            }
            Action::Repaired { .. } | Action::ParticipantAdded(_) => self.users.repaired(i, None),
            Action::RefreshConfirmed { .. } => self.users.refresh_confirmation(i, Ok(()), net),
            Action::RefreshUnconfirmed { reason, .. } => {
                self.users.refresh_confirmation(i, Err(reason), net)
            }
            Action::Progress(_) | Action::PinKey { .. } => {}
            Action::Finished(w) if self.users.repairing() => self.users.repaired(i, Some(w)),
            Action::Finished(w) => self.users.finished(i, w, net),
            Action::Signed(r) => self.users.signed(i, r),
            Action::WalletConfirmed { .. } => self.users.confirmation(i, Ok(())),
            Action::WalletUnconfirmed { missing, .. } => self.users.confirmation(i, Err(missing)),
            Action::Aborted { reason, .. } => self.users.aborted(i, reason),
            Action::Rejected { reason, .. } => self.users.rejected(net.id(i), reason),
        }
    }
}
