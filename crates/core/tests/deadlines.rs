//! `Node::next_deadline` covers everything that can time out: a driver
//! that ticks only then (never on a fixed beat) still sees every timeout,
//! at the moment it falls due.

use mpc_core::{AbortReason, Action, Command, Event, Node};
use mpc_protocol::peer::{Curve, SessionResponse};
use mpc_protocol::PeerMessage;

mod common;
use common::{proposal, relayed, with_keys};

const TIMEOUT: u64 = 5_000;

fn node(id: &str) -> Node {
    common::node_with(id, |c| c.timeout_ms = TIMEOUT)
}

/// Ticks `n` only at its next deadline until it reports an abort; returns
/// when, and why.
fn run_to_abort(n: &mut Node) -> (u64, AbortReason) {
    for _ in 0..10 {
        let at = n
            .next_deadline()
            .expect("a node with something to time out has a deadline");
        for a in n.handle(Event::Tick(at)) {
            if let Action::Aborted { reason, .. } = a {
                return (at, reason);
            }
        }
    }
    panic!("no abort after ten deadlines");
}

fn create(n: &mut Node) {
    n.handle(Event::Command(Command::Create {
        session_id: Some("s1".into()),
        participants: vec!["a".into(), "b".into(), "c".into()],
        threshold: 2,
        curve: Curve::Secp256k1,
    }));
}

#[test]
fn a_command_waiting_for_the_peer_list_times_out() {
    let mut a = node("a");
    assert_eq!(a.next_deadline(), None);
    create(&mut a);
    assert_eq!(
        run_to_abort(&mut a),
        (TIMEOUT, AbortReason::NoPeerList),
        "the parked command's deadline"
    );
    assert_eq!(a.next_deadline(), None);
}

#[test]
fn an_unanswered_proposal_times_out_at_its_deadline() {
    let mut b = node("b");
    let p = with_keys(proposal(&["a", "b", "c"]), &[]);
    b.handle(Event::Tick(1_000));
    b.handle(relayed("a", "b", &PeerMessage::SessionProposal(p)));
    let (at, reason) = run_to_abort(&mut b);
    assert_eq!(at, 1_000 + TIMEOUT);
    assert!(matches!(reason, AbortReason::Timeout { .. }), "{reason:?}");
}

#[test]
fn buffered_messages_for_unknown_sessions_expire_at_their_deadline() {
    let mut b = node("b");
    let early = SessionResponse {
        session_id: "later".into(),
        accepted: true,
        reason: None,
        proposal_hash: None,
    };
    b.handle(Event::Tick(200));
    b.handle(relayed("a", "b", &PeerMessage::SessionResponse(early)));
    // Nothing but the buffered response can time out: its expiry is the
    // deadline, and once it passed, nothing is left to wake up for.
    assert_eq!(b.next_deadline(), Some(200 + TIMEOUT));
    b.handle(Event::Tick(200 + TIMEOUT));
    assert_eq!(b.next_deadline(), None);
}
