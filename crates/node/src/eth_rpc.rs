//! A minimal Ethereum JSON-RPC client for `sign-eth-tx --rpc`: what it
//! takes to fill in a transaction (chain id, nonce, fees, gas) and to
//! broadcast it. HTTP/1.1 over a plain TCP connection, one request per
//! connection: `http://` URLs only (a local node, or a tunnel to one);
//! TLS is not offered yet.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use mpc_chain::ethereum::TxRequest;
use serde_json::{json, Value};

/// Why a JSON-RPC call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("--rpc {0:?}: only http://host[:port][/path] URLs are supported")]
    Url(String),
    #[error("cannot reach {url}: {error}")]
    Io { url: String, error: std::io::Error },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} answered something that is not JSON-RPC")]
    Garbled { url: String },
    #[error("{method}: {message}")]
    Node { method: String, message: String },
}

/// A JSON-RPC endpoint.
pub struct Rpc {
    url: String,
    host: String,
    port: u16,
    path: String,
}

const TIMEOUT: Duration = Duration::from_secs(15);
/// Answers larger than this are refused (a block with full transactions
/// is never asked for).
const MAX_ANSWER: u64 = 4 * 1024 * 1024;

impl Rpc {
    pub fn new(url: &str) -> Result<Self, RpcError> {
        let bad = || RpcError::Url(url.to_string());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
            None => (authority, 80),
        };
        if host.is_empty() || host.contains(['@', ' ']) {
            return Err(bad());
        }
        Ok(Rpc {
            url: url.to_string(),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            path: path.to_string(),
        })
    }

    fn io(&self, error: std::io::Error) -> RpcError {
        RpcError::Io {
            url: self.url.clone(),
            error,
        }
    }

    /// One call: its `result`, or the node's error.
    pub fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| self.io(e))?
            .next()
            .ok_or_else(|| self.io(std::io::ErrorKind::NotFound.into()))?;
        let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| self.io(e))?;
        s.set_read_timeout(Some(TIMEOUT)).map_err(|e| self.io(e))?;
        s.set_write_timeout(Some(TIMEOUT)).map_err(|e| self.io(e))?;
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.path,
            self.host,
            self.port,
            body.len()
        );
        s.write_all(request.as_bytes()).map_err(|e| self.io(e))?;
        let mut answer = Vec::new();
        s.take(MAX_ANSWER)
            .read_to_end(&mut answer)
            .map_err(|e| self.io(e))?;
        let value = self.parse(&answer)?;
        if let Some(e) = value.get("error") {
            return Err(RpcError::Node {
                method: method.to_string(),
                message: e
                    .get("message")
                    .and_then(Value::as_str)
                    .map_or_else(|| e.to_string(), str::to_string),
            });
        }
        value.get("result").cloned().ok_or(RpcError::Garbled {
            url: self.url.clone(),
        })
    }

    /// The JSON body of an HTTP/1.1 answer (plain or chunked).
    fn parse(&self, answer: &[u8]) -> Result<Value, RpcError> {
        let garbled = || RpcError::Garbled {
            url: self.url.clone(),
        };
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(garbled)?;
        let (head, body) = answer.split_at(split);
        let body = body.get(4..).unwrap_or_default();
        let head = std::str::from_utf8(head).map_err(|_| garbled())?;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(garbled)?;
        let chunked = head.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("transfer-encoding:") && l.contains("chunked")
        });
        let body = if chunked {
            dechunk(body).ok_or_else(garbled)?
        } else {
            body.to_vec()
        };
        // A JSON-RPC error may come with a 4xx/5xx status and a JSON body.
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) if v.get("result").is_some() || v.get("error").is_some() => Ok(v),
            _ if status != 200 => Err(RpcError::Status {
                url: self.url.clone(),
                status,
            }),
            _ => Err(garbled()),
        }
    }
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(body.get(..line_end)?).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        body = body.get(line_end + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

fn quantity(method: &str, v: &Value) -> Result<u128, RpcError> {
    v.as_str()
        .and_then(|s| s.strip_prefix("0x"))
        .and_then(|h| u128::from_str_radix(h, 16).ok())
        .ok_or_else(|| RpcError::Node {
            method: method.to_string(),
            message: format!("not a quantity: {v}"),
        })
}

/// A quantity that must fit 64 bits (chain id, nonce, gas).
fn quantity64(method: &str, v: &Value) -> Result<u64, RpcError> {
    u64::try_from(quantity(method, v)?).map_err(|_| RpcError::Node {
        method: method.to_string(),
        message: format!("{v} does not fit in 64 bits"),
    })
}

fn hex_q(n: u128) -> String {
    format!("{n:#x}")
}

impl Rpc {
    /// Fills in what `req` leaves out, for a transaction from `from`: the
    /// chain id (checked if given), the pending nonce, the gas estimate,
    /// and fees of twice the latest base fee plus the node's suggested tip.
    pub fn fill(&self, req: &mut TxRequest, from: &[u8; 20]) -> Result<(), RpcError> {
        let chain = quantity64("eth_chainId", &self.call("eth_chainId", json!([]))?)?;
        match req.chain_id {
            Some(c) if c != chain => {
                return Err(RpcError::Node {
                    method: "eth_chainId".into(),
                    message: format!("the node is on chain {chain}, the transaction names {c}"),
                })
            }
            _ => req.chain_id = Some(chain),
        }
        let from_hex = format!("0x{}", hex::encode(from));
        if req.nonce.is_none() {
            let n = self.call("eth_getTransactionCount", json!([from_hex, "pending"]))?;
            req.nonce = Some(quantity64("eth_getTransactionCount", &n)?);
        }
        if req.max_priority_fee_per_gas.is_none() {
            let tip = self.call("eth_maxPriorityFeePerGas", json!([]))?;
            req.max_priority_fee_per_gas = Some(quantity("eth_maxPriorityFeePerGas", &tip)?);
        }
        if req.max_fee_per_gas.is_none() {
            let block = self.call("eth_getBlockByNumber", json!(["latest", false]))?;
            let base = quantity(
                "eth_getBlockByNumber",
                block.get("baseFeePerGas").unwrap_or(&Value::Null),
            )?;
            let tip = req.max_priority_fee_per_gas.unwrap_or(0);
            req.max_fee_per_gas = Some(base.saturating_mul(2).saturating_add(tip));
        }
        if req.gas.is_none() {
            let mut call = json!({
                "from": from_hex,
                "value": hex_q(req.value),
                "data": format!("0x{}", hex::encode(&req.data)),
            });
            if let Some(to) = req.to {
                call["to"] = json!(format!("0x{}", hex::encode(to)));
            }
            let gas = self.call("eth_estimateGas", json!([call]))?;
            req.gas = Some(quantity64("eth_estimateGas", &gas)?);
        }
        Ok(())
    }

    /// Broadcasts a signed transaction; the node's transaction hash.
    pub fn send_raw(&self, raw_tx: &str) -> Result<String, RpcError> {
        let hash = self.call("eth_sendRawTransaction", json!([raw_tx]))?;
        hash.as_str().map(str::to_string).ok_or(RpcError::Garbled {
            url: self.url.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let r = Rpc::new("http://127.0.0.1:8545").unwrap();
        assert_eq!(
            (r.host.as_str(), r.port, r.path.as_str()),
            ("127.0.0.1", 8545, "/")
        );
        let r = Rpc::new("http://node.local/rpc/v1").unwrap();
        assert_eq!((r.port, r.path.as_str()), (80, "/rpc/v1"));
        for bad in ["https://x", "ftp://x", "http://:1", "http://h:port"] {
            assert!(matches!(Rpc::new(bad), Err(RpcError::Url(_))), "{bad}");
        }
    }

    #[test]
    fn quantities_beyond_64_bits_are_refused() {
        assert_eq!(quantity64("m", &json!("0x10")).unwrap(), 16);
        assert!(matches!(
            quantity64("m", &json!("0x10000000000000000")),
            Err(RpcError::Node { .. })
        ));
        assert!(quantity("m", &json!(16)).is_err());
    }

    #[test]
    fn chunked_bodies() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
        assert!(dechunk(b"5\r\nab").is_none());
    }
}
