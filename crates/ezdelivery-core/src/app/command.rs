//! One command as it runs: the units of work it commits one after another
//! (a claim, a gateway's answer, a refund…) and what they produced, which
//! the command hands back to its caller instead of leaving it in the
//! engine.
//!
//! Every command that writes is run by [`Engine::command`]: it gets a fresh
//! [`Command`], and when it ends, ok or not (a declined payment is news
//! too), the messages its units of work claimed are delivered.

use crate::app::engine::{Committed, Engine, Produced, Work};
use crate::app::notify;
use crate::domain::view::OrderView;
use crate::domain::OrderId;
use crate::ports::storage::Repo;
use crate::Result;

/// One command in progress over an engine.
pub(crate) struct Command<'e> {
    /// The engine the command runs on.
    pub engine: &'e Engine,
    /// What the command's committed units of work produced so far.
    produced: Produced,
}

impl Engine {
    /// Runs `body` as one command, then delivers the messages its units of
    /// work queued and claimed. Their delivery is not the command's
    /// business: what is not delivered now stays queued for `relay`.
    pub(crate) fn command<T>(&self, body: impl FnOnce(&mut Command<'_>) -> Result<T>) -> Result<T> {
        let mut command = Command { engine: self, produced: Produced::default() };
        let result = body(&mut command);
        notify::deliver_quietly(self, command.take_claimed());
        result
    }

    /// Runs `work` as a command of one unit of work on `order`, and
    /// returns the order's view as it committed it.
    pub(crate) fn order_command(
        &self,
        order: OrderId,
        work: impl FnMut(&mut Work<'_>) -> Result<()>,
    ) -> Result<OrderView> {
        self.command(|command| {
            command.write(work)?;
            command.view(order)
        })
    }

    /// Runs `work` as a command of one unit of work.
    pub(crate) fn write_command<R>(&self, work: impl FnMut(&mut Work<'_>) -> Result<R>) -> Result<R> {
        self.command(|command| command.write(work))
    }
}

impl Command<'_> {
    /// Runs `work` as one unit of work (see `Engine::write`) and keeps what
    /// it produced.
    pub fn write<R>(&mut self, work: impl FnMut(&mut Work<'_>) -> Result<R>) -> Result<R> {
        let Committed { value, produced } = self.engine.write(work)?;
        self.produced.absorb(produced);
        Ok(value)
    }

    /// Runs `read` on a consistent snapshot.
    pub fn read<R>(&self, read: impl FnOnce(&mut dyn Repo) -> Result<R>) -> Result<R> {
        self.engine.read(read)
    }

    /// The view of `order` as this command's last unit of work that
    /// changed it committed it, or else as stored.
    pub fn view(&mut self, order: OrderId) -> Result<OrderView> {
        match self.produced.view.take() {
            Some(view) if view.order_id == order => Ok(*view),
            _ => self.engine.status(order),
        }
    }

    /// The messages claimed so far, for the caller to deliver now.
    pub fn take_claimed(&mut self) -> Vec<crate::ports::outbox::QueuedMessage> {
        std::mem::take(&mut self.produced.claimed)
    }
}
