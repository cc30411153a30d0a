//! A publisher that records every call and answers as scripted: the test publisher of the
//! worker and benchmark (no network, no platform).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::{PublishFailure, PublishRequest, Publisher, Receipt};

/// One recorded call.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    /// What was asked.
    pub request: PublishRequest,
    /// When the call started.
    pub started_at: SystemTime,
}

#[derive(Default)]
struct State {
    calls: Vec<RecordedCall>,
    script: HashMap<String, VecDeque<Result<Receipt, PublishFailure>>>,
    delay: HashMap<String, Duration>,
    /// Receipts by idempotency key: a repeated key returns the first receipt.
    published: HashMap<String, Receipt>,
    /// Calls in progress per platform, and the most seen at once.
    in_flight: HashMap<String, usize>,
    max_in_flight: HashMap<String, usize>,
}

/// Records calls; succeeds unless answers were scripted for a platform.
pub struct RecordingPublisher {
    state: Mutex<State>,
    idempotent: bool,
}

impl RecordingPublisher {
    /// A recorder; `idempotent` says whether it dedupes by idempotency key like a platform
    /// that honours them.
    pub fn new(idempotent: bool) -> Self {
        Self {
            state: Mutex::new(State::default()),
            idempotent,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock can only come from a test assertion; the state
        // is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues answers for the next calls on `platform` (then it succeeds again).
    pub fn script(&self, platform: &str, answers: Vec<Result<Receipt, PublishFailure>>) {
        self.lock()
            .script
            .entry(platform.to_owned())
            .or_default()
            .extend(answers);
    }

    /// Makes every call on `platform` take `delay`.
    pub fn delay(&self, platform: &str, delay: Duration) {
        self.lock().delay.insert(platform.to_owned(), delay);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.lock().calls.clone()
    }

    /// How many calls so far.
    pub fn call_count(&self) -> usize {
        self.lock().calls.len()
    }

    /// The most calls that were in progress at once on `platform`.
    pub fn max_in_flight(&self, platform: &str) -> usize {
        self.lock()
            .max_in_flight
            .get(platform)
            .copied()
            .unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Publisher for RecordingPublisher {
    async fn publish(&self, request: &PublishRequest) -> Result<Receipt, PublishFailure> {
        let delay = {
            let mut state = self.lock();
            state.calls.push(RecordedCall {
                request: request.clone(),
                started_at: SystemTime::now(),
            });
            let now = {
                let n = state.in_flight.entry(request.platform.clone()).or_default();
                *n += 1;
                *n
            };
            let max = state
                .max_in_flight
                .entry(request.platform.clone())
                .or_default();
            *max = (*max).max(now);
            state.delay.get(&request.platform).copied()
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let mut state = self.lock();
        if let Some(n) = state.in_flight.get_mut(&request.platform) {
            *n = n.saturating_sub(1);
        }
        if let Some(answer) = state
            .script
            .get_mut(&request.platform)
            .and_then(VecDeque::pop_front)
        {
            return answer;
        }
        if self.idempotent
            && let Some(receipt) = state.published.get(&request.idempotency_key)
        {
            return Ok(receipt.clone());
        }
        let receipt = Receipt {
            platform_post_id: format!("{}-{}", request.platform, request.target_id.simple()),
            url: Some(format!(
                "https://{}.example/posts/{}",
                request.platform,
                request.target_id.simple()
            )),
            response_code: Some(200),
        };
        state
            .published
            .insert(request.idempotency_key.clone(), receipt.clone());
        Ok(receipt)
    }

    fn is_idempotent(&self, _platform: &str) -> bool {
        self.idempotent
    }
}
