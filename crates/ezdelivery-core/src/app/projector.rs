//! The mypage projector: applies events from the log to the views, keeps a
//! checkpoint, and can rebuild every view from scratch.

use chrono::{DateTime, Utc};

use crate::app::storage::{Repo, StoredEvent};
use crate::app::view::OrderView;
use crate::domain::Event;
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
        let batch = repo.events(progress.checkpoint, None, BATCH)?;
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

/// Applies a batch of events, loading and saving each run of events of
/// one order once (a command's events are consecutive).
fn apply_all(repo: &mut dyn Repo, events: &[StoredEvent]) -> Result<usize> {
    apply_events(repo, events.iter().map(|e| (e.seq, e.at, &e.event)), None)
}

/// Applies events given as (sequence number, time, event), loading and
/// saving each run of events of one order once; with `keep`, hands back the
/// view each run left (saved or not). Returns how many events applied.
pub(crate) fn apply_events<'e>(
    repo: &mut dyn Repo,
    events: impl Iterator<Item = (i64, DateTime<Utc>, &'e Event)>,
    mut keep: Option<&mut Vec<OrderView>>,
) -> Result<usize> {
    let mut applied = 0;
    // The view being updated and whether it changed.
    let mut open: Option<(OrderView, bool)> = None;
    for (seq, at, event) in events {
        let Some(order_id) = event.order_id() else { continue };
        if open.as_ref().map(|(v, _)| v.order_id) != Some(order_id) {
            flush(repo, open.take(), keep.as_deref_mut())?;
            open = repo.view(order_id)?.map(|v| (v, false));
        }
        let changed = match open.as_mut() {
            Some((view, dirty)) => {
                let changed = view.apply(seq, at, event);
                *dirty |= changed;
                changed
            }
            None => {
                open = OrderView::start(seq, at, event).map(|v| (v, true));
                open.is_some()
            }
        };
        applied += usize::from(changed);
    }
    flush(repo, open, keep)?;
    Ok(applied)
}

fn flush(repo: &mut dyn Repo, open: Option<(OrderView, bool)>, keep: Option<&mut Vec<OrderView>>) -> Result<()> {
    let Some((view, dirty)) = open else { return Ok(()) };
    if dirty {
        repo.save_view(&view)?;
    }
    if let Some(keep) = keep {
        keep.retain(|v| v.order_id != view.order_id);
        keep.push(view);
    }
    Ok(())
}
