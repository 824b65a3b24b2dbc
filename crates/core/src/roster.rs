//! Who is who in one FROST run: peer ids ↔ FROST identifiers, and which
//! one is this node. Shared by the DKG and signing engines.

use std::collections::BTreeMap;

use frost_core::{Ciphersuite, Identifier};
use zeroize::Zeroizing;

pub(crate) struct Roster<C: Ciphersuite> {
    pub my_id: Identifier<C>,
    ids: BTreeMap<String, Identifier<C>>,
    names: BTreeMap<Identifier<C>, String>,
}

impl<C: Ciphersuite> Roster<C> {
    /// `members` are (peer id, FROST identifier number); `me` must be one.
    pub fn new(me: &str, members: impl IntoIterator<Item = (String, u16)>) -> Result<Self, String> {
        let mut ids = BTreeMap::new();
        let mut names = BTreeMap::new();
        for (name, n) in members {
            let id = Identifier::<C>::try_from(n).map_err(|e| e.to_string())?;
            ids.insert(name.clone(), id);
            names.insert(id, name);
        }
        let my_id = *ids
            .get(me)
            .ok_or_else(|| "this node is not a participant".to_string())?;
        Ok(Roster { my_id, ids, names })
    }

    /// The peer id of `id`, for error messages.
    pub fn name(&self, id: &Identifier<C>) -> String {
        self.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| "<unknown identifier>".into())
    }

    /// The identifier of another member.
    pub fn peer_id(&self, peer: &str) -> Option<Identifier<C>> {
        self.ids.get(peer).copied().filter(|id| *id != self.my_id)
    }

    /// A package `peer` sent: its identifier and the bytes of `hex_data`
    /// (wiped when dropped, since shares are secret). `bad` turns what is
    /// wrong into the engine's error; `member` and `what` name the roles.
    pub fn incoming<E>(
        &self,
        peer: &str,
        hex_data: &str,
        (member, what): (&str, &str),
        bad: impl Fn(String) -> E,
    ) -> Result<(Identifier<C>, Zeroizing<Vec<u8>>), E> {
        let id = self
            .peer_id(peer)
            .ok_or_else(|| bad(format!("sender is not another {member}")))?;
        let raw = hex::decode(hex_data).map_err(|_| bad(format!("{what} is not hex")))?;
        Ok((id, Zeroizing::new(raw)))
    }

    /// Other members for whom `have` is false.
    pub fn missing(&self, have: impl Fn(&Identifier<C>) -> bool) -> Vec<String> {
        self.ids
            .iter()
            .filter(|(_, id)| **id != self.my_id && !have(id))
            .map(|(name, _)| name.clone())
            .collect()
    }
}
