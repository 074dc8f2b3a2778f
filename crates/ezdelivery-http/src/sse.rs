//! Live event streams (Server-Sent Events) on the log's commit-ordered
//! cursor, the one `events --follow` reads: events come in the order their
//! transactions committed, each with its `seq` as the SSE `id`, so a client
//! that reconnects with `Last-Event-ID` gets every event exactly once.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use ezdelivery_core::json::CloudEvent;
use futures_util::Stream;

use crate::auth::{order_access, OrderAction};
use crate::problem::Problem;
use crate::state::AppState;
use crate::tokens::Principal;

/// How many events one look at the log reads.
const BATCH: usize = 500;

/// The `seq` a reconnecting client last saw (`Last-Event-ID`), if it says.
pub(crate) fn last_event_id(headers: &HeaderMap) -> Result<Option<i64>, Problem> {
    let Some(value) = headers.get("last-event-id") else { return Ok(None) };
    let text = value.to_str().unwrap_or_default().trim();
    match text.parse::<i64>() {
        Ok(seq) if seq >= 0 => Ok(Some(seq)),
        _ => Err(Problem::invalid("Last-Event-ID must be the seq of an event (a whole number, 0 or more)")),
    }
}

/// The events after `after` (of `order`, or all), then every new one as it
/// commits, as CloudEvents; the stream ends when the server stops (the
/// client reconnects with `Last-Event-ID`).
///
/// An order's stream asks again, with every look at the log, whether
/// `caller` may still see the order, and ends once it may not: access is
/// not for ever (a rider sees an unassigned delivery until another rider
/// takes it), and checked only when the stream opened, the events of a
/// delivery went on to a rider it had been taken from. The reconnection
/// is then refused.
pub(crate) fn stream(
    state: AppState,
    caller: Principal,
    order: Option<i64>,
    after: i64,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stopping = state.stopping.clone();
    let start = (state, caller, stopping, after, VecDeque::<Event>::new());
    let events =
        futures_util::stream::unfold(start, move |(state, caller, mut stopping, mut last, mut ready)| async move {
            loop {
                if let Some(event) = ready.pop_front() {
                    return Some((Ok(event), (state, caller, stopping, last, ready)));
                }
                if *stopping.borrow() {
                    return None;
                }
                let (cursor, who) = (last, caller.clone());
                let looked = state
                    .engine
                    .run(move |e| {
                        let batch = e.events(cursor, order, BATCH)?;
                        // After the read: no event goes out that was written once access was gone.
                        let allowed = match order {
                            Some(order) if !batch.is_empty() => order_access(e, &who, order, OrderAction::Read).is_ok(),
                            _ => true,
                        };
                        Ok((batch, allowed))
                    })
                    .await;
                match looked {
                    Ok((_, false)) => return None,
                    Ok((batch, true)) if !batch.is_empty() => {
                        for stored in &batch {
                            last = stored.seq;
                            let data = serde_json::to_string(&CloudEvent::from(stored)).unwrap_or_default();
                            ready.push_back(Event::default().id(stored.seq.to_string()).data(data));
                        }
                    }
                    // Nothing new (or the database did not answer this time):
                    // look again after a while, or end when the server stops.
                    _ => {
                        tokio::select! {
                            _ = tokio::time::sleep(state.settings.poll) => {}
                            changed = stopping.changed() => if changed.is_err() { return None },
                        }
                    }
                }
            }
        });
    Sse::new(events).keep_alive(KeepAlive::default())
}
