//! Changes that no event makes: the allowance runs out, a downtime window begins, a
//! lock expires, a new day starts. Once a second this task looks at each child whose
//! `next_change_unix_micros` has come and, if the status really changed, publishes it
//! on the feed as a status-only item, so watchers and sessions hear of it without
//! polling. Hourly it also has the household forget what live statuses no longer need
//! (idempotency keys past their 24 hours, detail from before yesterday).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::broadcast;

use crate::feed::FeedItem;
use crate::hub::Hub;
use crate::shutdown::Shutdown;

/// How often the clock looks.
const TICK: Duration = Duration::from_secs(1);
/// How often old detail is dropped.
const KEY_SWEEP: Duration = Duration::from_secs(3600);

/// Runs until shutdown.
pub async fn run(hub: Arc<Hub>, mut shutdown: Shutdown) {
    let mut feed = hub.feed.subscribe();
    // Per child: when to look again.
    let mut due: HashMap<String, i64> = HashMap::new();
    let mut ticker = tokio::time::interval(TICK);
    let mut sweep = tokio::time::interval(KEY_SWEEP);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = sweep.tick() => {
                let result = hub.writer.write(|txn| {
                    let now = txn.now();
                    txn.household_mut().forget_old(now);
                    Ok(())
                }).await;
                if let Err(err) = result {
                    tracing::warn!(error = %err, "old detail not swept");
                }
                continue;
            }
            item = feed.recv() => {
                match item {
                    Ok(item) => {
                        for status in &item.statuses {
                            if let Some(at) = status.next_change_unix_micros {
                                due.insert(status.child_id.clone(), at);
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => due.clear(),
                    Err(broadcast::error::RecvError::Closed) => return,
                }
                continue;
            }
            () = shutdown.wait() => return,
        }
        let now = Timestamp::now();
        let now_micros = now.as_microsecond();
        let item = {
            let household = hub.read();
            let mut statuses = Vec::new();
            for child in household.children() {
                let id = &child.child.child_id;
                let known = due.get(id).copied();
                if known.is_some_and(|at| at > now_micros) {
                    continue;
                }
                let Some(status) = household.child_status(id, now) else {
                    continue;
                };
                let next = status
                    .next_change_unix_micros
                    .unwrap_or(now_micros + 60_000_000);
                due.insert(id.clone(), next);
                if known.is_some() {
                    statuses.push(status);
                }
            }
            due.retain(|id, _| household.child(id).is_some());
            (!statuses.is_empty()).then(|| FeedItem {
                events: Vec::new(),
                statuses,
                seq: household.last_seq(),
            })
        };
        if let Some(item) = item {
            let _ = hub.feed.send(Arc::new(item));
        }
    }
}
