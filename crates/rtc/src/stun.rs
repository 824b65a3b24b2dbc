//! Server-reflexive candidate discovery: a STUN binding request (RFC 8489)
//! to each configured `stun:` server, sent from the connection's socket.
//! str0m gathers no candidates itself.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use mpc_protocol::IceServer;

const MAGIC_COOKIE: u32 = 0x2112_A442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// Delays between the sends of a request; then it gives up.
const SCHEDULE: [Duration; 4] = [
    Duration::ZERO,
    Duration::from_millis(500),
    Duration::from_millis(1000),
    Duration::from_millis(2000),
];

/// `host:port` of every `stun:` URL (default port 3478). `stuns:` (STUN
/// over TLS) and TURN are not supported.
pub(crate) fn stun_hosts(servers: &[IceServer]) -> Vec<String> {
    let mut hosts = Vec::new();
    for url in servers.iter().flat_map(|s| &s.urls) {
        let Some(rest) = url.strip_prefix("stun:") else {
            continue;
        };
        let rest = rest.split('?').next().unwrap_or_default();
        if rest.is_empty() {
            continue;
        }
        // `host`, `host:port`, `[v6]`, `[v6]:port`.
        let has_port = match rest.rfind(']') {
            Some(i) => rest[i..].contains(':'),
            None => rest.contains(':'),
        };
        hosts.push(if has_port {
            rest.to_string()
        } else {
            format!("{rest}:3478")
        });
    }
    hosts
}

/// Binding requests in flight, one per STUN server address.
pub(crate) struct Gatherer {
    requests: Vec<(SocketAddr, [u8; 12])>,
    sends: usize,
    next: Option<Instant>,
}

impl Gatherer {
    pub(crate) fn new(servers: Vec<SocketAddr>, local: SocketAddr) -> Self {
        let requests: Vec<_> = servers
            .into_iter()
            .filter(|s| s.is_ipv4() == local.is_ipv4())
            .map(|s| (s, transaction_id()))
            .collect();
        let next = (!requests.is_empty()).then(Instant::now);
        Gatherer {
            requests,
            sends: 0,
            next,
        }
    }

    pub(crate) fn idle() -> Self {
        Gatherer {
            requests: Vec::new(),
            sends: 0,
            next: None,
        }
    }

    /// When [`Gatherer::due`] wants to be called, if at all.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.next
    }

    /// The requests to (re)send now.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
        if self.next.is_none_or(|t| t > now) {
            return Vec::new();
        }
        self.sends += 1;
        self.next = SCHEDULE.get(self.sends).map(|d| now + *d);
        self.requests
            .iter()
            .map(|(to, id)| (*to, binding_request(id)))
            .collect()
    }

    /// If `packet` from `source` answers one of our requests, the mapped
    /// address it reports. Stops retransmitting once any server answered.
    pub(crate) fn handle(&mut self, packet: &[u8], source: SocketAddr) -> Option<SocketAddr> {
        if self.requests.is_empty() || packet.len() < 20 {
            return None;
        }
        let (_, id) = self
            .requests
            .iter()
            .find(|(s, id)| *s == source && packet[8..20] == id[..])?;
        let mapped = parse_binding_success(packet, id)?;
        self.requests.clear();
        self.next = None;
        Some(mapped)
    }
}

fn transaction_id() -> [u8; 12] {
    // Unpredictability isn't needed: responses must also come from the server.
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    let a = h.finish();
    h.write_u64(a);
    let b = h.finish();
    let mut id = [0; 12];
    id[..8].copy_from_slice(&a.to_be_bytes());
    id[8..].copy_from_slice(&b.to_be_bytes()[..4]);
    id
}

fn binding_request(id: &[u8; 12]) -> Vec<u8> {
    let mut m = Vec::with_capacity(20);
    m.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
    m.extend_from_slice(&0u16.to_be_bytes());
    m.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    m.extend_from_slice(id);
    m
}

/// The (XOR-)MAPPED-ADDRESS of a binding success response with id `id`.
fn parse_binding_success(p: &[u8], id: &[u8; 12]) -> Option<SocketAddr> {
    let kind = u16::from_be_bytes([p[0], p[1]]);
    let len = u16::from_be_bytes([p[2], p[3]]) as usize;
    if kind != BINDING_SUCCESS
        || p[4..8] != MAGIC_COOKIE.to_be_bytes()
        || p[8..20] != id[..]
        || p.len() < 20 + len
    {
        return None;
    }
    let mut plain = None;
    let mut at = 20;
    while at + 4 <= 20 + len {
        let attr = u16::from_be_bytes([p[at], p[at + 1]]);
        let alen = u16::from_be_bytes([p[at + 2], p[at + 3]]) as usize;
        let value = p.get(at + 4..at + 4 + alen)?;
        match attr {
            ATTR_XOR_MAPPED_ADDRESS => return parse_address(value, Some(id)),
            ATTR_MAPPED_ADDRESS => plain = parse_address(value, None),
            _ => {}
        }
        at += 4 + alen.div_ceil(4) * 4;
    }
    plain
}

fn parse_address(v: &[u8], xor_id: Option<&[u8; 12]>) -> Option<SocketAddr> {
    let family = *v.get(1)?;
    let mut port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]);
    let mut mask = [0u8; 16];
    if let Some(id) = xor_id {
        port ^= (MAGIC_COOKIE >> 16) as u16;
        mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        mask[4..].copy_from_slice(id);
    }
    let ip = match family {
        1 => {
            let b: [u8; 4] = v.get(4..8)?.try_into().ok()?;
            let x: Vec<u8> = b.iter().zip(mask).map(|(a, m)| a ^ m).collect();
            IpAddr::V4(Ipv4Addr::new(x[0], x[1], x[2], x[3]))
        }
        2 => {
            let b: [u8; 16] = v.get(4..20)?.try_into().ok()?;
            let mut x = [0u8; 16];
            for i in 0..16 {
                x[i] = b[i] ^ mask[i];
            }
            IpAddr::V6(Ipv6Addr::from(x))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_urls() {
        let servers = vec![
            IceServer::parse_url("stun:stun.l.google.com:19302").unwrap(),
            IceServer::parse_url("stun:example.org").unwrap(),
            IceServer::parse_url("turn:u:p@turn.example.org").unwrap(),
        ];
        assert_eq!(
            stun_hosts(&servers),
            vec!["stun.l.google.com:19302", "example.org:3478"]
        );
    }

    #[test]
    fn parses_xor_mapped_address() {
        let id = [7u8; 12];
        let mapped: SocketAddr = "203.0.113.5:40000".parse().unwrap();
        let mut p = Vec::new();
        p.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
        p.extend_from_slice(&12u16.to_be_bytes());
        p.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        p.extend_from_slice(&id);
        p.extend_from_slice(&ATTR_XOR_MAPPED_ADDRESS.to_be_bytes());
        p.extend_from_slice(&8u16.to_be_bytes());
        p.extend_from_slice(&[0, 1]);
        p.extend_from_slice(&(40000u16 ^ 0x2112).to_be_bytes());
        let ip = u32::from_be_bytes([203, 0, 113, 5]) ^ MAGIC_COOKIE;
        p.extend_from_slice(&ip.to_be_bytes());
        assert_eq!(parse_binding_success(&p, &id), Some(mapped));
        assert_eq!(parse_binding_success(&p, &[8u8; 12]), None);

        let server: SocketAddr = "192.0.2.1:3478".parse().unwrap();
        let mut g = Gatherer::new(vec![server], "10.0.0.2:5000".parse().unwrap());
        g.requests[0].1 = id;
        assert_eq!(g.due(Instant::now()).len(), 1);
        assert_eq!(g.handle(&p, "192.0.2.9:3478".parse().unwrap()), None);
        assert_eq!(g.handle(&p, server), Some(mapped));
        assert_eq!(g.deadline(), None);
    }
}
