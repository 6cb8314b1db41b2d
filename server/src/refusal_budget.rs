//! A per-client budget of refused governance messages. Every message the node refuses costs its
//! sender (by IP address) one token; tokens come back at a steady rate up to a burst. A client with
//! none left is answered 429 `too-many-refusals` before its message is decoded, so that a client
//! flooding `/v1/governance` with junk spends its own budget, not the node's time: members on
//! other addresses are never slowed, and a member's accepted messages cost nothing.
//!
//! The 429 is held back for [`HOLD`] (a tarpit): a client that sends its next message only once
//! it has the answer to the last, as most clients do, is slowed to one message per connection per
//! [`HOLD`], so that even its refusals stop costing the node's CPU. A held answer waits on a timer,
//! not a thread, and outside the `--max-concurrency` limit (the handler marks its answer
//! [`Held`]; the admission layer holds it after giving the request's slot back), so held clients
//! never crowd others out; at most [`MAX_HELD`] are held at once, and beyond that a client in
//! debt is answered at once.
//!
//! The budget limits load, not decisions: it reads the wall clock, which never reaches governance
//! state (heights and the ledger timestamp do).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Refusals a client may have in a burst.
pub const BURST: f64 = 20.0;
/// Refusals per second a client regains.
pub const REFILL_PER_SECOND: f64 = 5.0;
/// How long the answer to a client with no refusal left is held back.
pub const HOLD: Duration = Duration::from_secs(1);
/// Answers held back at once, over all clients.
pub const MAX_HELD: usize = 4096;
/// Clients tracked at once; beyond it, the clients whose budget is full again are forgotten first.
const MAX_CLIENTS: usize = 65_536;

/// Marks an answer to a client with no refusal left: the admission layer holds it back for
/// [`HOLD`] once the request's concurrency slot is free.
#[derive(Clone, Copy, Debug)]
pub struct Held;

/// A refusal taken from a client's budget for one message: given back when dropped, unless
/// [`Charge::keep`] says the message was refused.
pub struct Charge<'a> {
    budget: &'a RefusalBudget,
    client: Option<IpAddr>,
    kept: std::sync::atomic::AtomicBool,
}

impl Charge<'_> {
    /// The message was refused: the refusal stays spent.
    pub fn keep(&self) {
        self.kept.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        if let (false, Some(ip)) = (*self.kept.get_mut(), self.client) {
            self.budget.refund_at(ip, Instant::now());
        }
    }
}

/// Tokens per client address.
pub struct RefusalBudget {
    clients: Mutex<HashMap<IpAddr, Bucket>>,
    burst: f64,
    per_second: f64,
    held: tokio::sync::Semaphore,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Default for RefusalBudget {
    fn default() -> Self {
        RefusalBudget::new(BURST, REFILL_PER_SECOND)
    }
}

impl RefusalBudget {
    pub fn new(burst: f64, per_second: f64) -> Self {
        RefusalBudget {
            clients: Mutex::new(HashMap::new()),
            burst,
            per_second,
            held: tokio::sync::Semaphore::new(MAX_HELD),
        }
    }

    /// Holds a client in debt for [`HOLD`] before it is answered, unless [`MAX_HELD`] answers are
    /// already held (then it returns at once).
    pub async fn hold(&self) {
        if let Ok(_permit) = self.held.try_acquire() {
            tokio::time::sleep(HOLD).await;
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let gained = now.saturating_duration_since(bucket.at).as_secs_f64() * self.per_second;
        (bucket.tokens + gained).min(self.burst)
    }

    /// Takes one refusal from `client`'s budget up front, so that concurrent messages of one
    /// client cannot all pass on the same last token; the [`Charge`] gives it back unless the
    /// message is refused. `Err(wait)` when `client` has no refusal left: how long until it has one.
    /// A request with no known client address is not budgeted.
    pub fn take(&self, client: Option<IpAddr>) -> Result<Charge<'_>, Duration> {
        if let Some(ip) = client {
            self.take_at(ip, Instant::now())?;
        }
        Ok(Charge {
            budget: self,
            client,
            kept: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn take_at(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let tokens = match clients.get(&client) {
            Some(bucket) => self.refilled(*bucket, now),
            None => self.burst,
        };
        if tokens < 1.0 {
            return Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second));
        }
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&client) {
            let burst = self.burst;
            clients.retain(|_, b| {
                let gained = now.saturating_duration_since(b.at).as_secs_f64() * self.per_second;
                b.tokens + gained < burst
            });
            if clients.len() >= MAX_CLIENTS {
                // Every tracked client is in debt: forget one (the map is bounded either way).
                if let Some(any) = clients.keys().next().copied() {
                    clients.remove(&any);
                }
            }
        }
        clients.insert(
            client,
            Bucket {
                tokens: tokens - 1.0,
                at: now,
            },
        );
        Ok(())
    }

    fn refund_at(&self, client: IpAddr, now: Instant) {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bucket) = clients.get(&client).copied() {
            let tokens = (self.refilled(bucket, now) + 1.0).min(self.burst);
            if tokens >= self.burst {
                // Full again: nothing to remember.
                clients.remove(&client);
            } else {
                clients.insert(client, Bucket { tokens, at: now });
            }
        }
    }

    /// Clients tracked now.
    pub fn tracked(&self) -> usize {
        self.clients.lock().map(|c| c.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_client_spends_its_burst_then_waits_for_the_refill() {
        let budget = RefusalBudget::new(3.0, 2.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(budget.take_at(A, t0).is_ok());
        }
        let wait = budget.take_at(A, t0).expect_err("burst spent");
        assert!(
            (wait.as_secs_f64() - 0.5).abs() < 1e-9,
            "one token at 2/s: {wait:?}"
        );
        // Another client is untouched.
        assert!(budget.take_at(B, t0).is_ok());
        // Half a second later, one refusal is allowed again, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert!(budget.take_at(A, t1).is_ok());
        assert!(budget.take_at(A, t1).is_err());
        // The refill stops at the burst.
        let later = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(budget.take_at(A, later).is_ok());
        }
        assert!(
            budget.take_at(A, later).is_err(),
            "3 at most, however long the wait"
        );
    }

    #[test]
    fn a_message_not_refused_gives_its_refusal_back() {
        let budget = RefusalBudget::new(2.0, 0.001);
        for _ in 0..10 {
            let charge = budget
                .take(Some(A))
                .expect("accepted messages cost nothing");
            drop(charge);
        }
        let refused = budget.take(Some(A)).expect("the burst is whole");
        refused.keep();
        drop(refused);
        let refused = budget.take(Some(A)).expect("one left");
        refused.keep();
        drop(refused);
        assert!(
            budget.take(Some(A)).is_err(),
            "two refusals spent the burst"
        );
        // Concurrent messages cannot share a last token: each takes its own up front.
        let other = budget.take(Some(B)).expect("B");
        let other2 = budget.take(Some(B)).expect("B again");
        assert!(
            budget.take(Some(B)).is_err(),
            "B's burst is held by its two messages"
        );
        drop((other, other2));
        assert!(budget.take(Some(B)).is_ok(), "given back when not refused");
        // No address: not budgeted.
        assert!(budget.take(None).is_ok());
    }

    #[tokio::test]
    async fn a_client_in_debt_is_held_until_too_many_are() {
        let budget = std::sync::Arc::new(RefusalBudget::default());
        let t0 = Instant::now();
        budget.hold().await;
        assert!(t0.elapsed() >= HOLD, "held for the whole tarpit time");
        // With every slot taken, the next one is answered at once.
        let holders: Vec<_> = (0..MAX_HELD)
            .map(|_| {
                let budget = std::sync::Arc::clone(&budget);
                tokio::spawn(async move { budget.hold().await })
            })
            .collect();
        while budget.held.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let t1 = Instant::now();
        budget.hold().await;
        assert!(t1.elapsed() < HOLD / 2, "not held: every slot is taken");
        for holder in holders {
            holder.await.expect("holder");
        }
        assert_eq!(budget.held.available_permits(), MAX_HELD, "slots come back");
    }

    #[test]
    fn the_client_map_is_bounded() {
        let budget = RefusalBudget::new(2.0, 1.0);
        let t0 = Instant::now();
        for i in 0..(MAX_CLIENTS as u32 + 10) {
            let _ = budget.take_at(IpAddr::V4(std::net::Ipv4Addr::from(i)), t0);
        }
        assert!(budget.tracked() <= MAX_CLIENTS, "{}", budget.tracked());
    }
}
