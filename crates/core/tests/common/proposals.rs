//! Proposals as the spec's example sends them, and how a test checks a
//! node's answer to one.
#![allow(unused_imports)]

use mpc_core::{testing, Action, Command, Event, Node, Progress};
use mpc_protocol::peer::{Curve, SessionProposal, SessionResponse};
use mpc_protocol::signal::{ClientMessage, RawJson, ServerMessage};
use mpc_protocol::{PeerMessage, RelayData, SignedMessage};

use super::{node, relayed};

/// The spec's example: cli1 proposes a 2-of-3 to cli2 and chrome1.
pub fn proposal() -> SessionProposal {
    super::proposal(&["cli1", "cli2", "chrome1"])
}

/// Delivers `p` from `from` to `n` and returns its actions. Without keys,
/// `p` gets every participant's test key, signed by `from`'s.
pub fn deliver(n: &mut Node, from: &str, mut p: SessionProposal) -> Vec<Action> {
    if p.keys.is_none() {
        p.keys = Some(testing::keys(&p.participants, &[]));
    }
    n.handle(relayed(from, n.peer_id(), &PeerMessage::SessionProposal(p)))
}

/// `Create` on `n`, answered by a server that advertises `participants`'
/// test keys (or `actual`'s); returns the actions after the answer.
pub fn create(
    n: &mut Node,
    participants: Vec<String>,
    threshold: u16,
    actual: &[(&str, String)],
) -> Vec<Action> {
    let asked = n.handle(Event::Command(Command::Create {
        session_id: Some("s1".into()),
        participants: participants.clone(),
        threshold,
        curve: Curve::Ed25519,
    }));
    assert!(
        matches!(
            &asked[..],
            [Action::SendSignal(ClientMessage::ListPeers {
                keys: true,
                ..
            })]
        ),
        "{asked:?}"
    );
    let mut actions = n.handle(Event::Signal(ServerMessage::Peers {
        peers: participants.clone(),
        keys: Some(testing::keys(&participants, actual)),
    }));
    actions.retain(|a| !matches!(a, Action::Progress(Progress::Peers { .. })));
    actions
}

/// The proposal was rejected: a `Rejected` with `needle`, a decline relayed
/// to the sender carrying the same reason, and no decision asked for.
#[track_caller]
pub fn assert_rejected(actions: &[Action], sender: &str, needle: &str) {
    let rejected = actions.iter().find_map(|a| match a {
        Action::Rejected { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    let reason = rejected.unwrap_or_else(|| panic!("not rejected: {actions:?}"));
    assert!(
        reason.contains(needle),
        "{reason:?} should contain {needle:?}"
    );
    let decline = actions.iter().find_map(|a| match a {
        Action::SendSignal(ClientMessage::Relay { to, data }) => {
            Some((to.clone(), data.get().to_string()))
        }
        _ => None,
    });
    let (to, data) = decline.unwrap_or_else(|| panic!("no decline sent: {actions:?}"));
    assert_eq!(to, sender);
    match RelayData::from_json(&data).unwrap() {
        RelayData::Peer(SignedMessage {
            msg:
                PeerMessage::SessionResponse(SessionResponse {
                    accepted: false,
                    reason: Some(r),
                    ..
                }),
            ..
        }) => {
            assert!(r.contains(needle), "{r}")
        }
        other => panic!("not a decline: {other:?}"),
    }
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::Progress(Progress::NeedsDecision { .. }))));
}

/// The proposal was ignored: its signature does not prove who sent it, so
/// it gets no answer at all (an answer could end a real session).
#[track_caller]
pub fn assert_ignored(actions: &[Action], needle: &str) {
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Rejected { reason, .. } if reason.contains(needle))),
        "not rejected with {needle:?}: {actions:?}"
    );
    assert!(
        !actions.iter().any(|a| matches!(
            a,
            Action::SendSignal(_) | Action::Progress(Progress::NeedsDecision { .. })
        )),
        "answered: {actions:?}"
    );
}
