//! Token buckets: per connection (messages), and per source address (new
//! key bindings, with the per-address connection count: [`PerSource`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Refills `rate` tokens a second up to `burst`; each message takes one.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// `rate == 0` means unlimited.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        TokenBucket {
            rate: rate as f64,
            burst: burst.max(1) as f64,
            tokens: burst.max(1) as f64,
            last: now,
        }
    }

    /// `per_min` a minute, as many at once.
    pub fn per_minute(per_min: u32, now: Instant) -> Self {
        TokenBucket {
            rate: per_min as f64 / 60.0,
            burst: per_min.max(1) as f64,
            tokens: per_min.max(1) as f64,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
    }

    /// Takes a token if one is available.
    pub fn try_take(&mut self, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Gives back a token taken for something that did not happen.
    pub fn refund(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.burst);
    }

    /// Full again: nothing to remember about this bucket.
    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }
}

/// What limits are counted by: an IPv4 address, or the /64 network of an
/// IPv6 one (one host is usually given a whole /64). IPv4-mapped IPv6
/// addresses count as their IPv4 address.
pub fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Limits per source address: open connections, and new key bindings a
/// minute. Both maps hold only sources with something to remember (an
/// open connection, a bucket not yet full again), so their size is bounded
/// by the connections and by the recent registrations.
pub struct PerSource {
    max_connections: usize,
    bindings_per_min: u32,
    connections: Mutex<HashMap<IpAddr, u32>>,
    bindings: Mutex<HashMap<IpAddr, TokenBucket>>,
}

/// Past this many remembered buckets, full ones are forgotten.
const PRUNE_AT: usize = 4096;

impl PerSource {
    /// `0` turns either limit off.
    pub fn new(max_connections: usize, bindings_per_min: u32) -> Self {
        PerSource {
            max_connections,
            bindings_per_min,
            connections: Mutex::default(),
            bindings: Mutex::default(),
        }
    }

    /// Counts one more connection from `source`; false if it has as many
    /// as allowed.
    pub fn open(&self, source: IpAddr) -> bool {
        if self.max_connections == 0 {
            return true;
        }
        let mut map = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(source).or_default();
        if *n as usize >= self.max_connections {
            return false;
        }
        *n += 1;
        true
    }

    /// A connection counted by [`PerSource::open`] ended.
    pub fn close(&self, source: IpAddr) {
        if self.max_connections == 0 {
            return;
        }
        let mut map = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&source) {
            *n -= 1;
            if *n == 0 {
                map.remove(&source);
            }
        }
    }

    /// Takes a new-binding token for `source`; false if it has none left.
    pub fn take_binding(&self, source: IpAddr, now: Instant) -> bool {
        if self.bindings_per_min == 0 {
            return true;
        }
        let mut map = self.bindings.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= PRUNE_AT {
            map.retain(|_, b| !b.is_full(now));
        }
        map.entry(source)
            .or_insert_with(|| TokenBucket::per_minute(self.bindings_per_min, now))
            .try_take(now)
    }

    /// Gives back a token [`PerSource::take_binding`] took for a binding
    /// that was not created (a renewal, or a refused `register`).
    pub fn refund_binding(&self, source: IpAddr) {
        if self.bindings_per_min == 0 {
            return;
        }
        let mut map = self.bindings.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = map.get_mut(&source) {
            b.refund();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 3, t0);
        assert!(b.try_take(t0) && b.try_take(t0) && b.try_take(t0));
        assert!(!b.try_take(t0));
        assert!(!b.try_take(t0 + Duration::from_millis(50)));
        assert!(b.try_take(t0 + Duration::from_millis(150)));
        // Refill never exceeds the burst.
        let later = t0 + Duration::from_secs(100);
        assert!((0..3).all(|_| b.try_take(later)));
        assert!(!b.try_take(later));
    }

    #[test]
    fn per_source_counts_connections_and_new_bindings() {
        let t0 = Instant::now();
        let p = PerSource::new(2, 3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(p.open(a) && p.open(a) && !p.open(a));
        assert!(p.open(b));
        p.close(a);
        assert!(p.open(a));
        assert!((0..3).all(|_| p.take_binding(a, t0)));
        assert!(!p.take_binding(a, t0));
        assert!(p.take_binding(b, t0));
        p.refund_binding(a);
        assert!(p.take_binding(a, t0));
        // Three a minute: one more after 20 s.
        assert!(p.take_binding(a, t0 + Duration::from_secs(21)));
        let off = PerSource::new(0, 0);
        assert!((0..1000).all(|_| off.open(a) && off.take_binding(a, t0)));
    }

    #[test]
    fn sources_are_addresses_or_ipv6_networks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(source_of(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(source_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            source_of(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0, 1, t0);
        assert!((0..10_000).all(|_| b.try_take(t0)));
    }
}
