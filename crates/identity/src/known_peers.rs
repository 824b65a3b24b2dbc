//! The address book: one pinned identity key per peer id, trusted on
//! first use like SSH's `known_hosts`. A key that differs from the pinned
//! one is refused until the user re-pins it.
//!
//! Text form, one peer per line (`#` starts a comment):
//! `<peer_id> ed25519 <hex public key>`.

use std::collections::BTreeMap;

use crate::{Error, PublicKey};

/// What the address book says about a key offered for a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// The pinned key.
    Pinned,
    /// No key is pinned for this peer yet.
    New,
    /// Another key is pinned: refuse.
    Changed { pinned: PublicKey },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownPeers {
    keys: BTreeMap<String, PublicKey>,
}

impl KnownPeers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, peer: &str) -> Option<&PublicKey> {
        self.keys.get(peer)
    }

    pub fn check(&self, peer: &str, key: &PublicKey) -> Trust {
        match self.keys.get(peer) {
            None => Trust::New,
            Some(k) if k == key => Trust::Pinned,
            Some(k) => Trust::Changed { pinned: *k },
        }
    }

    /// Pins `key` for `peer`, replacing any earlier key; returns the old one.
    pub fn pin(&mut self, peer: &str, key: PublicKey) -> Option<PublicKey> {
        self.keys.insert(peer.to_string(), key)
    }

    pub fn forget(&mut self, peer: &str) -> Option<PublicKey> {
        self.keys.remove(peer)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &PublicKey)> {
        self.keys.iter().map(|(p, k)| (p.as_str(), k))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut keys = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |what: &str| Error::Parse(format!("known peers line {}: {what}", i + 1));
            let mut f = line.split_whitespace();
            let (Some(peer), Some(kind), Some(key), None) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                return Err(bad("expected `<peer_id> ed25519 <hex key>`"));
            };
            if kind != "ed25519" {
                return Err(bad(&format!("unknown key type {kind:?}")));
            }
            let key: PublicKey = key.parse().map_err(|e| bad(&format!("{e}")))?;
            keys.insert(peer.to_string(), key);
        }
        Ok(KnownPeers { keys })
    }

    pub fn to_text(&self) -> String {
        let mut s = String::from("# mpc-wallet known peers: <peer_id> ed25519 <public key>\n");
        for (p, k) in &self.keys {
            s.push_str(&format!("{p} ed25519 {k}\n"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IdentityKey;

    #[test]
    fn trust_on_first_use_then_refuse_changes() {
        let a = IdentityKey::from_seed([1; 32]).public_key();
        let b = IdentityKey::from_seed([2; 32]).public_key();
        let mut book = KnownPeers::new();
        assert_eq!(book.check("cli1", &a), Trust::New);
        book.pin("cli1", a);
        assert_eq!(book.check("cli1", &a), Trust::Pinned);
        assert_eq!(book.check("cli1", &b), Trust::Changed { pinned: a });
        let text = book.to_text();
        assert_eq!(KnownPeers::parse(&text).unwrap(), book);
        assert!(KnownPeers::parse("cli1 rsa abcd").is_err());
        assert!(KnownPeers::parse("cli1 ed25519 zz").is_err());
    }
}
