//! The mypage projector: applies events to the views. Every unit of work
//! applies its own events in its own transaction (`Work::finish`), so the
//! views are never behind the log; `projection rebuild` replays the whole
//! log, keeping a checkpoint as it goes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use smallvec::SmallVec;

use crate::domain::view::OrderView;
use crate::domain::{Event, OrderId};
use crate::ports::storage::{Repo, StoredEvent};
use crate::Result;

/// The projector's name in the checkpoint table.
pub const MYPAGE: &str = "mypage";

/// How many events a catch-up reads at a time.
const BATCH: usize = 1_000;

/// What a catch-up or rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Events read from the log.
    pub events: usize,
    /// Events that changed a view.
    pub applied: usize,
    /// The checkpoint afterwards.
    pub checkpoint: i64,
}

/// Applies every event after the checkpoint to the views and moves the
/// checkpoint. Safe to repeat: a view ignores events it has already seen.
pub fn catch_up(repo: &mut dyn Repo) -> Result<Progress> {
    let mut progress = Progress { checkpoint: repo.checkpoint(MYPAGE)?, ..Progress::default() };
    loop {
        let batch = repo.replay(progress.checkpoint, BATCH)?;
        let Some(last) = batch.last() else { break };
        progress.checkpoint = last.seq;
        progress.events += batch.len();
        progress.applied += apply_all(repo, &batch)?;
        if batch.len() < BATCH {
            break;
        }
    }
    repo.set_checkpoint(MYPAGE, progress.checkpoint)?;
    Ok(progress)
}

/// Deletes every view and replays the whole log.
pub fn rebuild(repo: &mut dyn Repo) -> Result<Progress> {
    repo.clear_views()?;
    repo.set_checkpoint(MYPAGE, 0)?;
    catch_up(repo)
}

/// Applies a batch of events, loading and saving each order's view once.
fn apply_all(repo: &mut dyn Repo, events: &[StoredEvent]) -> Result<usize> {
    apply_events(repo, events.iter().map(|e| (e.seq, e.at, &e.event)), None)
}

/// The views a unit of work's events left ([`apply_events`]'s `keep`):
/// inline, as it is one or two, each boxed (see `apply_events`).
pub(crate) type KeptViews = SmallVec<[Box<OrderView>; 2]>;

/// A view being updated by [`apply_events`]: its order, the view (`None`
/// for an order with no view yet), and whether it changed.
type OpenView = (OrderId, Option<Box<OrderView>>, bool);

/// Applies events given as (sequence number, time, event), loading each
/// order's view once and saving it once however its events interleave with
/// other orders' in the batch; with `keep`, hands back every view the batch
/// left (saved or not), the order of the last event with a view last. Returns how many
/// events applied.
///
/// Views are boxed from the moment they are loaded: a command's view goes
/// from here through the unit of work's result to the command's, and each
/// move of a 304-byte view was a `memcpy` (half of the 16 % `memcpy` took
/// of an in-memory lifecycle); a box moves as a pointer.
pub(crate) fn apply_events<'e>(
    repo: &mut dyn Repo,
    events: impl Iterator<Item = (i64, DateTime<Utc>, &'e Event)>,
    keep: Option<&mut KeptViews>,
) -> Result<usize> {
    let mut applied = 0;
    // The views being updated, in order of first appearance, and whether
    // each changed; `None` for an order with no view yet. Inline for the
    // one or two of a command's unit of work.
    let mut open: SmallVec<[OpenView; 2]> = SmallVec::new();
    // An index once there are more than a few orders (a command's own
    // events are of one or two; a rebuild's batch, of hundreds).
    let mut index: Option<HashMap<OrderId, usize>> = None;
    let mut last = None;
    for (seq, at, event) in events {
        let Some(order_id) = event.order_id() else { continue };
        let found = match &index {
            Some(index) => index.get(&order_id).copied(),
            None => open.iter().position(|(id, _, _)| *id == order_id),
        };
        let slot = match found {
            Some(i) => i,
            None => {
                open.push((order_id, repo.view(order_id)?.map(Box::new), false));
                let slot = open.len() - 1;
                match &mut index {
                    Some(index) => {
                        index.insert(order_id, slot);
                    }
                    None if open.len() > 8 => {
                        index = Some(open.iter().enumerate().map(|(i, (id, _, _))| (*id, i)).collect());
                    }
                    None => {}
                }
                slot
            }
        };
        let (_, view, dirty) = &mut open[slot];
        let changed = match view.as_mut() {
            Some(view) => view.apply(seq, at, event),
            None => {
                *view = OrderView::start(seq, at, event).map(Box::new);
                view.is_some()
            }
        };
        if view.is_some() {
            last = Some(order_id);
        }
        *dirty |= changed;
        applied += usize::from(changed);
    }
    for (_, view, dirty) in &open {
        if let (Some(view), true) = (view, dirty) {
            repo.save_view(view)?;
        }
    }
    if let Some(keep) = keep {
        // Moved straight into `keep`, the last event's order's last.
        keep.retain(|k| !open.iter().any(|(id, v, _)| v.is_some() && *id == k.order_id));
        // Exact: a command's one or two fit inline; more only from a
        // batch of several orders' events.
        keep.reserve_exact(open.len());
        let mut last_view = None;
        for (id, view, _) in open {
            match view {
                Some(view) if Some(id) == last && last_view.is_none() => last_view = Some(view),
                Some(view) => keep.push(view),
                None => {}
            }
        }
        keep.extend(last_view);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStorage;
    use crate::domain::OrderItem;
    use crate::ports::Storage;

    fn placed(order_id: OrderId) -> Event {
        Event::OrderPlaced(Box::new(crate::domain::Placed {
            order_id,
            store_id: 1,
            store: "BBQ".into(),
            customer: format!("c{order_id}").into(),
            address: "".into(),
            items: vec![OrderItem { menu_id: 1, name: "후라이드".into(), unit_price: 18_000, qty: 1 }].into(),
            total: 18_000,
        }))
    }

    #[test]
    fn interleaved_orders_project_as_if_one_by_one() {
        let at = DateTime::from_timestamp(1_714_521_600, 0).unwrap();
        let log = [
            placed(1),
            placed(2),
            Event::PaymentApproved { order_id: 1, payment_id: 1, amount: 18_000, card: None },
            Event::StoreOpened { store_id: 1 },
            Event::PaymentApproved { order_id: 2, payment_id: 2, amount: 18_000, card: None },
            Event::CookingStarted { order_id: 1 },
            Event::CookingStarted { order_id: 3 },
        ];
        let storage = MemoryStorage::new();
        let mut kept = KeptViews::new();
        storage
            .write(&mut |repo| {
                for (i, e) in log.iter().enumerate() {
                    repo.append_event(&format!("e{i}"), at, e)?;
                }
                let events = log.iter().enumerate().map(|(i, e)| (i as i64 + 1, at, e));
                let applied = apply_events(repo, events, Some(&mut kept))?;
                assert_eq!(applied, 5, "the store's event and an unknown order's are not applied");
                Ok(())
            })
            .unwrap();
        assert_eq!(kept.iter().map(|v| v.order_id).collect::<Vec<_>>(), vec![2, 1], "the last event's order last");
        let mut one_by_one = Vec::new();
        for id in [1, 2] {
            let mut view = None::<OrderView>;
            for (i, e) in log.iter().enumerate().filter(|(_, e)| e.order_id() == Some(id)) {
                match &mut view {
                    Some(v) => {
                        v.apply(i as i64 + 1, at, e);
                    }
                    None => view = OrderView::start(i as i64 + 1, at, e),
                }
            }
            one_by_one.push(view.unwrap());
        }
        storage
            .write(&mut |repo| {
                assert_eq!(repo.view(1)?.as_ref(), Some(&one_by_one[0]));
                assert_eq!(repo.view(2)?.as_ref(), Some(&one_by_one[1]));
                let progress = rebuild(repo)?;
                assert_eq!((progress.events, progress.applied, progress.checkpoint), (7, 5, 7));
                assert_eq!(repo.view(1)?.as_ref(), Some(&one_by_one[0]));
                Ok(())
            })
            .unwrap();
    }
}
