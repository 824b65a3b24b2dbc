//! Identities as a node sees them: signed proposals and messages, pinned
//! and changed keys, signed DTLS fingerprints and registrations.

use mpc_core::{testing, AbortReason, Action, Command, Event, Node, Progress};
use mpc_protocol::peer::{SessionProposal, SessionResponse};
use mpc_protocol::signal::{ClientMessage, RawJson, ServerMessage};
use mpc_protocol::{PeerMessage, RelayData, SignedMessage};
use sha2::Digest;

mod common;
use common::proposals::*;
use common::{node, pinned, relayed};

fn with_keys(actual: &[(&str, String)]) -> SessionProposal {
    common::with_keys(proposal(), actual)
}

#[test]
fn an_unsigned_proposal_is_rejected() {
    let mut n = node("cli2");
    let msg = SignedMessage::unsigned(PeerMessage::SessionProposal(with_keys(&[])));
    let actions = n.handle(testing::relayed_signed("cli1", msg));
    assert_ignored(&actions, "unsigned session_proposal from cli1");
}

/// Review finding 9: a forged proposal reusing the id of a session in
/// progress (a server can stamp any sender) once drew a genuine signed
/// decline, which ended the real session and blamed this node.
#[test]
fn a_forged_proposal_for_a_running_session_gets_no_answer() {
    let mut n = node("cli2");
    deliver(&mut n, "cli1", proposal());
    let mut forged = with_keys(&[]);
    forged.threshold = 3;
    let msg = testing::signed(
        &testing::identity("mallory"),
        "cli1",
        "cli2",
        PeerMessage::SessionProposal(forged),
    );
    let actions = n.handle(testing::relayed_signed("cli1", msg));
    assert_ignored(&actions, "bad signature");
    assert_eq!(n.active_session(), Some("s1"));
}

/// An answer names the proposal it answers. A participant's signed answer
/// to another proposal for this very session says the proposer sent them
/// different ones (issue 14: another PSBT to each signer): the session
/// ends, blaming the proposer, and this node's decline tells the others.
/// A forged proposal draws no signed answer at all (finding 9), so it can't
/// be used to frame a proposer.
#[test]
fn a_response_to_another_proposal_ends_the_session_naming_the_proposer() {
    let decline = |hash: &str| {
        PeerMessage::SessionResponse(SessionResponse {
            session_id: "s1".into(),
            accepted: false,
            reason: Some("no".into()),
            proposal_hash: Some(hash.into()),
        })
    };
    let mut n = node("cli2");
    deliver(&mut n, "cli1", proposal());
    let actions = n.handle(relayed("chrome1", "cli2", &decline(&"00".repeat(32))));
    assert!(
        actions.iter().any(|a| matches!(a, Action::Aborted {
            reason: AbortReason::ProposalsDiffer { proposer, peer }, ..
        } if proposer == "cli1" && peer == "chrome1")),
        "{actions:?}"
    );
    let declined = actions
        .iter()
        .filter(|a| {
            matches!(a, Action::SendSignal(ClientMessage::Relay { data, .. })
            if data.get().contains("\"session_response\""))
        })
        .count();
    assert_eq!(declined, 2, "a decline to cli1 and chrome1: {actions:?}");
    assert_eq!(n.active_session(), None);

    // The same decline naming this proposal ends it, blaming chrome1.
    let mut n = node("cli2");
    deliver(&mut n, "cli1", proposal());
    let json = PeerMessage::SessionProposal(with_keys(&[])).to_json();
    let hash = hex::encode(sha2::Sha256::digest(json));
    let actions = n.handle(relayed("chrome1", "cli2", &decline(&hash)));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Aborted { reason, .. }
            if reason.culprit() == Some("chrome1"))),
        "{actions:?}"
    );
}

#[test]
fn a_proposal_signed_by_another_key_is_rejected() {
    let mut n = node("cli2");
    let mallory = testing::identity("mallory");
    let msg = testing::signed(
        &mallory,
        "cli1",
        "cli2",
        PeerMessage::SessionProposal(with_keys(&[])),
    );
    let actions = n.handle(testing::relayed_signed("cli1", msg));
    assert_ignored(&actions, "bad signature on session_proposal from cli1");
}

#[test]
fn a_signature_for_another_recipient_is_rejected() {
    // cli1 really signed this, but for chrome1: replayed to cli2 it fails.
    let mut n = node("cli2");
    let msg = testing::signed(
        &testing::identity("cli1"),
        "cli1",
        "chrome1",
        PeerMessage::SessionProposal(with_keys(&[])),
    );
    let actions = n.handle(testing::relayed_signed("cli1", msg));
    assert_ignored(&actions, "bad signature");
}

#[test]
fn a_proposal_with_another_key_for_this_node_is_rejected() {
    let mut n = node("cli2");
    let other = testing::identity("not cli2").public_key().to_hex();
    let actions = deliver(&mut n, "cli1", with_keys(&[("cli2", other)]));
    assert_rejected(&actions, "cli1", "another identity key for this node");
}

#[test]
fn a_changed_key_is_refused_until_re_pinned() {
    // cli2 pinned chrome1's real key; the proposal lists another one.
    let real = testing::identity("chrome1").public_key();
    let mut n = pinned("cli2", &[("chrome1", real)], false);
    let fake = testing::identity("fake chrome1").public_key();
    let actions = deliver(&mut n, "cli1", with_keys(&[("chrome1", fake.to_hex())]));
    assert_rejected(&actions, "cli1", "identity key of chrome1 changed");
    // The same for a proposer whose own key changed.
    let mut n = pinned("cli2", &[("cli1", real)], false);
    let actions = deliver(&mut n, "cli1", with_keys(&[]));
    assert_rejected(&actions, "cli1", "identity key of cli1 changed");
}

#[test]
fn new_keys_are_shown_then_pinned_on_accept() {
    let mut n = pinned(
        "cli2",
        &[("cli1", testing::identity("cli1").public_key())],
        false,
    );
    let actions = deliver(&mut n, "cli1", proposal());
    let new: Vec<String> = actions
        .iter()
        .find_map(|a| match a {
            Action::Progress(Progress::NeedsDecision { new_keys, .. }) => {
                Some(new_keys.iter().map(|k| k.peer.clone()).collect())
            }
            _ => None,
        })
        .expect("a decision");
    assert_eq!(new, vec!["chrome1".to_string()]);
    assert!(n.known_peers().get("chrome1").is_none());
    let actions = n.handle(Event::Decision {
        session_id: "s1".into(),
        accept: true,
        reason: None,
    });
    // Review finding 2: chrome1's key is vouched for by cli1 alone, so
    // accepting does not pin it; only a completed session does (see
    // security.rs).
    assert!(!actions.iter().any(|a| matches!(a, Action::PinKey { .. })));
    assert!(n.known_peers().get("chrome1").is_none());
}

#[test]
fn accepting_pins_the_proposers_new_key_only() {
    let mut n = node("cli2");
    deliver(&mut n, "cli1", proposal());
    let actions = n.handle(Event::Decision {
        session_id: "s1".into(),
        accept: true,
        reason: None,
    });
    let pinned: Vec<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::PinKey { peer, key } => {
                assert_eq!(*key, testing::identity(peer).public_key());
                Some(peer.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(pinned, ["cli1"]);
}

#[test]
fn strict_nodes_refuse_unpinned_keys() {
    let mut n = pinned(
        "cli2",
        &[("cli1", testing::identity("cli1").public_key())],
        true,
    );
    let actions = deliver(&mut n, "cli1", proposal());
    assert_rejected(&actions, "cli1", "identity key of chrome1");
    assert_rejected(&actions, "cli1", "accepts pinned keys only");
}

#[test]
fn session_messages_must_be_signed_by_their_sender() {
    let mut n = node("cli2");
    deliver(&mut n, "cli1", proposal());
    let response = PeerMessage::SessionResponse(SessionResponse {
        session_id: "s1".into(),
        accepted: false,
        reason: Some("forged".into()),
        proposal_hash: None,
    });
    // Unsigned, or signed by cli1 in chrome1's name: rejected, session on.
    for msg in [
        SignedMessage::unsigned(response.clone()),
        testing::signed(
            &testing::identity("cli1"),
            "chrome1",
            "cli2",
            response.clone(),
        ),
    ] {
        let actions = n.handle(testing::relayed_signed("chrome1", msg));
        assert!(
            matches!(&actions[..], [Action::Rejected { reason, .. }] if reason.contains("session_response from chrome1")),
            "{actions:?}"
        );
        assert_eq!(n.active_session(), Some("s1"));
    }
    // Properly signed, the decline ends the session.
    let actions = n.handle(relayed("chrome1", "cli2", &response));
    assert!(
        actions.iter().any(|a| matches!(a, Action::Aborted { .. })),
        "{actions:?}"
    );
}

#[test]
fn create_refuses_a_key_the_server_swapped() {
    let real = testing::identity("cli2").public_key();
    let mut n = pinned("cli1", &[("cli2", real)], false);
    let fake = testing::identity("server's own").public_key().to_hex();
    let actions = create(
        &mut n,
        vec!["cli1".into(), "cli2".into()],
        2,
        &[("cli2", fake)],
    );
    assert!(
        matches!(&actions[..], [Action::Aborted { reason, .. }] if reason.to_string().contains("identity key of cli2 changed")),
        "{actions:?}"
    );
    // The server's honest answer goes through, and pins nothing new.
    let mut n = pinned("cli1", &[("cli2", real)], false);
    let actions = create(&mut n, vec!["cli1".into(), "cli2".into()], 2, &[]);
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::SendSignal(ClientMessage::Relay { to, .. }) if to == "cli2")));
    assert!(!actions.iter().any(|a| matches!(a, Action::PinKey { .. })));
}

/// cli2 accepted s1 with cli1 and chrome1; both accepted too: mesh phase.
fn in_mesh() -> Node {
    let mut n = node("cli2");
    deliver(&mut n, "cli1", proposal());
    let ok = PeerMessage::SessionResponse(SessionResponse {
        session_id: "s1".into(),
        accepted: true,
        reason: None,
        proposal_hash: None,
    });
    n.handle(relayed("chrome1", "cli2", &ok));
    n.handle(Event::Decision {
        session_id: "s1".into(),
        accept: true,
        reason: None,
    });
    n
}

fn offer(from: &str, sdp_fp: &str, sig_fp: &str) -> Event {
    use mpc_protocol::relay::{sdp_fingerprints, WebRtcSignal};
    let sdp = format!("v=0\r\na=fingerprint:sha-256 {sdp_fp}\r\n");
    let signed_sdp = format!("v=0\r\na=fingerprint:sha-256 {sig_fp}\r\n");
    let fps = sdp_fingerprints(&signed_sdp).unwrap();
    let sig = testing::identity(from)
        .sign(&mpc_identity::statement::dtls_fingerprint(
            from, "cli2", &fps,
        ))
        .to_hex();
    Event::Signal(ServerMessage::Relay {
        from: from.into(),
        data: RawJson::from_value(&RelayData::WebRtc {
            signal: WebRtcSignal::Offer { sdp },
            sig: Some(sig),
        }),
    })
}

#[test]
fn a_signed_offer_reaches_the_driver() {
    let mut n = in_mesh();
    let actions = n.handle(offer("chrome1", "AA:BB", "AA:BB"));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::WebRtcSignal { from, .. } if from == "chrome1")),
        "{actions:?}"
    );
}

#[test]
fn a_swapped_fingerprint_aborts_naming_the_peer() {
    let mut n = in_mesh();
    let actions = n.handle(offer("chrome1", "EE:VV:11", "AA:BB"));
    let reason = actions
        .iter()
        .find_map(|a| match a {
            Action::Aborted { reason, .. } => Some(reason.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no abort: {actions:?}"));
    assert!(
        reason.contains("possible man-in-the-middle on the connection with chrome1"),
        "{reason}"
    );
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::WebRtcSignal { .. })));
}

#[test]
fn each_connection_registers_over_its_own_challenge() {
    use mpc_identity::statement;
    let mut n = node("cli2");
    let key = testing::identity("cli2").public_key();
    let challenge = |nonce: [u8; 32]| {
        Event::Signal(ServerMessage::Challenge {
            nonce: hex::encode(nonce),
        })
    };
    let signed_over = |actions: &[Action], nonce: [u8; 32]| match actions {
        [Action::SendSignal(ClientMessage::Register {
            signature: Some(sig),
            ..
        })] => key
            .verify_hex(&statement::register(&nonce, "cli2"), sig)
            .is_ok(),
        _ => false,
    };
    // Register asked first, challenge second (the usual order on connect).
    assert!(n.handle(Event::Command(Command::Register)).is_empty());
    let a = n.handle(challenge([1; 32]));
    assert!(signed_over(&a, [1; 32]), "{a:?}");
    // Reconnected: the old challenge is spent, so it waits for the new one.
    assert!(n.handle(Event::Command(Command::Register)).is_empty());
    let a = n.handle(challenge([2; 32]));
    assert!(signed_over(&a, [2; 32]), "{a:?}");
    // The other order works too.
    assert!(n.handle(challenge([3; 32])).is_empty());
    let a = n.handle(Event::Command(Command::Register));
    assert!(signed_over(&a, [3; 32]), "{a:?}");
}

/// Review finding 16: with the server's host configured (the CLI takes it
/// from its URL), the signed register names it.
#[test]
fn a_registration_names_the_server() {
    use mpc_identity::statement;
    let mut n = common::node_with("cli2", |c| c.server_host = Some("sig.example:8787".into()));
    n.handle(Event::Command(Command::Register));
    let a = n.handle(Event::Signal(ServerMessage::Challenge {
        nonce: hex::encode([4; 32]),
    }));
    let [Action::SendSignal(ClientMessage::Register {
        signature: Some(sig),
        ..
    })] = &a[..]
    else {
        panic!("{a:?}")
    };
    let key = testing::identity("cli2").public_key();
    let at = |host| statement::register_at(&[4; 32], "cli2", host);
    assert!(key.verify_hex(&at("sig.example:8787"), sig).is_ok());
    assert!(key.verify_hex(&at("other.example:8787"), sig).is_err());
    assert!(key
        .verify_hex(&statement::register(&[4; 32], "cli2"), sig)
        .is_err());
}
