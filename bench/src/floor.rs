//! The floor: about the least CPU any WebSocket relay can spend per message
//! on this machine, to put the server's figure in proportion.
//!
//! One thread on mio (epoll), no async runtime, no framework, no JSON
//! parser. It speaks just enough of mpc-signal's protocol for the cpu
//! scenario: the upgrade, `register` → `registered`, and `relay` → the
//! same `{"type":"relay","from":..,"data":..}` frame mpc-signal sends,
//! written straight into the recipient's socket. So per message it makes
//! one read and one write system call, as mpc-signal does, and nearly
//! nothing else. It is not a server anyone should run: no limits, no
//! validation, and a peer id is whatever follows `"peer_id":"`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    inbuf: Vec<u8>,
    /// Bytes a full socket buffer did not take yet.
    outbuf: Vec<u8>,
    upgraded: bool,
    id: Option<String>,
}

/// Serves on 127.0.0.1 (a free port) until killed; prints `listening on`.
pub fn serve() -> io::Result<()> {
    let mut poll = Poll::new()?;
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut listener = TcpListener::bind(addr)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;

    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut events = Events::with_capacity(1024);
    let mut chunk = vec![0u8; 64 * 1024];
    // (recipient, frame) produced while reading one connection.
    let mut out: Vec<(usize, Vec<u8>)> = Vec::new();
    loop {
        poll.poll(&mut events, None)?;
        for ev in events.iter() {
            if ev.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    stream.set_nodelay(true)?;
                    let slot = free.pop().unwrap_or_else(|| {
                        conns.push(None);
                        conns.len() - 1
                    });
                    poll.registry().register(
                        &mut stream,
                        Token(slot),
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    conns[slot] = Some(Conn {
                        stream,
                        inbuf: Vec::new(),
                        outbuf: Vec::new(),
                        upgraded: false,
                        id: None,
                    });
                }
                continue;
            }
            let slot = ev.token().0;
            let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            let mut closed = false;
            if ev.is_writable() && !conn.outbuf.is_empty() {
                closed |= flush(conn).is_err();
            }
            if ev.is_readable() {
                loop {
                    match conn.stream.read(&mut chunk) {
                        Ok(0) => {
                            closed = true;
                            break;
                        }
                        Ok(n) => {
                            conn.inbuf.extend_from_slice(&chunk[..n]);
                            // A short read drained the socket (edge-triggered
                            // epoll reports the next arrival anew).
                            if n < chunk.len() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            closed = true;
                            break;
                        }
                    }
                }
                closed |= process(conn, slot, &mut ids, &mut out);
            }
            for (to, frame) in out.drain(..) {
                if let Some(c) = conns.get_mut(to).and_then(Option::as_mut) {
                    c.outbuf.extend_from_slice(&frame);
                    let _ = flush(c);
                }
            }
            if closed {
                if let Some(mut c) = conns[slot].take() {
                    let _ = poll.registry().deregister(&mut c.stream);
                    if let Some(id) = c.id {
                        ids.remove(&id);
                    }
                    free.push(slot);
                }
            }
        }
    }
}

fn flush(c: &mut Conn) -> io::Result<()> {
    while !c.outbuf.is_empty() {
        match c.stream.write(&c.outbuf) {
            Ok(n) => {
                c.outbuf.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Handles what `c.inbuf` holds; true if the connection should close.
fn process(
    c: &mut Conn,
    slot: usize,
    ids: &mut HashMap<String, usize>,
    out: &mut Vec<(usize, Vec<u8>)>,
) -> bool {
    if !c.upgraded {
        let Some(end) = find(&c.inbuf, b"\r\n\r\n") else {
            return false;
        };
        let head = String::from_utf8_lossy(&c.inbuf[..end]).to_string();
        c.inbuf.drain(..end + 4);
        let Some(key) = head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_string())
        }) else {
            return true;
        };
        let reply = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        );
        c.outbuf.extend_from_slice(reply.as_bytes());
        c.upgraded = true;
        if flush(c).is_err() {
            return true;
        }
    }
    let mut at = 0;
    while let Some((opcode, payload, used)) = frame(&c.inbuf[at..]) {
        at += used;
        match opcode {
            0x8 => return true,
            0x1 => {}
            _ => continue,
        }
        match &c.id {
            None => {
                let Some(id) = field(&payload, b"\"peer_id\":\"") else {
                    return true;
                };
                let id = String::from_utf8_lossy(id).to_string();
                ids.insert(id.clone(), slot);
                let reply = format!(r#"{{"type":"registered","peer_id":"{id}","ice_servers":[]}}"#);
                out.push((slot, server_frame(reply.as_bytes())));
                c.id = Some(id);
            }
            Some(from) => {
                let (Some(to), Some(data_at)) =
                    (field(&payload, b"\"to\":\""), find(&payload, b"\"data\":"))
                else {
                    continue;
                };
                let Some(&dest) = ids.get(std::str::from_utf8(to).unwrap_or("")) else {
                    continue;
                };
                // `data` runs to the object's closing brace.
                let data = &payload[data_at + 7..payload.len() - 1];
                let mut msg = Vec::with_capacity(data.len() + 48);
                msg.extend_from_slice(br#"{"type":"relay","from":""#);
                msg.extend_from_slice(from.as_bytes());
                msg.extend_from_slice(br#"","data":"#);
                msg.extend_from_slice(data);
                msg.push(b'}');
                out.push((dest, server_frame(&msg)));
            }
        }
    }
    c.inbuf.drain(..at);
    false
}

/// One complete client frame at the start of `buf`: (opcode, unmasked
/// payload, bytes used).
fn frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let mask: [u8; 4] = if masked {
        let m = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        m
    } else {
        [0; 4]
    };
    let body = buf.get(at..at + len)?;
    let payload = body
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i & 3])
        .collect();
    Some((opcode, payload, at + len))
}

/// An unmasked text frame, as a server sends.
fn server_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 10);
    f.push(0x81);
    match payload.len() {
        n if n < 126 => f.push(n as u8),
        n if n <= u16::MAX as usize => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The string value after `key` (which ends with its opening quote).
fn field<'a>(payload: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let start = find(payload, key)? + key.len();
    let len = payload[start..].iter().position(|&b| b == b'"')?;
    Some(&payload[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_fields_are_found() {
        let f = server_frame(b"hello");
        assert_eq!(frame(&f), Some((1, b"hello".to_vec(), 7)));
        let big = vec![b'x'; 300];
        let f = server_frame(&big);
        assert_eq!(frame(&f).unwrap().2, 304);
        assert_eq!(frame(&f[..100]), None);
        let p = br#"{"type":"relay","to":"b1","data":{"a":1}}"#;
        assert_eq!(field(p, b"\"to\":\""), Some(&b"b1"[..]));
    }
}
