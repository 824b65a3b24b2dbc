//! What the people behind the simulated nodes do and how each session ends
//! for them: answering proposals (or declining, or vanishing instead, as a
//! [`Fault`] says), vanishing on a chosen send, the signing session of the
//! [`SignPlan`](super::SignPlan) once every node holds the wallet, and
//! every node's [`Outcome`]s and rejections. Also which misbehaviour each
//! node's core is built with.

use std::collections::{BTreeMap, BTreeSet};

use mpc_protocol::peer::{RepairProposal, SessionProposal, SignProposal};

use super::config::{Fault, SimConfig, VanishAt};
use super::network::{Item, Network};
use super::report::Outcome;
use crate::node::{Action, Command, Event};
use crate::session::AbortReason;
use crate::wallet::{SignatureResult, SigningWallet, WalletResult};

pub(super) struct Users<'a> {
    cfg: &'a SimConfig,
    session_id: Option<String>,
    outcomes: Vec<Outcome>,
    /// Set once the signing session is proposed.
    signing: bool,
    sign_session_id: Option<String>,
    sign_outcomes: Vec<Outcome>,
    /// Nodes that vanished.
    gone: BTreeSet<usize>,
    rejections: BTreeMap<String, Vec<String>>,
    /// Whether each node's wallet was confirmed by every peer (or why not).
    confirmations: BTreeMap<usize, Result<(), Vec<String>>>,
    /// Set once the refresh is proposed.
    refreshing: bool,
    /// Each node's new share, pending until confirmed.
    pending: BTreeMap<usize, Box<WalletResult>>,
    /// `Finished` with the new share once confirmed.
    refresh_outcomes: Vec<Outcome>,
    /// Set once the repair is proposed.
    repairing: bool,
    repair_outcomes: Vec<Outcome>,
}

/// The users' side of the report.
pub(super) struct Ending {
    pub(super) session_id: Option<String>,
    pub(super) outcomes: BTreeMap<String, Outcome>,
    pub(super) sign_session_id: Option<String>,
    pub(super) sign_outcomes: BTreeMap<String, Outcome>,
    pub(super) refresh_outcomes: BTreeMap<String, Outcome>,
    pub(super) repair_outcomes: BTreeMap<String, Outcome>,
    pub(super) rejections: BTreeMap<String, Vec<String>>,
    pub(super) confirmations: BTreeMap<String, Result<(), Vec<String>>>,
}

impl<'a> Users<'a> {
    pub(super) fn new(cfg: &'a SimConfig) -> Self {
        Users {
            cfg,
            session_id: None,
            outcomes: vec![Outcome::Pending; cfg.participants],
            signing: false,
            sign_session_id: None,
            sign_outcomes: vec![Outcome::Pending; cfg.participants],
            gone: BTreeSet::new(),
            rejections: BTreeMap::new(),
            confirmations: BTreeMap::new(),
            refreshing: false,
            pending: BTreeMap::new(),
            refresh_outcomes: vec![Outcome::Pending; cfg.participants],
            repairing: false,
            repair_outcomes: vec![Outcome::Pending; cfg.participants],
        }
    }

    pub(super) fn repairing(&self) -> bool {
        self.repairing
    }

    fn repair_members(&self) -> Vec<usize> {
        match &self.cfg.repair {
            Some(p) => p.helpers.iter().copied().chain([p.target]).collect(),
            None => Vec::new(),
        }
    }

    /// The user at node `i` takes part in a repair: a helper with its
    /// wallet, the target with none.
    pub(super) fn decide_repair(&mut self, i: usize, proposal: RepairProposal, net: &mut Network) {
        let target = self.cfg.repair.as_ref().is_some_and(|p| p.target == i);
        let wallet = if target { None } else { self.wallet(i) };
        let at = net.after(self.cfg.net.decision_delay_ms);
        let decision = Event::RepairDecision {
            session_id: proposal.session_id,
            accept: true,
            wallet,
            reason: None,
        };
        net.schedule(at, i, Item::Event(decision));
    }

    /// The repair is over at node `i`: the target's rebuilt wallet, or a
    /// helper's part done.
    pub(super) fn repaired(&mut self, i: usize, w: Option<Box<WalletResult>>) {
        self.repair_outcomes[i] = match (w, &self.outcomes[i]) {
            (Some(w), _) => Outcome::Finished(w),
            (None, Outcome::Finished(own)) => Outcome::Finished(own.clone()),
            (None, other) => other.clone(),
        };
    }

    /// Node `i` learnt whether its wallet is safe to fund.
    pub(super) fn confirmation(&mut self, i: usize, result: Result<(), Vec<String>>) {
        self.confirmations.insert(i, result);
    }

    pub(super) fn gone(&self) -> &BTreeSet<usize> {
        &self.gone
    }

    pub(super) fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// Every node's DKG (with its wallet's confirmation), and the signing
    /// session if one is planned, ended.
    pub(super) fn done(&self) -> bool {
        let dkg_done = self.outcomes.iter().enumerate().all(|(i, o)| match o {
            Outcome::Pending => false,
            Outcome::Finished(_) => self.confirmations.contains_key(&i),
            _ => true,
        });
        let refresh_done = match &self.cfg.refresh {
            None => true,
            Some(keep) if self.refreshing => keep
                .iter()
                .all(|j| !matches!(self.refresh_outcomes[*j], Outcome::Pending)),
            Some(_) => !self.all_finished(),
        };
        let sign_done = match &self.cfg.sign {
            None => true,
            // Signing waits for a planned refresh to be confirmed.
            Some(_) if self.cfg.refresh.is_some() && !self.signing => {
                refresh_done && !self.refresh_confirmed()
            }
            Some(plan) if self.signing => plan
                .signers
                .iter()
                .all(|j| !matches!(self.sign_outcomes[*j], Outcome::Pending)),
            // Signing starts only if every node got the wallet.
            Some(_) => !self.all_finished(),
        };
        let repair_done = match &self.cfg.repair {
            None => true,
            Some(_) if self.repairing => self
                .repair_members()
                .iter()
                .all(|j| !matches!(self.repair_outcomes[*j], Outcome::Pending)),
            Some(_) => !self.all_finished(),
        };
        dkg_done && refresh_done && repair_done && sign_done
    }

    fn refresh_confirmed(&self) -> bool {
        self.cfg.refresh.as_ref().is_some_and(|keep| {
            keep.iter()
                .all(|j| matches!(self.refresh_outcomes[*j], Outcome::Finished(_)))
        })
    }

    /// Node `i`'s current wallet: the refreshed one once confirmed.
    fn wallet(&self, i: usize) -> Option<Box<SigningWallet>> {
        match (&self.refresh_outcomes[i], &self.outcomes[i]) {
            (Outcome::Finished(w), _) | (_, Outcome::Finished(w)) => {
                Some(Box::new(SigningWallet::from(&**w)))
            }
            _ => None,
        }
    }

    /// The user at node `i` accepts a refresh with its wallet.
    pub(super) fn decide_refresh(&mut self, i: usize, session_id: String, net: &mut Network) {
        let wallet = self.wallet(i);
        let at = net.after(self.cfg.net.decision_delay_ms);
        let reason = wallet.is_none().then(|| "no such wallet".to_string());
        let decision = Event::RefreshDecision {
            session_id,
            wallet,
            reason,
        };
        net.schedule(at, i, Item::Event(decision));
    }

    /// Node `i` stored its new share as pending.
    pub(super) fn refreshed(&mut self, i: usize, w: Box<WalletResult>) {
        self.pending.insert(i, w);
    }

    /// Node `i` made its new share current (`Ok`), or kept the old one.
    pub(super) fn refresh_confirmation(
        &mut self,
        i: usize,
        result: Result<(), AbortReason>,
        net: &mut Network,
    ) {
        self.refresh_outcomes[i] = match (result, self.pending.remove(&i)) {
            (Ok(()), Some(w)) => Outcome::Finished(w),
            (Err(reason), _) => Outcome::Aborted(reason),
            (Ok(()), None) => Outcome::Aborted(AbortReason::Internal(
                "confirmed without a pending share".into(),
            )),
        };
        if self.refresh_confirmed() {
            self.start_signing(net);
        }
    }

    fn all_finished(&self) -> bool {
        self.outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Finished(_)))
    }

    /// The user at node `i` answers a proposal after a while: yes, unless a
    /// fault makes them decline or vanish instead.
    pub(super) fn decide(&mut self, i: usize, proposal: SessionProposal, net: &mut Network) {
        self.session_id.get_or_insert(proposal.session_id.clone());
        let mut decision = Some((true, None));
        for f in &self.cfg.faults {
            match f {
                Fault::Decline { node, reason } if *node == i => {
                    decision = Some((false, Some(reason.clone())))
                }
                Fault::Vanish {
                    node,
                    at: VanishAt::Decision,
                    ..
                } if *node == i => decision = None,
                _ => {}
            }
        }
        match decision {
            Some((accept, reason)) => {
                let at = net.after(self.cfg.net.decision_delay_ms);
                let decision = Event::Decision {
                    session_id: proposal.session_id,
                    accept,
                    reason,
                };
                net.schedule(at, i, Item::Event(decision));
            }
            None => {
                self.gone.insert(i);
                self.outcomes[i] = Outcome::Vanished;
            }
        }
    }

    /// The user at node `i` answers a signing proposal after a while, with
    /// the wallet if they have it.
    pub(super) fn decide_sign(&mut self, i: usize, proposal: SignProposal, net: &mut Network) {
        self.sign_session_id
            .get_or_insert(proposal.session_id.clone());
        let wallet = self.wallet(i);
        let at = net.after(self.cfg.net.decision_delay_ms);
        let reason = wallet.is_none().then(|| "no such wallet".to_string());
        let decision = Event::SignDecision {
            session_id: proposal.session_id,
            wallet,
            reason,
        };
        net.schedule(at, i, Item::Event(decision));
    }

    /// Node `i` holds the wallet; once every node does, the plan's first
    /// signer proposes.
    pub(super) fn finished(&mut self, i: usize, w: Box<WalletResult>, net: &mut Network) {
        self.session_id.get_or_insert(w.session_id.clone());
        self.outcomes[i] = Outcome::Finished(w);
        if !self.all_finished() {
            return;
        }
        match &self.cfg.refresh {
            Some(keep) if !self.refreshing => {
                self.refreshing = true;
                let proposer = keep[0];
                let Some(wallet) = self.wallet(proposer) else {
                    return;
                };
                let refresh = Command::Refresh {
                    session_id: Some("refresh-1".into()),
                    wallet,
                    participants: keep.iter().map(|j| net.id(*j).to_string()).collect(),
                };
                net.schedule(
                    net.now() + 1,
                    proposer,
                    Item::Event(Event::Command(refresh)),
                );
            }
            Some(_) => {}
            None if self.cfg.repair.is_some() => {
                if self.repairing {
                    return;
                }
                self.repairing = true;
                let Some(plan) = &self.cfg.repair else {
                    return;
                };
                let proposer = plan.helpers[0];
                let Some(wallet) = self.wallet(proposer) else {
                    return;
                };
                let repair = Command::Repair {
                    session_id: Some("repair-1".into()),
                    wallet,
                    helpers: plan
                        .helpers
                        .iter()
                        .map(|j| net.id(*j).to_string())
                        .collect(),
                    target: net.id(plan.target).to_string(),
                };
                net.schedule(net.now() + 1, proposer, Item::Event(Event::Command(repair)));
            }
            None => self.start_signing(net),
        }
    }

    fn start_signing(&mut self, net: &mut Network) {
        let cfg = self.cfg;
        let Some(plan) = &cfg.sign else {
            return;
        };
        if self.signing {
            return;
        }
        self.signing = true;
        let proposer = plan.signers[0];
        let Some(wallet) = self.wallet(proposer) else {
            return;
        };
        let signers = plan
            .signers
            .iter()
            .map(|j| net.id(*j).to_string())
            .collect();
        let sign = Command::Sign {
            session_id: Some("sign-1".into()),
            message: match plan.build {
                Some(build) => build(&wallet.group_public_key),
                None => plan.message.clone(),
            },
            wallet,
            format: plan.format,
            signers,
        };
        net.schedule(net.now() + 1, proposer, Item::Event(Event::Command(sign)));
    }

    pub(super) fn signed(&mut self, i: usize, r: Box<SignatureResult>) {
        self.sign_session_id.get_or_insert(r.session_id.clone());
        self.sign_outcomes[i] = Outcome::Signed(r);
    }

    /// Node `i`'s session aborted: the signing one once it has started.
    pub(super) fn aborted(&mut self, i: usize, reason: AbortReason) {
        if self.signing {
            self.sign_outcomes[i] = Outcome::Aborted(reason)
        } else if self.refreshing {
            self.refresh_outcomes[i] = Outcome::Aborted(reason)
        } else if self.repairing {
            self.repair_outcomes[i] = Outcome::Aborted(reason)
        } else {
            self.outcomes[i] = Outcome::Aborted(reason)
        }
    }

    pub(super) fn rejected(&mut self, id: &str, reason: String) {
        self.rejections
            .entry(id.to_string())
            .or_default()
            .push(reason);
    }

    /// Whether node `i` vanishes instead of carrying out `actions` (it does
    /// on the first send of the type a [`VanishAt::Sending`] names), and if
    /// so whether its channels close.
    pub(super) fn vanishes_on(&self, i: usize, actions: &[Action]) -> Option<bool> {
        self.cfg.faults.iter().find_map(|f| match f {
            Fault::Vanish {
                node,
                at: VanishAt::Sending(kind),
                close_channels,
            } if *node == i => actions
                .iter()
                .any(|a| matches!(a, Action::SendPeer { msg, .. } if msg.msg.msg_type() == *kind))
                .then_some(*close_channels),
            Fault::Vanish {
                node,
                at: VanishAt::SendingIn(kind, session),
                close_channels,
            } if *node == i => actions
                .iter()
                .any(|a| {
                    matches!(a, Action::SendPeer { msg, .. }
                        if msg.msg.msg_type() == *kind && msg.msg.session_id() == Some(*session))
                })
                .then_some(*close_channels),
            _ => None,
        })
    }

    /// Node `i` is gone, from whichever session it was in.
    pub(super) fn vanish(&mut self, i: usize) {
        self.gone.insert(i);
        if self.signing {
            self.sign_outcomes[i] = Outcome::Vanished;
        } else if self.refreshing {
            self.refresh_outcomes[i] = Outcome::Vanished;
        } else {
            self.outcomes[i] = Outcome::Vanished;
        }
    }

    /// How it all ended, by node id (signing outcomes only for the
    /// signers, and only if signing started).
    pub(super) fn finish(self, ids: &[String]) -> Ending {
        let members: BTreeSet<usize> = if self.repairing {
            self.repair_members().into_iter().collect()
        } else {
            BTreeSet::new()
        };
        let signers: BTreeSet<usize> = match (&self.cfg.sign, self.signing) {
            (Some(plan), true) => plan.signers.iter().copied().collect(),
            _ => BTreeSet::new(),
        };
        let sign_outcomes = self
            .sign_outcomes
            .into_iter()
            .enumerate()
            .filter(|(j, _)| signers.contains(j))
            .map(|(j, o)| (ids[j].clone(), o))
            .collect();
        let keep: BTreeSet<usize> = match (&self.cfg.refresh, self.refreshing) {
            (Some(keep), true) => keep.iter().copied().collect(),
            _ => BTreeSet::new(),
        };
        let refresh_outcomes = self
            .refresh_outcomes
            .into_iter()
            .enumerate()
            .filter(|(j, _)| keep.contains(j))
            .map(|(j, o)| (ids[j].clone(), o))
            .collect();
        let repair_outcomes = self
            .repair_outcomes
            .into_iter()
            .enumerate()
            .filter(|(j, _)| members.contains(j))
            .map(|(j, o)| (ids[j].clone(), o))
            .collect();
        Ending {
            repair_outcomes,
            refresh_outcomes,
            session_id: self.session_id,
            outcomes: ids.iter().cloned().zip(self.outcomes).collect(),
            sign_session_id: self.sign_session_id,
            sign_outcomes,
            rejections: self.rejections,
            confirmations: self
                .confirmations
                .into_iter()
                .map(|(i, r)| (ids[i].clone(), r))
                .collect(),
        }
    }
}

/// The misbehaviour the faults give node `i`'s core.
#[cfg(feature = "faults")]
pub(super) fn misbehaviour_for(
    cfg: &SimConfig,
    ids: &[String],
    i: usize,
) -> crate::dkg::Misbehaviour {
    let mut m = crate::dkg::Misbehaviour::default();
    for f in &cfg.faults {
        match f {
            Fault::BadShare { from, to } if *from == i => {
                m.bad_share_to.insert(ids[*to].clone());
            }
            Fault::Equivocate { node, to } if *node == i => {
                m.equivocate_to.extend(to.iter().map(|t| ids[*t].clone()));
            }
            Fault::BadSignatureShare { node } if *node == i => m.bad_signature_share = true,
            Fault::SignEquivocate { node, to } if *node == i => {
                m.equivocate_sign_to
                    .extend(to.iter().map(|t| ids[*t].clone()));
            }
            Fault::PlaintextShares { node } if *node == i => m.plaintext_shares = true,
            Fault::TamperProposal { node, to, tamper } if *node == i => {
                for t in to {
                    m.tamper_proposal_to.insert(ids[*t].clone(), *tamper);
                }
            }
            Fault::LieInRepair { node, to } if *node == i => {
                m.lie_in_repair_to
                    .extend(to.iter().map(|t| ids[*t].clone()));
            }
            _ => {}
        }
    }
    m
}
