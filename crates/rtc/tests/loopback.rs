//! Real WebRTC between `Rtc` drivers in one process, over loopback UDP.
//! The only shortcut: signals go through an in-process relay instead of
//! the signaling server (tested elsewhere).
//!
//! Timings are printed; run with `--nocapture --test-threads=1` for numbers
//! that aren't skewed by the other tests.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mpc_protocol::relay::WebRtcSignal;
use mpc_rtc::{Error, Rtc, RtcConfig, RtcEvent};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Rewrites a signal on its way from `from` to `to`; may split it in several.
type Filter = Arc<dyn Fn(&str, &str, WebRtcSignal) -> Vec<WebRtcSignal> + Send + Sync>;

/// Drivers named by peer id, linked by an in-process relay. Every event
/// other than `Signal` comes out of `events`, tagged with the node's id.
struct Net {
    nodes: Arc<HashMap<String, Rtc>>,
    events: mpsc::UnboundedReceiver<(String, RtcEvent)>,
}

impl Net {
    fn new(ids: &[&str]) -> Net {
        Net::with(ids, RtcConfig::default(), Arc::new(|_, _, s| vec![s]))
    }

    fn with(ids: &[&str], config: RtcConfig, filter: Filter) -> Net {
        init_tracing();
        let mut nodes = HashMap::new();
        let mut receivers = Vec::new();
        for id in ids {
            let (tx, rx) = mpsc::channel(4096);
            nodes.insert(id.to_string(), Rtc::new(config.clone(), tx));
            receivers.push((id.to_string(), rx));
        }
        let nodes = Arc::new(nodes);
        let (app_tx, app_rx) = mpsc::unbounded_channel();
        for (id, mut rx) in receivers {
            let nodes = nodes.clone();
            let app_tx = app_tx.clone();
            let filter = filter.clone();
            tokio::spawn(async move {
                while let Some(event) = rx.recv().await {
                    match event {
                        RtcEvent::Signal { peer, signal } => {
                            for s in filter(&id, &peer, signal) {
                                if let Some(node) = nodes.get(&peer) {
                                    let _ = node.on_signal(&id, s);
                                }
                            }
                        }
                        other => {
                            let _ = app_tx.send((id.clone(), other));
                        }
                    }
                }
            });
        }
        Net {
            nodes,
            events: app_rx,
        }
    }

    fn node(&self, id: &str) -> &Rtc {
        &self.nodes[id]
    }

    /// Both sides of `a`–`b`, the lexicographically smaller one offering.
    fn link(&self, a: &str, b: &str) {
        self.node(a).connect(b, a < b).unwrap();
        self.node(b).connect(a, b < a).unwrap();
    }

    async fn next(&mut self) -> (String, RtcEvent) {
        timeout(Duration::from_secs(30), self.events.recv())
            .await
            .expect("no event within 30 s")
            .expect("relay ended")
    }

    /// Waits for `Open` on both ends of every pair in `pairs`.
    async fn until_open(&mut self, pairs: &[(&str, &str)]) -> HashMap<(String, String), RtcEvent> {
        let mut want: HashSet<(String, String)> = pairs
            .iter()
            .flat_map(|(a, b)| {
                [
                    (a.to_string(), b.to_string()),
                    (b.to_string(), a.to_string()),
                ]
            })
            .collect();
        let mut opens = HashMap::new();
        while !want.is_empty() {
            match self.next().await {
                (node, e @ RtcEvent::Open { .. }) => {
                    let RtcEvent::Open { peer, .. } = &e else {
                        unreachable!()
                    };
                    want.remove(&(node.clone(), peer.clone()));
                    opens.insert((node, peer.clone()), e);
                }
                (node, RtcEvent::Closed { peer, reason }) => {
                    panic!("{node}: connection to {peer} closed: {reason}")
                }
                _ => {}
            }
        }
        opens
    }

    /// The next message `node` receives from `from`.
    async fn message(&mut self, node: &str, from: &str) -> String {
        loop {
            match self.next().await {
                (n, RtcEvent::Message { peer, text }) if n == node && peer == from => return text,
                (n, RtcEvent::Closed { peer, reason }) => {
                    panic!("{n}: connection to {peer} closed: {reason}")
                }
                _ => {}
            }
        }
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Runs a test body under a deadline so a bug can't hang the suite.
async fn bounded<F: std::future::Future<Output = ()>>(secs: u64, f: F) {
    timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("test exceeded {secs} s"));
}

fn pairs<'a>(ids: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    let mut v = Vec::new();
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            v.push((*a, *b));
        }
    }
    v
}

#[tokio::test]
async fn pair_opens_and_exchanges_messages() {
    bounded(60, async {
        let mut net = Net::new(&["alice", "bob"]);
        net.node("alice").connect("bob", true).unwrap();
        // Sent before the channel exists: queued, delivered first.
        net.node("alice").send("bob", "early bird".into()).unwrap();
        net.node("bob").connect("alice", false).unwrap();
        let opens = net.until_open(&[("alice", "bob")]).await;

        // Fingerprints: local is the node's own, remote is the peer's.
        let (fa, fb) = (
            net.node("alice").local_fingerprint().to_string(),
            net.node("bob").local_fingerprint().to_string(),
        );
        assert!(fa.starts_with("sha-256 "), "{fa}");
        assert_ne!(fa, fb);
        assert_eq!(
            opens[&("alice".into(), "bob".into())],
            RtcEvent::Open {
                peer: "bob".into(),
                local_fingerprint: fa.clone(),
                remote_fingerprint: fb.clone()
            }
        );
        assert_eq!(
            opens[&("bob".into(), "alice".into())],
            RtcEvent::Open {
                peer: "alice".into(),
                local_fingerprint: fb,
                remote_fingerprint: fa
            }
        );

        assert_eq!(net.message("bob", "alice").await, "early bird");
        net.node("alice").send("bob", "hello".into()).unwrap();
        assert_eq!(net.message("bob", "alice").await, "hello");
        net.node("bob").send("alice", "world ✓".into()).unwrap();
        assert_eq!(net.message("alice", "bob").await, "world ✓");

        // 200 KB each way (bigger than SCTP's 128 KiB default send buffer).
        let big: String = (0..200_000)
            .map(|i| (b'a' + (i % 26) as u8) as char)
            .collect();
        let start = Instant::now();
        net.node("alice").send("bob", big.clone()).unwrap();
        assert_eq!(net.message("bob", "alice").await, big);
        net.node("bob").send("alice", big.clone()).unwrap();
        assert_eq!(net.message("alice", "bob").await, big);
        println!("200 KB there and back: {:?}", start.elapsed());

        // 1000 small messages, in order; several big ones back to back
        // (exercises backpressure: they don't all fit SCTP's buffer).
        let start = Instant::now();
        for i in 0..1000 {
            net.node("alice").send("bob", format!("m{i}")).unwrap();
        }
        for i in 0..1000 {
            assert_eq!(net.message("bob", "alice").await, format!("m{i}"));
        }
        println!("1000 small messages: {:?}", start.elapsed());
        let start = Instant::now();
        for i in 0..8 {
            net.node("bob").send("alice", format!("{i}{big}")).unwrap();
        }
        for i in 0..8 {
            let got = net.message("alice", "bob").await;
            assert_eq!(got.len(), big.len() + 1);
            assert!(got.starts_with(&i.to_string()));
        }
        println!("8 x 200 KB: {:?}", start.elapsed());

        // Larger than the peer accepts (256 KiB): refused up front.
        let huge = "x".repeat(256 * 1024 + 1);
        assert!(matches!(
            net.node("alice").send("bob", huge),
            Err(Error::MessageTooLarge { .. })
        ));
        assert!(matches!(
            net.node("alice").send("carol", "hi".into()),
            Err(Error::UnknownPeer(_))
        ));
        assert!(matches!(
            net.node("alice").connect("bob", true),
            Err(Error::AlreadyConnected(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn pair_open_time_median_of_10() {
    bounded(120, async {
        let mut times = Vec::new();
        for round in 0..10 {
            let mut net = Net::new(&["a", "b"]);
            let start = Instant::now();
            net.link("a", "b");
            net.until_open(&[("a", "b")]).await;
            times.push(start.elapsed());
            drop(net);
            let _ = round;
        }
        times.sort();
        println!(
            "pair open on loopback: median {:?}, min {:?}, max {:?}",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1]
        );
        assert!(times[times.len() / 2] < Duration::from_secs(5));
    })
    .await;
}

async fn full_mesh(n: usize) -> Duration {
    let names: Vec<String> = (0..n).map(|i| format!("node{i:02}")).collect();
    let ids: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut net = Net::new(&ids);
    let all = pairs(&ids);
    let start = Instant::now();
    for (a, b) in &all {
        net.link(a, b);
    }
    net.until_open(&all).await;
    let took = start.elapsed();
    // Every channel carries a message both ways.
    for (a, b) in &all {
        net.node(a).send(b, format!("{a}->{b}")).unwrap();
        net.node(b).send(a, format!("{b}->{a}")).unwrap();
    }
    let mut got = HashSet::new();
    while got.len() < all.len() * 2 {
        if let (node, RtcEvent::Message { peer, text }) = net.next().await {
            assert_eq!(text, format!("{peer}->{node}"));
            got.insert(text);
        }
    }
    took
}

#[tokio::test]
async fn full_mesh_of_5() {
    bounded(60, async {
        let took = full_mesh(5).await;
        println!("5-peer full mesh (10 channels) in one process: {took:?}");
    })
    .await;
}

#[tokio::test]
async fn full_mesh_of_10() {
    bounded(90, async {
        let took = full_mesh(10).await;
        println!("10-peer full mesh (45 channels) in one process: {took:?}");
    })
    .await;
}

#[tokio::test]
async fn close_is_seen_by_the_peer_and_reconnect_works() {
    bounded(60, async {
        let mut net = Net::new(&["a", "b"]);
        net.link("a", "b");
        net.until_open(&[("a", "b")]).await;

        let start = Instant::now();
        net.node("a").close("b");
        assert!(net.node("a").peers().is_empty());
        // The next event anywhere: b sees the close (a reports nothing).
        match net.next().await {
            (node, RtcEvent::Closed { peer, reason }) => {
                assert_eq!((node.as_str(), peer.as_str()), ("b", "a"), "{reason}");
                println!(
                    "close seen by the peer after {:?}: {reason}",
                    start.elapsed()
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(net.node("b").peers().is_empty());

        // Both may connect again.
        net.link("a", "b");
        net.until_open(&[("a", "b")]).await;
        net.node("b").send("a", "again".into()).unwrap();
        assert_eq!(net.message("a", "b").await, "again");
    })
    .await;
}

#[tokio::test]
async fn dropping_the_driver_closes_its_connections() {
    bounded(60, async {
        init_tracing();
        let (tx_a, rx_a) = mpsc::channel(64);
        let (tx_b, mut rx_b) = mpsc::channel(64);
        let a = Rtc::new(RtcConfig::default(), tx_a);
        let b = Rtc::new(RtcConfig::default(), tx_b);
        // Relay by hand: a offers.
        a.connect("b", true).unwrap();
        b.connect("a", false).unwrap();
        let mut rx_a = rx_a;
        let mut open = 0;
        while open < 2 {
            tokio::select! {
                Some(e) = rx_a.recv() => match e {
                    RtcEvent::Signal { signal, .. } => b.on_signal("a", signal).unwrap(),
                    RtcEvent::Open { .. } => open += 1,
                    other => panic!("{other:?}"),
                },
                Some(e) = rx_b.recv() => match e {
                    RtcEvent::Signal { signal, .. } => a.on_signal("b", signal).unwrap(),
                    RtcEvent::Open { .. } => open += 1,
                    other => panic!("{other:?}"),
                },
            }
        }
        drop(a);
        loop {
            match timeout(Duration::from_secs(5), rx_b.recv()).await {
                Ok(Some(RtcEvent::Closed { peer, .. })) => {
                    assert_eq!(peer, "a");
                    break;
                }
                Ok(Some(RtcEvent::Signal { .. })) => {}
                other => panic!("expected Closed, got {other:?}"),
            }
        }
    })
    .await;
}

/// Collects `Closed` events of one driver that is fed signals by hand.
async fn closed_reason(rx: &mut mpsc::Receiver<RtcEvent>) -> String {
    loop {
        match timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(RtcEvent::Closed { reason, .. })) => return reason,
            Ok(Some(_)) => {}
            other => panic!("expected Closed, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn invalid_remote_sdp_closes_with_a_reason() {
    bounded(30, async {
        init_tracing();
        let (tx, mut rx) = mpsc::channel(64);
        let rtc = Rtc::new(RtcConfig::default(), tx);

        // Garbage offer.
        rtc.connect("x", false).unwrap();
        rtc.on_signal(
            "x",
            WebRtcSignal::Offer {
                sdp: "this is not SDP".into(),
            },
        )
        .unwrap();
        let reason = closed_reason(&mut rx).await;
        assert!(reason.contains("invalid SDP offer"), "{reason}");

        // Garbage answer to our offer.
        rtc.connect("y", true).unwrap();
        let offer = match timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(RtcEvent::Signal {
                signal: WebRtcSignal::Offer { sdp },
                ..
            })) => sdp,
            other => panic!("expected an offer, got {other:?}"),
        };
        rtc.on_signal(
            "y",
            WebRtcSignal::Answer {
                sdp: "v=0\r\nnonsense\r\n".into(),
            },
        )
        .unwrap();
        let reason = closed_reason(&mut rx).await;
        assert!(reason.contains("invalid SDP answer"), "{reason}");

        // Well-formed SDP without a fingerprint: no DTLS identity.
        let stripped: String = offer
            .split("\r\n")
            .filter(|l| !l.starts_with("a=fingerprint"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        rtc.connect("z", false).unwrap();
        rtc.on_signal("z", WebRtcSignal::Offer { sdp: stripped })
            .unwrap();
        let reason = closed_reason(&mut rx).await;
        assert!(reason.contains("fingerprint"), "{reason}");

        // An offer to the offerer, an answer to the answerer.
        rtc.connect("w", false).unwrap();
        rtc.on_signal("w", WebRtcSignal::Answer { sdp: offer.clone() })
            .unwrap();
        let reason = closed_reason(&mut rx).await;
        assert!(reason.contains("answer to no offer"), "{reason}");
        assert!(rtc.peers().is_empty(), "{:?}", rtc.peers());
    })
    .await;
}

#[tokio::test]
async fn connect_times_out_without_an_answer() {
    bounded(30, async {
        init_tracing();
        let (tx, mut rx) = mpsc::channel(64);
        let config = RtcConfig {
            connect_timeout: Duration::from_secs(1),
            ..RtcConfig::default()
        };
        let rtc = Rtc::new(config, tx);
        let start = Instant::now();
        rtc.connect("nobody", true).unwrap();
        let reason = closed_reason(&mut rx).await;
        assert!(reason.contains("timed out"), "{reason}");
        assert!(start.elapsed() < Duration::from_secs(3));
        assert!(rtc.peers().is_empty());
    })
    .await;
}

fn is_candidate_line(l: &str) -> bool {
    l.starts_with("a=candidate:")
}

fn strip_candidates(sdp: &str) -> (String, Vec<String>) {
    let mut kept = String::new();
    let mut candidates = Vec::new();
    for l in sdp.split("\r\n").filter(|l| !l.is_empty()) {
        if is_candidate_line(l) {
            candidates.push(l.trim_start_matches("a=").to_string());
        } else {
            kept.push_str(l);
            kept.push_str("\r\n");
        }
    }
    (kept, candidates)
}

fn trickle(c: String) -> WebRtcSignal {
    WebRtcSignal::IceCandidate {
        candidate: c,
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
    }
}

/// Moves candidates out of the SDP into ice-candidate signals that follow
/// it, ending with a browser's end-of-candidates (an empty candidate).
fn trickle_filter() -> Filter {
    Arc::new(|_, _, signal| {
        let (first, cands) = match signal {
            WebRtcSignal::Offer { sdp } => {
                let (sdp, cands) = strip_candidates(&sdp);
                (WebRtcSignal::Offer { sdp }, cands)
            }
            WebRtcSignal::Answer { sdp } => {
                let (sdp, cands) = strip_candidates(&sdp);
                (WebRtcSignal::Answer { sdp }, cands)
            }
            s => return vec![s],
        };
        assert!(!cands.is_empty());
        let mut out = vec![first];
        out.extend(cands.into_iter().map(trickle));
        out.push(trickle(String::new()));
        out
    })
}

#[tokio::test]
async fn candidates_trickled_as_signals_like_a_browser() {
    bounded(30, async {
        // Candidates leave the SDP and follow it as ice-candidate signals,
        // with a browser's end-of-candidates (empty candidate) at the end.
        let filter = trickle_filter();
        let mut net = Net::with(&["a", "b"], RtcConfig::default(), filter);
        net.link("a", "b");
        net.until_open(&[("a", "b")]).await;
        net.node("a")
            .send("b", "via trickled candidates".into())
            .unwrap();
        assert_eq!(net.message("b", "a").await, "via trickled candidates");
    })
    .await;
}

#[tokio::test]
async fn mdns_candidates_are_ignored_and_peer_reflexive_works() {
    bounded(30, async {
        // Like a browser page hiding its address: the answerer's candidates
        // are replaced by an mDNS name, in the SDP and as a signal. The
        // offerer learns the answerer's address from its ICE checks.
        let mdns = "candidate:1 1 udp 2113937151 4b1e0c8a-5d43-4c55-9d0a-3f7e8a3f2b11.local 54321 typ host generation 0 network-cost 999";
        let filter: Filter = Arc::new(move |_, _, signal| match signal {
            WebRtcSignal::Answer { sdp } => {
                let (sdp, _) = strip_candidates(&sdp);
                let sdp: String = sdp
                    .split("\r\n")
                    .filter(|l| !l.is_empty())
                    .flat_map(|l| {
                        let extra = l.starts_with("a=mid:").then(|| format!("a={mdns}\r\n"));
                        std::iter::once(format!("{l}\r\n")).chain(extra)
                    })
                    .collect();
                assert!(sdp.contains(".local"));
                vec![
                    WebRtcSignal::Answer { sdp },
                    trickle(mdns.to_string()),
                ]
            }
            s => vec![s],
        });
        let mut net = Net::with(&["a", "b"], RtcConfig::default(), filter);
        net.link("a", "b");
        net.until_open(&[("a", "b")]).await;
        net.node("a").send("b", "ping".into()).unwrap();
        assert_eq!(net.message("b", "a").await, "ping");
        net.node("b").send("a", "pong".into()).unwrap();
        assert_eq!(net.message("a", "b").await, "pong");
    })
    .await;
}

#[tokio::test]
async fn signals_before_connect_are_kept() {
    bounded(30, async {
        // b's core learns about a only after a's offer (and, trickled,
        // a's candidates) have arrived.
        let mut net = Net::with(&["a", "b"], RtcConfig::default(), trickle_filter());
        net.node("a").connect("b", true).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(net.node("b").peers().is_empty());
        // Leftovers of an old connection aren't kept: only offers start one.
        let stale = WebRtcSignal::Answer { sdp: "v=0".into() };
        assert!(matches!(
            net.node("b").on_signal("zed", stale),
            Err(Error::UnknownPeer(_))
        ));
        assert!(matches!(
            net.node("b").on_signal(
                "zed",
                trickle("candidate:1 1 udp 1 127.0.0.1 9 typ host".into())
            ),
            Err(Error::UnknownPeer(_))
        ));
        net.node("b").connect("a", false).unwrap();
        net.until_open(&[("a", "b")]).await;
    })
    .await;
}

/// `shutdown` delivers what was queued before it closes: a process that
/// sends its last message and exits must not lose it.
#[tokio::test]
async fn shutdown_delivers_queued_messages_first() {
    bounded(60, async {
        init_tracing();
        let (tx_a, mut rx_a) = mpsc::channel(64);
        let (tx_b, mut rx_b) = mpsc::channel(4096);
        let a = Rtc::new(RtcConfig::default(), tx_a);
        let b = Rtc::new(RtcConfig::default(), tx_b);
        a.connect("b", true).unwrap();
        b.connect("a", false).unwrap();
        let mut open = 0;
        while open < 2 {
            tokio::select! {
                Some(e) = rx_a.recv() => match e {
                    RtcEvent::Signal { signal, .. } => b.on_signal("a", signal).unwrap(),
                    RtcEvent::Open { .. } => open += 1,
                    other => panic!("{other:?}"),
                },
                Some(e) = rx_b.recv() => match e {
                    RtcEvent::Signal { signal, .. } => a.on_signal("b", signal).unwrap(),
                    RtcEvent::Open { .. } => open += 1,
                    other => panic!("{other:?}"),
                },
            }
        }
        // 2 MB: more than SCTP buffers, so most is still queued here.
        let n = 20;
        for i in 0..n {
            a.send("b", format!("{i:04}{}", "x".repeat(100_000)))
                .unwrap();
        }
        a.shutdown().await;
        let mut got = 0;
        loop {
            match timeout(Duration::from_secs(10), rx_b.recv()).await {
                Ok(Some(RtcEvent::Message { text, .. })) => {
                    assert_eq!(&text[..4], format!("{got:04}"));
                    got += 1;
                }
                Ok(Some(RtcEvent::Closed { .. })) => break,
                Ok(Some(_)) => {}
                other => panic!("expected messages then Closed, got {other:?}"),
            }
        }
        assert_eq!(got, n, "messages lost at shutdown");
    })
    .await;
}
