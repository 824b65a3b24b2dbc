//! The mesh, shared by every kind: WebRTC signals passed to the driver
//! once their fingerprints are proven, `channel_open` per channel,
//! `mesh_ready` once all are open, and the start of the kind's rounds once
//! every peer is ready.

use mpc_protocol::peer::{ChannelOpen, MeshReady};
use mpc_protocol::relay::WebRtcSignal;
use mpc_protocol::PeerMessage;

use super::{dkg, refresh, repair, signing};
use crate::node::api::{Action, Progress};
use crate::node::session::{session_message, Common, Cx, Kind, Session, Stage, Step, Via};
use crate::session::AbortReason;
use crate::trust;

/// Passes a peer's offer, answer or candidate to the driver once its DTLS
/// fingerprint is proven to be that peer's.
pub(in crate::node) fn forward_signal(
    c: &Common,
    cx: &mut Cx,
    from: String,
    signal: WebRtcSignal,
    sig: Option<String>,
) -> Step {
    trust::verify_sdp(c.keys.get(&from), cx.me, &from, &signal, sig.as_deref()).map_err(
        |detail| AbortReason::PossibleMitm {
            peer: from.clone(),
            detail,
        },
    )?;
    cx.out.push(Action::WebRtcSignal { from, signal });
    Ok(())
}

/// The channel to `peer` is open (or was already, from an earlier session).
pub(in crate::node) fn on_channel_open(s: &mut Session, cx: &mut Cx, peer: &str) -> Step {
    let c = &mut s.common;
    if c.stage != Stage::Mesh || !c.mesh.opened(peer) {
        return Ok(());
    }
    let sid = c.id().to_string();
    cx.send(
        peer,
        PeerMessage::ChannelOpen(ChannelOpen {
            peer_id: peer.to_string(),
        }),
    );
    cx.progress(Progress::Mesh {
        session_id: sid.clone(),
        open: c.mesh.open_count(),
        needed: c.mesh.needed(),
    });
    if c.mesh.take_ready_to_send() {
        let msg = PeerMessage::MeshReady(MeshReady { session_id: sid });
        cx.send_all(&c.others, &msg);
    }
    maybe_start_rounds(s, cx)
}

pub(in crate::node) fn on_mesh_ready(s: &mut Session, cx: &mut Cx, from: &str) -> Step {
    let c = &mut s.common;
    if c.mesh.ready_from(from) {
        cx.progress(Progress::MeshReady {
            session_id: c.id().to_string(),
            ready: c.mesh.ready_count(),
            needed: c.mesh.needed(),
        });
    }
    maybe_start_rounds(s, cx)
}

/// Once every peer is ready: the kind's first round, then the round
/// messages that came early.
fn maybe_start_rounds(s: &mut Session, cx: &mut Cx) -> Step {
    let c = &mut s.common;
    if c.stage != Stage::Mesh || !c.mesh.all_ready() {
        return Ok(());
    }
    c.stage = Stage::Rounds;
    c.deadline = cx.now + cx.timeout_ms;
    match &mut s.kind {
        Kind::Keygen(k) => dkg::start(c, k, cx)?,
        Kind::Sign(g) => signing::start(c, g, cx)?,
        Kind::Refresh(r) => refresh::start(c, r, cx)?,
        Kind::Repair(r) => repair::start(c, r, cx)?,
    }
    for (from, msg) in std::mem::take(&mut s.common.early) {
        session_message(s, cx, &from, msg, Via::Channel)?;
        if s.common.stage == Stage::Complete {
            break;
        }
    }
    Ok(())
}
