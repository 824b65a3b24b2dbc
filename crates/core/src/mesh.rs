//! Mesh bookkeeping for one session: who offers to whom, which data
//! channels are open, and who has said `mesh_ready`.
//!
//! The driver does the WebRTC work; this module only decides and counts.

use std::collections::BTreeSet;

/// In each pair, the peer id that sorts first creates the data channel and
/// sends the offer, so two peers never offer to each other at once.
pub fn is_offerer(me: &str, peer: &str) -> bool {
    me < peer
}

/// Channel and `mesh_ready` state towards every other participant.
#[derive(Clone, Debug, Default)]
pub(crate) struct Mesh {
    others: BTreeSet<String>,
    /// Channels this node's driver reported open.
    open: BTreeSet<String>,
    /// Peers that told us (`channel_open`) their side is open.
    confirmed: BTreeSet<String>,
    ready_sent: bool,
    ready_from: BTreeSet<String>,
}

impl Mesh {
    pub fn new(others: impl IntoIterator<Item = String>) -> Self {
        Mesh {
            others: others.into_iter().collect(),
            ..Mesh::default()
        }
    }

    /// Records an open channel; true if it is new and belongs to the mesh.
    pub fn opened(&mut self, peer: &str) -> bool {
        self.others.contains(peer) && self.open.insert(peer.to_string())
    }

    pub fn confirmed_by(&mut self, peer: &str) -> bool {
        self.others.contains(peer) && self.confirmed.insert(peer.to_string())
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    pub fn needed(&self) -> usize {
        self.others.len()
    }

    /// Every channel is open: time to send `mesh_ready` (once).
    pub fn take_ready_to_send(&mut self) -> bool {
        if !self.ready_sent && self.open.len() == self.others.len() {
            self.ready_sent = true;
            true
        } else {
            false
        }
    }

    /// Records a peer's `mesh_ready`; true if it is new.
    pub fn ready_from(&mut self, peer: &str) -> bool {
        self.others.contains(peer) && self.ready_from.insert(peer.to_string())
    }

    pub fn ready_count(&self) -> usize {
        self.ready_from.len()
    }

    /// This node's mesh is complete and every peer's is too: DKG may start.
    pub fn all_ready(&self) -> bool {
        self.ready_sent && self.ready_from.len() == self.others.len()
    }

    /// Who the mesh is still waiting for, for a timeout's reason.
    pub fn waiting_for(&self) -> Vec<String> {
        let closed: Vec<String> = self
            .others
            .iter()
            .filter(|p| !self.open.contains(*p))
            .cloned()
            .collect();
        if !closed.is_empty() {
            return closed;
        }
        self.others
            .iter()
            .filter(|p| !self.ready_from.contains(*p))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_side_offers() {
        for (a, b) in [("cli1", "cli2"), ("chrome1", "cli1"), ("node10", "node9")] {
            assert_ne!(is_offerer(a, b), is_offerer(b, a), "{a} {b}");
        }
        assert!(is_offerer("chrome1", "cli1"));
    }

    #[test]
    fn ready_only_once_all_open() {
        let mut m = Mesh::new(["b".to_string(), "c".to_string()]);
        assert!(m.opened("b"));
        assert!(!m.opened("b"));
        assert!(!m.opened("zed"), "not in the mesh");
        assert!(!m.take_ready_to_send());
        assert_eq!(m.waiting_for(), vec!["c"]);
        assert!(m.opened("c"));
        assert!(m.take_ready_to_send());
        assert!(!m.take_ready_to_send(), "mesh_ready is sent once");
        assert!(m.ready_from("b") && m.ready_from("c"));
        assert!(m.all_ready());
    }
}
