//! Circuit breakers around the gateways and notifier channels: asking
//! before a call, recording after it, and the `breaker` command. The state
//! is in the storage, so it holds across CLI processes.

use chrono::{DateTime, Utc};

use crate::app::engine::Engine;
use crate::domain::breaker::Permit;
use crate::domain::{Breaker, BreakerName, BreakerSettings, BreakerState};
use crate::ports::storage::Repo;
use crate::ports::GatewayOutcome;
use crate::{Error, Result};

/// A gateway call as the breaker saw it.
pub(crate) struct Guarded {
    /// What the gateway answered, or `Unavailable` when the breaker refused.
    pub outcome: GatewayOutcome,
    /// `Some(true)` when the service answered, `Some(false)` when it was
    /// unavailable, `None` when the breaker refused without calling.
    pub reached: Option<bool>,
}

/// One breaker as `breaker status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BreakerStatus {
    /// `payment`, `charge` or a notifier channel.
    pub name: BreakerName,
    /// `closed`, `open` or `half_open`.
    pub state: BreakerState,
    /// Failed calls in a row since the last success (the breaker opens at
    /// the configured threshold).
    pub failures: u32,
    /// When it opened (open), or when its trial call started (half open);
    /// `None` while closed.
    pub opened_at: Option<DateTime<Utc>>,
    /// When an open breaker lets a trial call through.
    pub retry_at: Option<DateTime<Utc>>,
}

/// Why a call was not made, for the user.
pub(crate) fn refusal(name: &BreakerName, breaker: &Breaker, until: DateTime<Utc>) -> String {
    format!(
        "the {name} circuit breaker is open after {} consecutive failures; calls are refused until {} \
         unless it is reset",
        breaker.failures,
        crate::domain::time::to_the_second(&until)
    )
}

/// Records a call's result on breaker `name`, writing only when it changes.
pub(crate) fn record(
    repo: &mut dyn Repo,
    name: &BreakerName,
    reached: Option<bool>,
    settings: &BreakerSettings,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(ok) = reached else { return Ok(()) };
    let stored = repo.breaker(name)?;
    let current = stored.clone().unwrap_or_else(|| Breaker::closed(name.clone(), now));
    let next = current.record(ok, settings, now);
    if next.state == current.state && next.failures == current.failures {
        return Ok(());
    }
    repo.save_breaker(&next)
}

impl Engine {
    /// Calls a gateway through breaker `name`, `stored` as the caller's
    /// last unit of work read it: refused at once while it is open, one
    /// trial when its time is up (taken in a write of its own, so that of
    /// several processes one gets it).
    pub(crate) fn guarded(
        &self,
        name: &BreakerName,
        stored: Option<Breaker>,
        call: impl FnOnce() -> GatewayOutcome,
    ) -> Result<Guarded> {
        let settings = self.settings.breakers;
        if let Some(breaker) = stored {
            // Read only here: a breaker never stored is closed, and a call
            // through it reads no clock.
            let now = self.clock.now();
            match breaker.permit(&settings, now).1 {
                Permit::Call => {}
                Permit::Refuse { until } => {
                    return Ok(Guarded {
                        outcome: GatewayOutcome::NotReached { reason: refusal(name, &breaker, until) },
                        reached: None,
                    })
                }
                Permit::Trial => {
                    // Take the trial in a write: of several processes, one gets it.
                    let taken = self
                        .write(|w| {
                            let current = w.repo.breaker(name)?.unwrap_or_else(|| Breaker::closed(name.clone(), now));
                            let (next, permit) = current.permit(&settings, now);
                            if permit == Permit::Trial {
                                w.repo.save_breaker(&next)?;
                            }
                            Ok((current, permit))
                        })?
                        .value;
                    if let (current, Permit::Refuse { until }) = taken {
                        return Ok(Guarded {
                            outcome: GatewayOutcome::NotReached { reason: refusal(name, &current, until) },
                            reached: None,
                        });
                    }
                }
            }
        }
        let outcome = call();
        let reached = Some(outcome.reached());
        Ok(Guarded { outcome, reached })
    }

    /// The names of every breaker this engine has: `payment`, `charge`, and
    /// one per notifier channel.
    pub fn breaker_names(&self) -> Vec<BreakerName> {
        let mut names = BreakerName::GATEWAYS.to_vec();
        names.extend(self.notifiers.iter().map(|n| BreakerName::Channel(n.channel().clone())));
        names
    }

    /// The breaker a user named (`ezdelivery breaker reset NAME`): one of
    /// [`Engine::breaker_names`], else [`Error::NotFound`] listing them.
    pub fn breaker_name(&self, name: &str) -> Result<BreakerName> {
        let names = self.breaker_names();
        match names.iter().find(|n| n.as_str() == name) {
            Some(found) => Ok(found.clone()),
            None => Err(Error::NotFound {
                what: crate::Record::Breaker,
                id: format!(
                    "`{}` (the breakers are {})",
                    crate::domain::validate::shown(name),
                    names.iter().map(BreakerName::as_str).collect::<Vec<_>>().join(", ")
                ),
                store: None,
            }),
        }
    }

    /// Every breaker's state (`ezdelivery breaker status`).
    pub fn breakers(&self) -> Result<Vec<BreakerStatus>> {
        let settings = self.settings.breakers;
        let now = self.clock.now();
        let names = self.breaker_names();
        let stored = self.read(|repo| repo.breakers())?;
        Ok(names
            .into_iter()
            .map(|name| {
                let b = stored
                    .iter()
                    .find(|b| b.name == name)
                    .cloned()
                    .unwrap_or_else(|| Breaker::closed(name.clone(), now));
                BreakerStatus {
                    state: b.state,
                    failures: b.failures,
                    opened_at: b.opened_at,
                    retry_at: b.reopens_at(&settings),
                    name,
                }
            })
            .collect())
    }
}
