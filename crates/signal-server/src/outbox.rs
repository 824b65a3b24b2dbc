//! One connection's bounded queue of frames to send: many senders (the
//! registry, on behalf of other connections), one receiver (the
//! connection's task).
//!
//! It is bounded in bytes, not frames: a frame's text plus
//! [`FRAME_OVERHEAD`] counts against the cap, so many small frames and a
//! few large ones cost the same memory at most.
//!
//! A tokio `mpsc` channel would do, but it allocates its first 32-slot
//! block and its cache-padded state up front, about 1.5 KiB per idle
//! connection. This queue allocates nothing until a frame is queued, and
//! gives the memory back once it drains.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;

/// What a queued frame costs beyond its text: its slot and bookkeeping.
pub const FRAME_OVERHEAD: usize = 64;

struct Shared {
    queue: Mutex<State>,
    ready: Notify,
    cap: usize,
}

struct State {
    frames: VecDeque<Utf8Bytes>,
    /// What the queued frames cost, [`FRAME_OVERHEAD`] each included.
    bytes: usize,
    receiver_gone: bool,
}

fn cost(frame: &Utf8Bytes) -> usize {
    frame.len() + FRAME_OVERHEAD
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError {
    /// The frame does not fit in the cap: the receiver is behind.
    Full,
    /// The receiving connection has ended.
    Closed,
}

#[derive(Clone)]
pub struct Sender(Arc<Shared>);

pub struct Receiver(Arc<Shared>);

/// A queue of frames costing at most `cap` bytes together. A frame that
/// alone exceeds `cap` still goes into an empty queue, so that `cap` below
/// the largest frame delays it rather than losing it.
pub fn channel(cap: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(State {
            frames: VecDeque::new(),
            bytes: 0,
            receiver_gone: false,
        }),
        ready: Notify::new(),
        cap,
    });
    (Sender(shared.clone()), Receiver(shared))
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, State> {
    // Nothing panics while holding the lock; a poisoned one is still sound.
    s.queue.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sender {
    /// Queues `frame` if it fits in the cap.
    pub fn try_send(&self, frame: Utf8Bytes) -> Result<(), TrySendError> {
        self.send_within(frame, self.0.cap)
    }

    /// Queues `frame` if it fits in the cap plus `extra` bytes: for the few
    /// small frames that must not be lost to a queue full of relays.
    pub fn try_send_beyond(&self, frame: Utf8Bytes, extra: usize) -> Result<(), TrySendError> {
        self.send_within(frame, self.0.cap.saturating_add(extra))
    }

    fn send_within(&self, frame: Utf8Bytes, cap: usize) -> Result<(), TrySendError> {
        let mut q = lock(&self.0);
        if q.receiver_gone {
            return Err(TrySendError::Closed);
        }
        let cost = cost(&frame);
        if q.bytes > 0 && q.bytes + cost > cap {
            return Err(TrySendError::Full);
        }
        q.bytes += cost;
        q.frames.push_back(frame);
        drop(q);
        self.0.ready.notify_one();
        Ok(())
    }
}

impl Receiver {
    /// The next frame, waiting for one.
    pub async fn recv(&mut self) -> Utf8Bytes {
        loop {
            {
                let mut q = lock(&self.0);
                if let Some(frame) = q.frames.pop_front() {
                    q.bytes -= cost(&frame);
                    if q.frames.is_empty() {
                        // Idle connections hold no buffer.
                        q.frames = VecDeque::new();
                    }
                    return frame;
                }
            }
            // A notify_one before this point leaves a permit: no lost wakeup.
            self.0.ready.notified().await;
        }
    }
}

impl Receiver {
    /// The next frame if one is queued, without waiting: what the
    /// connection's task batches behind a frame `recv` gave it.
    pub fn try_recv(&mut self) -> Option<Utf8Bytes> {
        let mut q = lock(&self.0);
        let frame = q.frames.pop_front()?;
        q.bytes -= cost(&frame);
        if q.frames.is_empty() {
            q.frames = VecDeque::new();
        }
        Some(frame)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut q = lock(&self.0);
        q.receiver_gone = true;
        q.frames = VecDeque::new();
        q.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_in_bytes_not_frames() {
        let frame = |n: usize| Utf8Bytes::from("x".repeat(n));
        let (tx, mut rx) = channel(1000);
        // Many small frames fit where a few large ones do not.
        for _ in 0..10 {
            tx.try_send(frame(36)).unwrap();
        }
        assert_eq!(tx.try_send(frame(1)), Err(TrySendError::Full));
        // A small frame may go a little beyond, for presence notes.
        tx.try_send_beyond(frame(36), 100).unwrap();
        assert_eq!(tx.try_send_beyond(frame(36), 100), Err(TrySendError::Full));
        // Reading makes room.
        rx.try_recv().unwrap();
        rx.try_recv().unwrap();
        tx.try_send(frame(36)).unwrap();
        while rx.try_recv().is_some() {}
        // A frame larger than the cap goes into an empty queue only.
        tx.try_send(frame(5000)).unwrap();
        assert_eq!(tx.try_send(frame(1)), Err(TrySendError::Full));
        assert_eq!(rx.recv().await.len(), 5000);
        tx.try_send(frame(1)).unwrap();
    }

    #[tokio::test]
    async fn bounded_ordered_and_closed_when_the_receiver_goes() {
        let (tx, mut rx) = channel(2 * (FRAME_OVERHEAD + 1));
        tx.try_send("a".into()).unwrap();
        tx.try_send("b".into()).unwrap();
        assert_eq!(tx.try_send("c".into()), Err(TrySendError::Full));
        assert_eq!(rx.recv().await.as_str(), "a");
        assert_eq!(rx.recv().await.as_str(), "b");
        // A frame sent while the receiver waits wakes it.
        let tx2 = tx.clone();
        let waiter = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        tx2.try_send("d".into()).unwrap();
        assert_eq!(waiter.await.unwrap().as_str(), "d");
        assert_eq!(tx.try_send("e".into()), Err(TrySendError::Closed));
    }
}
