//! Threshold ECDSA on secp256k1 with DKLs23 (0xCarbon's `dkls23-secp256k1`,
//! pinned; unaudited, see `docs/security.md`): key generation and signing
//! as rounds of messages, for Ethereum wallets.
//!
//! Both protocols have the same shape, which [`Rounds`] names: in each
//! round a node sends every peer one part that is the same for all (the
//! broadcast) and one part for that peer alone (the direct part, which the
//! node phase seals to the recipient). A round starts once every peer's
//! part of the round before is in. Key generation has three rounds and
//! signing three; [`crate::node::phase::ecdsa`] moves the parts.
//!
//! Peers are named by peer id here and mapped to DKLs23 party indices by
//! their position in the sorted participant list (from 1), as FROST
//! identifiers are. Every message names its sender and receiver inside;
//! one that names anyone but the peer that sent it, or us, is that peer's
//! fault.
//!
//! DKLs23 draws its randomness from the OS itself (`rand::rng()`), not from
//! the node's seeded RNG, so ECDSA sessions in the simulator are not
//! reproducible byte for byte.

use std::collections::BTreeMap;

use dkls23_secp256k1::protocols::{
    Abort, AbortKind, AbortReason as Why, PartiesMessage, PartyIndex,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

type Scalar = k256::Scalar;

/// Why an ECDSA round cannot go on. A peer's fault names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum EcdsaError {
    /// What the peer sent does not decode, is misaddressed, or fails a
    /// check of the protocol.
    Invalid { peer: String, detail: String },
    /// A failure no single peer can be blamed for.
    Internal(String),
}

/// One round's parts from this node.
pub(crate) struct Outgoing {
    /// The same for every peer (may be empty).
    pub broadcast: Vec<u8>,
    /// Peer id → the part for it alone (sealed before it is sent).
    pub direct: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

/// What one peer sent in one round.
pub(crate) struct Incoming {
    pub broadcast: Vec<u8>,
    pub direct: Zeroizing<Vec<u8>>,
}

/// A protocol that runs as rounds of broadcast and direct parts.
pub(crate) trait Rounds {
    /// What the protocol ends with.
    type Output;
    /// How many rounds of messages it has.
    fn rounds(&self) -> u8;
    /// Round `r` (from 1): this node's parts, made from every peer's parts
    /// of round `r - 1` (nothing for round 1).
    fn round(&mut self, r: u8, inbox: BTreeMap<String, Incoming>) -> Result<Outgoing, EcdsaError>;
    /// The result, from every peer's parts of the last round.
    fn finish(&mut self, inbox: BTreeMap<String, Incoming>) -> Result<Self::Output, EcdsaError>;
}

/// Peer ids and their party indices, this node's included.
struct Roster {
    me: String,
    my_index: PartyIndex,
    /// Sorted by index.
    peers: BTreeMap<String, PartyIndex>,
}

impl Roster {
    fn new(me: &str, ids: &[(String, u16)]) -> Result<Self, EcdsaError> {
        let mut peers = BTreeMap::new();
        for (p, i) in ids {
            let i = u8::try_from(*i)
                .ok()
                .and_then(|i| PartyIndex::new(i).ok())
                .ok_or_else(|| EcdsaError::Internal(format!("{p} has no DKLs23 index")))?;
            peers.insert(p.clone(), i);
        }
        let my_index = *peers
            .get(me)
            .ok_or_else(|| EcdsaError::Internal("this node is not a participant".into()))?;
        Ok(Roster {
            me: me.to_string(),
            my_index,
            peers,
        })
    }

    fn others(&self) -> impl Iterator<Item = (&String, &PartyIndex)> {
        self.peers.iter().filter(|(p, _)| **p != self.me)
    }

    fn name(&self, index: PartyIndex) -> String {
        self.peers
            .iter()
            .find(|(_, i)| **i == index)
            .map(|(p, _)| p.clone())
            .unwrap_or_else(|| format!("party {}", index.as_u8()))
    }

    /// Every peer's part, in party-index order.
    fn ordered<'a>(
        &self,
        inbox: &'a BTreeMap<String, Incoming>,
    ) -> Vec<(&'a String, &'a Incoming)> {
        let mut v: Vec<_> = inbox.iter().collect();
        v.sort_by_key(|(p, _)| self.peers.get(*p).map(|i| i.as_u8()));
        v
    }

    /// That a message from `peer` names it as sender and us as receiver.
    fn check_route(&self, peer: &str, parties: &PartiesMessage) -> Result<(), EcdsaError> {
        let sender = self.peers.get(peer).copied();
        if Some(parties.sender) != sender || parties.receiver != self.my_index {
            return Err(invalid(peer, "a message addressed to someone else"));
        }
        Ok(())
    }

    /// A DKLs23 abort, with the peer it names as the culprit.
    fn abort(&self, a: Abort) -> EcdsaError {
        let culprit = match (&a.kind, &a.reason) {
            (AbortKind::BanCounterparty(p), _) => Some(*p),
            (
                _,
                Why::ProofVerificationFailed { counterparty }
                | Why::CommitmentMismatch { counterparty }
                | Why::TrivialInstancePoint { counterparty }
                | Why::OtConsistencyCheckFailed { counterparty }
                | Why::MultiplicationVerificationFailed { counterparty, .. }
                | Why::GammaUInconsistency { counterparty }
                | Why::ZeroShareDecommitFailed { counterparty }
                | Why::SessionBindingMismatch { counterparty },
            ) => Some(*counterparty),
            (_, Why::UnexpectedSender { sender } | Why::DuplicateSender { sender }) => {
                Some(*sender)
            }
            (
                _,
                Why::MissingCommittedPoint { party } | Why::ChainCodeCommitmentFailed { party },
            ) => Some(*party),
            _ => None,
        };
        match culprit {
            Some(p) if p != self.my_index => EcdsaError::Invalid {
                peer: self.name(p),
                detail: a.description(),
            },
            _ => EcdsaError::Internal(a.description()),
        }
    }
}

fn invalid(peer: &str, detail: &str) -> EcdsaError {
    EcdsaError::Invalid {
        peer: peer.to_string(),
        detail: detail.to_string(),
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, EcdsaError> {
    postcard::to_allocvec(value).map_err(|e| EcdsaError::Internal(e.to_string()))
}

/// Secret parts are encoded into a buffer that is wiped when dropped.
fn encode_secret<T: Serialize>(value: &T) -> Result<Zeroizing<Vec<u8>>, EcdsaError> {
    encode(value).map(Zeroizing::new)
}

fn decode<T: DeserializeOwned>(peer: &str, bytes: &[u8], what: &str) -> Result<T, EcdsaError> {
    postcard::from_bytes(bytes).map_err(|_| invalid(peer, &format!("{what} does not decode")))
}

fn out_of_order(what: &str) -> EcdsaError {
    EcdsaError::Internal(format!("{what} out of order"))
}

mod keygen;
mod sign;

pub(crate) use keygen::EcdsaKeygen;
pub(crate) use sign::{sign_id, EcdsaSigner};

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs every node's rounds in memory, as the mesh would.
    fn run<R: Rounds>(nodes: &mut BTreeMap<String, R>) -> BTreeMap<String, R::Output> {
        let names: Vec<String> = nodes.keys().cloned().collect();
        let rounds = nodes.values().next().map(|n| n.rounds()).unwrap_or(0);
        let mut inboxes: BTreeMap<String, BTreeMap<String, Incoming>> = BTreeMap::new();
        for r in 1..=rounds {
            let mut sent = BTreeMap::new();
            for (name, node) in nodes.iter_mut() {
                let inbox = inboxes.remove(name).unwrap_or_default();
                sent.insert(name.clone(), node.round(r, inbox).unwrap());
            }
            for from in &names {
                for to in names.iter().filter(|t| *t != from) {
                    let out = &sent[from];
                    let direct = out.direct.get(to).cloned().unwrap_or_default();
                    inboxes.entry(to.clone()).or_default().insert(
                        from.clone(),
                        Incoming {
                            broadcast: out.broadcast.clone(),
                            direct,
                        },
                    );
                }
            }
        }
        nodes
            .iter_mut()
            .map(|(n, node)| (n.clone(), node.finish(inboxes.remove(n).unwrap()).unwrap()))
            .collect()
    }

    #[test]
    fn a_garbled_or_misaddressed_part_names_its_sender() {
        let ps: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let mut nodes: BTreeMap<String, EcdsaKeygen> = ps
            .iter()
            .map(|p| (p.clone(), EcdsaKeygen::new(p, &ps, 2, [9; 32]).unwrap()))
            .collect();
        let r1: BTreeMap<String, Outgoing> = nodes
            .iter_mut()
            .map(|(n, k)| (n.clone(), k.round(1, BTreeMap::new()).unwrap()))
            .collect();
        let inbox_of = |to: &str, r: &BTreeMap<String, Outgoing>| -> BTreeMap<String, Incoming> {
            r.iter()
                .filter(|(from, _)| *from != to)
                .map(|(from, o)| {
                    (
                        from.clone(),
                        Incoming {
                            broadcast: o.broadcast.clone(),
                            direct: o.direct[to].clone(),
                        },
                    )
                })
                .collect()
        };
        let r2: BTreeMap<String, Outgoing> = nodes
            .iter_mut()
            .map(|(n, k)| (n.clone(), k.round(2, inbox_of(n, &r1)).unwrap()))
            .collect();
        // Garbage from a in round 2.
        let mut inbox = inbox_of("b", &r2);
        inbox.get_mut("a").unwrap().broadcast = b"garbage".to_vec();
        match nodes.get_mut("b").unwrap().round(3, inbox) {
            Err(EcdsaError::Invalid { peer, .. }) => assert_eq!(peer, "a"),
            other => panic!("{:?}", other.err()),
        }
        // c's part for b, passed off as a's: addressed from someone else.
        let mut inbox = inbox_of("c", &r2);
        let a_to_b = r2["a"].direct["b"].clone();
        inbox.get_mut("a").unwrap().direct = a_to_b;
        match nodes.get_mut("c").unwrap().round(3, inbox) {
            Err(EcdsaError::Invalid { peer, detail }) => {
                assert_eq!(peer, "a");
                assert!(detail.contains("addressed"), "{detail}");
            }
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn two_of_three_generate_and_sign() {
        let ps: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let mut nodes: BTreeMap<String, EcdsaKeygen> = ps
            .iter()
            .map(|p| (p.clone(), EcdsaKeygen::new(p, &ps, 2, [7; 32]).unwrap()))
            .collect();
        let out = run(&mut nodes);
        let keys: Vec<_> = out.values().map(|o| o.group_public_key.clone()).collect();
        assert!(keys.iter().all(|k| *k == keys[0] && k.len() == 33));
        let hashes: Vec<_> = out.values().map(|o| o.transcript_hash).collect();
        assert!(hashes.iter().all(|h| *h == hashes[0]));

        let hash = [42u8; 32];
        let signers = vec![("a".to_string(), 1u16), ("c".to_string(), 3u16)];
        let names = vec!["a".to_string(), "c".to_string()];
        let id = sign_id("s1", &hash, &names);
        let mut out = out;
        let mut signing: BTreeMap<String, EcdsaSigner> = names
            .iter()
            .map(|n| {
                let share = out.remove(n).unwrap().share;
                (
                    n.clone(),
                    EcdsaSigner::new(n, &signers, share, id, hash).unwrap(),
                )
            })
            .collect();
        let sigs = run(&mut signing);
        assert_eq!(sigs["a"], sigs["c"]);
    }

    #[test]
    fn a_stored_share_carries_its_format_version() {
        use crate::wallet::{KeyPackage, PublicKeyPackage, SecretKeyPackage};
        use mpc_protocol::peer::Curve;
        let ps: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let mut nodes: BTreeMap<String, EcdsaKeygen> = ps
            .iter()
            .map(|p| (p.clone(), EcdsaKeygen::new(p, &ps, 2, [9; 32]).unwrap()))
            .collect();
        let o = run(&mut nodes).remove("a").unwrap();
        let c = Curve::Secp256k1Ecdsa;
        let secret = SecretKeyPackage::new(KeyPackage::Secp256k1Ecdsa(o.share));
        let bytes = secret.serialize();
        assert!(bytes.starts_with(b"dkls\x01"));
        assert!(SecretKeyPackage::deserialize(c, &bytes).unwrap() == secret);
        let public = PublicKeyPackage::Secp256k1Ecdsa(o.public);
        let pbytes = public.serialize();
        assert!(pbytes.starts_with(b"dkls\x01"));
        assert_eq!(PublicKeyPackage::deserialize(c, &pbytes).unwrap(), public);

        // A later layout is refused by name; so is a header-less blob.
        let mut later = bytes.to_vec();
        later[4] = 2;
        let e = SecretKeyPackage::deserialize(c, &later).unwrap_err();
        assert!(
            e.contains("format version 2") && e.contains("reads version 1"),
            "{e}"
        );
        let e = PublicKeyPackage::deserialize(c, &pbytes[5..]).unwrap_err();
        assert!(e.contains("no DKLs23 header"), "{e}");
        assert!(SecretKeyPackage::deserialize(c, b"dkls\x01garbage").is_err());
    }
}
