//! The engine is synchronous: every call runs on tokio's blocking threads,
//! never on a worker thread (the PostgreSQL client runs a runtime of its
//! own and must not be called from one), and no more calls run at once than
//! the storage has connections, so a burst queues here instead of in the
//! storage's pool.

use std::sync::Arc;

use ezdelivery_core::Engine;
use tokio::sync::Semaphore;

use crate::problem::Problem;

/// The engine, shared by every request, and the permits to call it.
#[derive(Clone)]
pub struct Blocking {
    engine: Arc<Engine>,
    permits: Arc<Semaphore>,
}

impl Blocking {
    /// Shares `engine` among requests, at most `calls` of them inside it at once.
    pub fn new(engine: Arc<Engine>, calls: usize) -> Blocking {
        Blocking { engine, permits: Arc::new(Semaphore::new(calls.max(1))) }
    }

    /// Runs `work` on a blocking thread once a permit is free (an engine
    /// error becomes its problem through `?`). The work
    /// runs to its end even when the request is dropped (a client gone, a
    /// timeout): a command that started is never cut in half.
    pub async fn run<T, F>(&self, work: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, Problem> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Problem::unavailable("the server is shutting down"))?;
        let engine = Arc::clone(&self.engine);
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&engine)
        });
        match task.await {
            Ok(result) => result,
            Err(e) => Err(Problem::failed(format!("the engine call failed: {e}"))),
        }
    }
}
