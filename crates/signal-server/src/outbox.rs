//! One connection's bounded queue of frames to send: many senders (the
//! registry, on behalf of other connections), one receiver (the
//! connection's task).
//!
//! A tokio `mpsc` channel would do, but it allocates its first 32-slot
//! block and its cache-padded state up front, about 1.5 KiB per idle
//! connection. This queue allocates nothing until a frame is queued, and
//! gives the memory back once it drains.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;

struct Shared {
    queue: Mutex<State>,
    ready: Notify,
    cap: usize,
}

struct State {
    frames: VecDeque<Utf8Bytes>,
    receiver_gone: bool,
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError {
    /// `cap` frames are waiting: the receiver is too slow.
    Full,
    /// The receiving connection has ended.
    Closed,
}

#[derive(Clone)]
pub struct Sender(Arc<Shared>);

pub struct Receiver(Arc<Shared>);

/// A queue of at most `cap` frames.
pub fn channel(cap: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(State {
            frames: VecDeque::new(),
            receiver_gone: false,
        }),
        ready: Notify::new(),
        cap: cap.max(1),
    });
    (Sender(shared.clone()), Receiver(shared))
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, State> {
    // Nothing panics while holding the lock; a poisoned one is still sound.
    s.queue.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sender {
    pub fn try_send(&self, frame: Utf8Bytes) -> Result<(), TrySendError> {
        let mut q = lock(&self.0);
        if q.receiver_gone {
            return Err(TrySendError::Closed);
        }
        if q.frames.len() >= self.0.cap {
            return Err(TrySendError::Full);
        }
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
    /// The next frame if one is queued (tests).
    pub fn try_recv(&mut self) -> Option<Utf8Bytes> {
        lock(&self.0).frames.pop_front()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut q = lock(&self.0);
        q.receiver_gone = true;
        q.frames = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_ordered_and_closed_when_the_receiver_goes() {
        let (tx, mut rx) = channel(2);
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
