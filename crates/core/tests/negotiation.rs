//! Proposal validation as a node sees it: each bad proposal is rejected
//! with a clear reason, and the sender is told why through the relay.

use mpc_core::{Action, Event, Progress};
use mpc_protocol::peer::SessionResponse;
use mpc_protocol::PeerMessage;

mod common;
use common::proposals::*;
use common::{node, relayed};

#[test]
fn a_valid_proposal_asks_for_a_decision() {
    let mut n = node("cli2");
    let actions = deliver(&mut n, "cli1", proposal());
    assert!(
        matches!(&actions[..], [Action::Progress(Progress::NeedsDecision { from, .. })] if from == "cli1"),
        "{actions:?}"
    );
    assert_eq!(n.active_session(), Some("s1"));
}

#[test]
fn not_listed() {
    assert_rejected(
        &deliver(&mut node("cli9"), "cli1", proposal()),
        "cli1",
        "cli9 is not listed",
    );
}

#[test]
fn total_mismatch() {
    let mut p = proposal();
    p.total = 4;
    assert_rejected(
        &deliver(&mut node("cli2"), "cli1", p),
        "cli1",
        "total is 4 but 3 participants",
    );
}

#[test]
fn threshold_bounds() {
    for t in [0, 1, 4] {
        let mut p = proposal();
        p.threshold = t;
        assert_rejected(
            &deliver(&mut node("cli2"), "cli1", p),
            "cli1",
            "must be between 2 and total 3",
        );
    }
}

#[test]
fn duplicate_ids() {
    let mut p = proposal();
    p.participants = vec!["cli1".into(), "cli2".into(), "cli1".into()];
    assert_rejected(
        &deliver(&mut node("cli2"), "cli1", p),
        "cli1",
        "cli1 is listed twice",
    );
}

#[test]
fn unknown_curve() {
    let mut p = proposal();
    p.curve = Some("p256".into());
    assert_rejected(
        &deliver(&mut node("cli2"), "cli1", p),
        "cli1",
        "unknown curve \"p256\"",
    );
}

#[test]
fn from_a_non_participant() {
    let mut p = proposal();
    p.initiator = Some("mallory".into());
    assert_rejected(
        &deliver(&mut node("cli2"), "mallory", p),
        "mallory",
        "mallory, who is not among its participants",
    );
}

#[test]
fn initiator_field_must_be_the_sender() {
    assert_rejected(
        &deliver(&mut node("cli2"), "chrome1", proposal()),
        "chrome1",
        "names cli1 as its initiator",
    );
}

#[test]
fn reused_session_id_is_rejected_even_after_the_session_ended() {
    let mut n = node("cli2");
    deliver(&mut n, "cli1", proposal());
    n.handle(Event::Decision {
        session_id: "s1".into(),
        accept: false,
        reason: None,
    });
    assert_eq!(n.active_session(), None);
    let mut p = proposal();
    p.threshold = 3; // a different proposal under the old id
    assert_rejected(
        &deliver(&mut n, "cli1", p),
        "cli1",
        "session id s1 is already used",
    );
}

#[test]
fn a_session_already_in_progress_is_not_replaced() {
    let mut n = node("cli2");
    deliver(&mut n, "cli1", proposal());
    // Another participant tries to start a session under the same id...
    let mut p = proposal();
    p.initiator = Some("chrome1".into());
    assert_rejected(
        &deliver(&mut n, "chrome1", p),
        "chrome1",
        "session id s1 is already used",
    );
    // ...or a different one while s1 is running.
    let mut p = proposal();
    p.session_id = "s2".into();
    assert_rejected(&deliver(&mut n, "cli1", p), "cli1", "busy with session s1");
    assert_eq!(n.active_session(), Some("s1"));
}

#[test]
fn a_relayed_duplicate_is_ignored_without_a_decline() {
    let mut n = node("cli2");
    deliver(&mut n, "cli1", proposal());
    let again = deliver(&mut n, "cli1", proposal());
    assert!(
        matches!(&again[..], [Action::Rejected { reason, .. }] if reason == "duplicate proposal"),
        "{again:?}"
    );
}

#[test]
fn create_validates_too() {
    let mut n = node("cli1");
    let actions = create(&mut n, vec!["cli1".into(), "cli2".into()], 3, &[]);
    assert!(
        matches!(&actions[..], [Action::Aborted { reason, .. }] if reason.to_string().contains("threshold 3 must be between 2 and total 2")),
        "{actions:?}"
    );
}

#[test]
fn a_response_before_its_proposal_is_buffered() {
    let mut n = node("cli2");
    let early = n.handle(relayed(
        "chrome1",
        "cli2",
        &PeerMessage::SessionResponse(SessionResponse {
            session_id: "s1".into(),
            accepted: true,
            reason: None,
            proposal_hash: None,
        }),
    ));
    assert!(early.is_empty(), "{early:?}");
    deliver(&mut n, "cli1", proposal());
    // Accepting completes the set: cli1 (initiator), chrome1 (buffered), cli2.
    let actions = n.handle(Event::Decision {
        session_id: "s1".into(),
        accept: true,
        reason: None,
    });
    let connects: Vec<(String, bool)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Connect { peer, offerer } => Some((peer.clone(), *offerer)),
            _ => None,
        })
        .collect();
    // cli2 sorts after both, so it waits for their offers.
    assert_eq!(
        connects,
        vec![("chrome1".to_string(), false), ("cli1".to_string(), false)]
    );
}
