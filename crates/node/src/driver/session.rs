//! The session side of the driver: what this run is for and what it does
//! with the core's milestones. It starts the goal once registered, hands
//! proposals to the joiner's decisions ([`crate::decide`]) and the
//! observer, stores a finished wallet in the keystore, and says when the
//! run is done.

use std::path::PathBuf;
use std::time::Instant;

use futures_util::SinkExt;
use mpc_core::payload::Review;
use mpc_core::{Action, Command, Event, Progress, WalletResult};
use mpc_protocol::peer::SignProposal;
use tokio_tungstenite::tungstenite::Message;

use mpc_keystore::Confirmation;

use super::{Driver, Goal, NodeError, Outcome, LINGER};
use crate::decide::{self, Refusal, Verdict};
use crate::observer::{Observer, RefreshRequest, RepairRequest, SignRequest};

impl Driver {
    /// How the run ended, once it did: a peer list at once; a wallet once
    /// the core confirmed every participant stored its share; a signature
    /// once the others reported theirs, or [`LINGER`] ran out.
    pub(super) fn done(&mut self) -> Option<Outcome> {
        if let Some(peers) = self.peers.take() {
            return Some(Outcome::Peers(peers));
        }
        let at = self.finished_at?;
        if let Some(h) = self.helped.take() {
            return Some(Outcome::Helped(h));
        }
        if let Some(sig) = &self.signed {
            if self.stored_by + 1 >= sig.signers.len() || at.elapsed() >= LINGER {
                return self.signed.take().map(Outcome::Signed);
            }
            return None;
        }
        if self.confirmed {
            let (wallet, keystore_path) = self.finished.take()?;
            if self.repair_target {
                return Some(Outcome::Repaired {
                    wallet,
                    keystore_path,
                });
            }
            if wallet.generation > 0 {
                return Some(Outcome::Refreshed {
                    wallet,
                    keystore_path,
                });
            }
            let elapsed = self.proposal_at.map(|t| t.elapsed()).unwrap_or_default();
            return Some(Outcome::Created {
                wallet,
                keystore_path,
                elapsed,
            });
        }
        None
    }

    /// Seals the new share with the passphrase and writes it; without a
    /// keystore (not expected in a run that creates) it only remembers it.
    pub(super) async fn store(&mut self, wallet: Box<WalletResult>) -> Result<(), NodeError> {
        let Some(storage) = self.storage.clone() else {
            self.finished = Some((wallet, PathBuf::new()));
            self.finished_at = Some(Instant::now());
            return Ok(());
        };
        let path = seal_to(
            storage,
            (*wallet).clone(),
            self.opts.peer_id.clone(),
            Write::New,
        )
        .await?;
        self.finished = Some((wallet, path));
        self.finished_at = Some(Instant::now());
        Ok(())
    }

    /// Seals a refresh's new share, with the passphrase, as pending next to
    /// the current one.
    pub(super) async fn store_pending(
        &mut self,
        wallet: Box<WalletResult>,
    ) -> Result<(), NodeError> {
        let Some(storage) = self.storage.clone() else {
            return Err(NodeError::Store("a refresh without a keystore".into()));
        };
        let w = (*wallet).clone();
        let path = seal_to(storage, w, self.opts.peer_id.clone(), Write::Pending).await?;
        self.finished = Some((wallet, path));
        self.finished_at = Some(Instant::now());
        Ok(())
    }

    /// Rewrites this node's wallet file with the participant a repair
    /// added: same share, re-sealed (the metadata is sealed with it).
    pub(super) async fn store_updated(
        &mut self,
        wallet: Box<WalletResult>,
    ) -> Result<(), NodeError> {
        let Some(storage) = self.storage.clone() else {
            return Err(NodeError::Store(
                "a repair that adds a participant needs the keystore".into(),
            ));
        };
        seal_to(storage, *wallet, self.opts.peer_id.clone(), Write::Replace).await?;
        Ok(())
    }

    /// Every participant stored its new share: the pending one replaces
    /// the current one.
    pub(super) fn promote(&mut self, generation: u32) -> Result<(), NodeError> {
        let (Some(storage), Some((w, path))) = (&self.storage, &mut self.finished) else {
            return Ok(());
        };
        let id = mpc_keystore::wallet_id(&w.group_public_key);
        *path = storage
            .keystore
            .promote(&id, generation)
            .map_err(|e| NodeError::Store(e.to_string()))?;
        Ok(())
    }

    /// Records in the stored wallet file whether every participant
    /// confirmed storing its share.
    pub(super) fn record_confirmation(&self, c: Confirmation) -> Result<(), NodeError> {
        let (Some(storage), Some((w, _))) = (&self.storage, &self.finished) else {
            return Ok(());
        };
        let id = mpc_keystore::wallet_id(&w.group_public_key);
        storage
            .keystore
            .set_confirmation(&id, c)
            .map_err(|e| NodeError::Store(e.to_string()))?;
        Ok(())
    }

    /// What a milestone means for this run, before the observer sees it.
    pub(super) async fn on_progress(
        &mut self,
        p: &Progress,
        obs: &mut dyn Observer,
    ) -> Result<(), NodeError> {
        match p {
            Progress::Registered { .. } => {
                self.registered = true;
                self.start_goal()?;
            }
            Progress::Peers { peers } => {
                if matches!(self.goal, Goal::Command(Command::ListPeers)) {
                    self.peers = Some(peers.clone());
                }
            }
            Progress::ServerError { error } => {
                if !self.registered
                    || matches!(
                        self.goal,
                        Goal::Command(
                            Command::Create { .. }
                                | Command::Sign { .. }
                                | Command::Refresh { .. }
                                | Command::Repair { .. }
                        )
                    )
                {
                    if let Some(sid) = self.node.active_session().map(str::to_string) {
                        // Tell the others; this run is over either way.
                        let actions = self
                            .node
                            .handle(Event::Command(Command::Cancel { session_id: sid }));
                        for a in actions {
                            if let Action::SendSignal(m) = a {
                                let _ = self.ws.send(Message::text(m.to_json())).await;
                            }
                        }
                    }
                    return Err(NodeError::Server(error.clone()));
                }
                tracing::warn!("signaling server: {}", crate::display::Remote(error));
            }
            Progress::NeedsDecision { from, proposal, .. } => {
                let sid = proposal.session_id.clone();
                let Some(verdict) = self.policy(from).map(decide::Policy::keygen) else {
                    self.internal
                        .push(decide::refuse(sid, decide::Refusal::Unexpected));
                    return Ok(());
                };
                self.session = Some(sid.clone());
                self.proposal_at = Some(Instant::now());
                match verdict {
                    Verdict::Accept => self.internal.push(decide::answer(sid, true)),
                    Verdict::Refuse(reason) => self.internal.push(decide::refuse(sid, reason)),
                    Verdict::Ask => {
                        let ask = obs.prompt();
                        let proposal = proposal.clone();
                        let tx = self.decisions_tx.clone();
                        tokio::task::spawn_blocking(move || {
                            let accept = ask(proposal);
                            let _ = tx.blocking_send((sid, accept));
                        });
                    }
                }
            }
            Progress::NeedsSignDecision {
                from,
                proposal,
                review,
                ..
            } => self.on_sign_proposal(from, proposal, review.as_ref(), obs),
            Progress::NeedsRefreshDecision { from, proposal, .. } => {
                self.on_refresh_proposal(from, proposal, obs)
            }
            Progress::PeerCommitted { .. } => self.stored_by += 1,
            Progress::NeedsRepairDecision {
                from,
                proposal,
                new_keys,
            } => self.on_repair_proposal(from, proposal, new_keys, obs),
            Progress::PeerStored { .. } | Progress::PeerSigned { .. } => self.stored_by += 1,
            _ => {}
        }
        Ok(())
    }

    /// Once registered (the WebRTC driver exists by then): start what this
    /// run is for.
    fn start_goal(&mut self) -> Result<(), NodeError> {
        if let Goal::Command(command) = &self.goal {
            if matches!(
                command,
                Command::Create { .. }
                    | Command::Sign { .. }
                    | Command::Refresh { .. }
                    | Command::Repair { .. }
            ) {
                self.proposal_at = Some(Instant::now());
            }
            self.internal.push(Event::Command(command.clone()));
        }
        Ok(())
    }

    /// The policy of this run, if it considers a proposal from `from` now:
    /// only `join` runs take proposals, one at a time.
    fn policy(&self, from: &str) -> Option<&decide::Policy> {
        let Goal::Join(policy) = &self.goal else {
            return None;
        };
        decide::considers(policy.from.as_deref(), self.session.is_some(), from).then_some(policy)
    }

    /// A sign proposal: find the wallet by its group key, decide (or ask),
    /// and answer with the decrypted key package (or decline, saying why).
    fn on_sign_proposal(
        &mut self,
        from: &str,
        proposal: &SignProposal,
        review: Option<&Review>,
        obs: &mut dyn Observer,
    ) {
        let sid = proposal.session_id.clone();
        let decline = |reason: Refusal| decide::decline_sign(&proposal.session_id, reason);
        let group_key = &proposal.group_public_key;
        // The core checked that the message is hex.
        let message = hex::decode(&proposal.message_hex).unwrap_or_default();
        let format = proposal.format;
        let Some(verdict) = self
            .policy(from)
            .map(|p| p.sign(group_key, format, &message))
        else {
            self.internal.push(decline(Refusal::Unexpected));
            return;
        };
        let Some(storage) = self.storage.clone() else {
            self.internal.push(decline(Refusal::NoKeystore));
            return;
        };
        let file = match decide::wallet_for(&storage.keystore, group_key, &self.opts.peer_id) {
            Ok(file) => decide::catch_up(&storage.keystore, file, proposal.generation),
            Err(reason) => {
                self.internal.push(decline(reason));
                return;
            }
        };
        self.session = Some(sid.clone());
        let asked = match verdict {
            Verdict::Refuse(reason) => {
                self.internal.push(decline(reason));
                return;
            }
            Verdict::Accept => false,
            Verdict::Ask => true,
        };
        let ask = obs.sign_prompt();
        let req = SignRequest {
            from: from.to_string(),
            proposal: proposal.clone(),
            review: review.cloned(),
            wallet_id: file.metadata.id.clone(),
        };
        let tx = self.events_tx.clone();
        // The prompt and scrypt both block: keep them off the async threads.
        tokio::task::spawn_blocking(move || {
            let approved = if asked && !ask(req) {
                Err(Refusal::ByUser)
            } else {
                Ok(())
            };
            let answer = decide::sign_answer(&sid, approved, &file, &storage.passphrase);
            let _ = tx.blocking_send(answer);
        });
    }

    /// A refresh proposal: find the wallet by its group key, decide (or
    /// ask, saying what changes), and answer with the decrypted current
    /// key package (or decline, saying why).
    fn on_refresh_proposal(
        &mut self,
        from: &str,
        proposal: &mpc_protocol::peer::RefreshProposal,
        obs: &mut dyn Observer,
    ) {
        let sid = proposal.session_id.clone();
        let decline = |reason: Refusal| decide::decline_refresh(&proposal.session_id, reason);
        let group_key = &proposal.group_public_key;
        let Some(verdict) = self.policy(from).map(|p| p.refresh(group_key)) else {
            self.internal.push(decline(Refusal::Unexpected));
            return;
        };
        let Some(storage) = self.storage.clone() else {
            self.internal.push(decline(Refusal::NoKeystore));
            return;
        };
        let file = match decide::wallet_for(&storage.keystore, group_key, &self.opts.peer_id) {
            Ok(file) => file,
            Err(reason) => {
                self.internal.push(decline(reason));
                return;
            }
        };
        self.session = Some(sid.clone());
        self.proposal_at = Some(Instant::now());
        let asked = match verdict {
            Verdict::Refuse(reason) => {
                self.internal.push(decline(reason));
                return;
            }
            Verdict::Accept => false,
            Verdict::Ask => true,
        };
        let m = &file.metadata;
        let address =
            mpc_address::addresses(&m.curve, &m.group_public_key, self.opts.signing.network)
                .ok()
                .and_then(|a| a.bitcoin_taproot.or(a.solana))
                .unwrap_or_default();
        let req = RefreshRequest {
            from: from.to_string(),
            proposal: proposal.clone(),
            wallet_id: m.id.clone(),
            removed: m
                .participants
                .iter()
                .filter(|p| !proposal.participants.contains(p))
                .cloned()
                .collect(),
            address,
        };
        let ask = obs.refresh_prompt();
        let tx = self.events_tx.clone();
        tokio::task::spawn_blocking(move || {
            let approved = if asked && !ask(req) {
                Err(Refusal::ByUser)
            } else {
                Ok(())
            };
            let answer = decide::refresh_answer(&sid, approved, &file, &storage.passphrase);
            let _ = tx.blocking_send(answer);
        });
    }

    /// A repair proposal. The target (this node lost its share) takes
    /// part if its policy or its user says so; a helper finds the wallet,
    /// helps only a target whose identity key is pinned unless its user
    /// approves, and answers with its decrypted key package.
    fn on_repair_proposal(
        &mut self,
        from: &str,
        proposal: &mpc_protocol::peer::RepairProposal,
        new_keys: &[mpc_core::NewKey],
        obs: &mut dyn Observer,
    ) {
        let sid = proposal.session_id.clone();
        let decline = |reason: Refusal| decide::decline_repair(&proposal.session_id, reason);
        let group_key = &proposal.group_public_key;
        let target = proposal.target == self.opts.peer_id;
        let Some(verdict) = self.policy(from).map(|p| p.repair(group_key, target)) else {
            self.internal.push(decline(Refusal::Unexpected));
            return;
        };
        let Some(storage) = self.storage.clone() else {
            self.internal.push(decline(Refusal::NoKeystore));
            return;
        };
        let held = decide::wallet_for(&storage.keystore, group_key, &self.opts.peer_id);
        let file = match (target, held) {
            (true, Ok(f)) => {
                self.internal
                    .push(decline(Refusal::AlreadyHeld(f.metadata.id)));
                return;
            }
            (true, Err(_)) => None,
            (false, Ok(f)) => Some(f),
            (false, Err(reason)) => {
                self.internal.push(decline(reason));
                return;
            }
        };
        let target_unpinned = new_keys.iter().any(|k| k.peer == proposal.target);
        let asked = match verdict {
            Verdict::Refuse(reason) => {
                self.internal.push(decline(reason));
                return;
            }
            // Unattended, a helper helps only a target it already knows.
            Verdict::Accept if !target && target_unpinned => {
                self.internal
                    .push(decline(Refusal::TargetNotPinned(proposal.target.clone())));
                return;
            }
            Verdict::Accept => false,
            Verdict::Ask => true,
        };
        self.session = Some(sid.clone());
        self.proposal_at = Some(Instant::now());
        self.repair_target = target;
        let req = RepairRequest {
            from: from.to_string(),
            proposal: proposal.clone(),
            target_unpinned,
        };
        let ask = obs.repair_prompt();
        let tx = self.events_tx.clone();
        tokio::task::spawn_blocking(move || {
            let approved = if asked && !ask(req) {
                Err(Refusal::ByUser)
            } else {
                Ok(())
            };
            let answer = decide::repair_answer(&sid, approved, file.as_ref(), &storage.passphrase);
            let _ = tx.blocking_send(answer);
        });
    }
}

/// Where a sealed share goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    /// A new wallet's file, not to be funded until confirmed.
    New,
    /// A refresh's new share, beside the current one.
    Pending,
    /// The current file rewritten (a participant added): the same
    /// wallet, created when it was and as confirmed as it was.
    Replace,
}

/// Seals `w`'s share with the storage's passphrase and writes it where
/// `to` says. scrypt takes about a second: this runs off the async threads.
async fn seal_to(
    storage: super::Storage,
    mut w: WalletResult,
    peer_id: String,
    to: Write,
) -> Result<PathBuf, NodeError> {
    tokio::task::spawn_blocking(move || {
        let ks = &storage.keystore;
        let current = match to {
            Write::New => None,
            Write::Pending | Write::Replace => {
                Some(ks.find(&mpc_keystore::wallet_id(&w.group_public_key))?.1)
            }
        };
        let created_at = match &current {
            Some(c) => c.metadata.created_at,
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        if let (Write::Replace, Some(c)) = (to, &current) {
            w.session_id = c.metadata.session_id.clone();
        }
        let mut file = mpc_keystore::wallet::seal_wallet(
            &w,
            &peer_id,
            created_at,
            &storage.passphrase,
            storage.work_factor,
        )?;
        file.confirmation = match (to, current) {
            (Write::Replace, Some(c)) => c.confirmation,
            _ => Some(Confirmation::Pending),
        };
        match to {
            Write::New => ks.save(&file),
            Write::Pending => ks.save_pending(&file),
            Write::Replace => ks.replace(&file),
        }
    })
    .await
    .map_err(|e| NodeError::Store(e.to_string()))?
    .map_err(|e| NodeError::Store(e.to_string()))
}
