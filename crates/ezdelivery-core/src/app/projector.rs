//! The mypage projector: applies events from the log to the views, keeps a
//! checkpoint, and can rebuild every view from scratch.

use crate::app::storage::{Repo, StoredEvent};
use crate::app::view::OrderView;
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
    let mut applied = 0;
    // The view being updated and whether it changed.
    let mut open: Option<(OrderView, bool)> = None;
    for stored in events {
        let Some(order_id) = stored.event.order_id() else { continue };
        if open.as_ref().map(|(v, _)| v.order_id) != Some(order_id) {
            flush(repo, open.take())?;
            open = repo.view(order_id)?.map(|v| (v, false));
        }
        let changed = match open.as_mut() {
            Some((view, dirty)) => {
                let changed = view.apply(stored.seq, stored.at, &stored.event);
                *dirty |= changed;
                changed
            }
            None => {
                open = OrderView::start(stored.seq, stored.at, &stored.event).map(|v| (v, true));
                open.is_some()
            }
        };
        applied += usize::from(changed);
    }
    flush(repo, open)?;
    Ok(applied)
}

fn flush(repo: &mut dyn Repo, open: Option<(OrderView, bool)>) -> Result<()> {
    match open {
        Some((view, true)) => repo.save_view(&view),
        _ => Ok(()),
    }
}
