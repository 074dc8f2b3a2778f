//! `GET /metrics` in Prometheus text format. What the database holds
//! (orders by status, breaker states, the outbox) is counted when scraped;
//! what only this process sees (its gateway calls and their latency, its
//! requests) is counted as it happens. Gateway calls made by a `relay
//! --watch` in another process are that process's, not this one's.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ezdelivery_core::domain::BreakerState;
use ezdelivery_core::ports::{
    ChargeGateway, ChargeRequest, GatewayOutcome, PaymentGateway, PaymentRequest, RefundRequest,
};
use ezdelivery_core::Engine;

use crate::problem::Problem;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// (gateway, call, outcome) of a gateway call.
type CallKey = (&'static str, &'static str, &'static str);

/// (method, route, status) of a request.
type RequestKey = (String, String, u16);

/// The counters of one server.
#[derive(Debug, Default)]
pub struct Metrics {
    calls: Mutex<BTreeMap<CallKey, Histogram>>,
    requests: Mutex<BTreeMap<RequestKey, Histogram>>,
    /// Connections accepted and served, and of those, closed.
    connections_served: AtomicU64,
    connections_closed: AtomicU64,
    /// Connections turned away at `max_connections`.
    connections_refused: AtomicU64,
}

/// One connection served: counted open until it is dropped.
pub(crate) struct OpenConnection(Arc<Metrics>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_closed.fetch_add(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// No calls and no requests yet.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    fn gateway_call(&self, key: CallKey, took: Duration) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.entry(key).or_default().observe(took.as_secs_f64());
        }
    }

    /// Counts one answered request: its method, route (the path template,
    /// not the path, so ids do not make new series), status and latency.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        if let Ok(mut requests) = self.requests.lock() {
            requests.entry((method.to_string(), route.to_string(), status)).or_default().observe(took.as_secs_f64());
        }
    }

    /// A connection accepted and served: open until the value is dropped.
    pub(crate) fn connection_opened(self: &Arc<Self>) -> OpenConnection {
        self.connections_served.fetch_add(1, Ordering::Relaxed);
        OpenConnection(Arc::clone(self))
    }

    /// A connection turned away at the limit.
    pub(crate) fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Everything, as Prometheus text (reads the database through `engine`).
    pub(crate) fn render(&self, engine: &Engine) -> Result<String, Problem> {
        let mut out = String::new();
        out.push_str("# HELP ezdelivery_orders Orders by status.\n# TYPE ezdelivery_orders gauge\n");
        for (status, count) in engine.order_counts()? {
            let _ = writeln!(out, "ezdelivery_orders{{status=\"{status}\"}} {count}");
        }
        out.push_str(
            "# HELP ezdelivery_breaker_state Circuit breakers: 1 for the state each is in.\n\
             # TYPE ezdelivery_breaker_state gauge\n",
        );
        for breaker in engine.breakers()? {
            for state in [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen] {
                let on = u8::from(breaker.state == state);
                let _ = writeln!(out, "ezdelivery_breaker_state{{name=\"{}\",state=\"{state}\"}} {on}", breaker.name);
            }
        }
        let waiting = engine.queue_status()?;
        out.push_str(
            "# HELP ezdelivery_outbox_depth What waits for the relay: gateway calls and message deliveries.\n\
             # TYPE ezdelivery_outbox_depth gauge\n",
        );
        for (queue, depth) in [
            ("payments", waiting.payments),
            ("charges", waiting.charges),
            ("messages", waiting.messages),
            ("other_gateways", waiting.elsewhere),
        ] {
            let _ = writeln!(out, "ezdelivery_outbox_depth{{queue=\"{queue}\"}} {depth}");
        }
        out.push_str(
            "# HELP ezdelivery_gateway_call_seconds Gateway calls made by this process, by outcome.\n\
             # TYPE ezdelivery_gateway_call_seconds histogram\n",
        );
        if let Ok(calls) = self.calls.lock() {
            for ((gateway, call, outcome), h) in calls.iter() {
                let labels = format!("gateway=\"{gateway}\",call=\"{call}\",outcome=\"{outcome}\"");
                write_histogram(&mut out, "ezdelivery_gateway_call_seconds", &labels, h);
            }
        }
        let closed = self.connections_closed.load(Ordering::Relaxed);
        let open = self.connections_served.load(Ordering::Relaxed).saturating_sub(closed);
        let refused = self.connections_refused.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP ezdelivery_http_connections_open Connections this process holds open.\n\
             # TYPE ezdelivery_http_connections_open gauge\n\
             ezdelivery_http_connections_open {open}\n\
             # HELP ezdelivery_http_connections_refused_total Connections turned away at [serve] max_connections.\n\
             # TYPE ezdelivery_http_connections_refused_total counter\n\
             ezdelivery_http_connections_refused_total {refused}\n"
        );
        out.push_str(
            "# HELP ezdelivery_http_request_seconds Requests answered by this process.\n\
             # TYPE ezdelivery_http_request_seconds histogram\n",
        );
        if let Ok(requests) = self.requests.lock() {
            for ((method, route, status), h) in requests.iter() {
                let labels = format!("method=\"{method}\",route=\"{}\",status=\"{status}\"", escape(route));
                write_histogram(&mut out, "ezdelivery_http_request_seconds", &labels, h);
            }
        }
        Ok(out)
    }
}

fn write_histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}

/// A label value as Prometheus reads it.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn outcome_label(outcome: &GatewayOutcome) -> &'static str {
    match outcome {
        GatewayOutcome::Approved { .. } => "approved",
        GatewayOutcome::Declined { .. } => "declined",
        GatewayOutcome::Unavailable { .. } => "unavailable",
        GatewayOutcome::NotReached { .. } => "not_reached",
    }
}

/// A gateway whose calls are timed and counted in [`Metrics`].
pub struct Metered<G> {
    inner: G,
    metrics: Arc<Metrics>,
}

impl<G> Metered<G> {
    /// Counts the calls of `inner` in `metrics`.
    pub fn new(inner: G, metrics: Arc<Metrics>) -> Metered<G> {
        Metered { inner, metrics }
    }

    fn time(&self, gateway: &'static str, call: &'static str, work: impl FnOnce() -> GatewayOutcome) -> GatewayOutcome {
        let started = Instant::now();
        let outcome = work();
        self.metrics.gateway_call((gateway, call, outcome_label(&outcome)), started.elapsed());
        outcome
    }
}

impl<G: PaymentGateway> PaymentGateway for Metered<G> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn approve(&self, request: &PaymentRequest) -> GatewayOutcome {
        self.time("payment", "approve", || self.inner.approve(request))
    }

    fn refund(&self, request: &RefundRequest) -> GatewayOutcome {
        self.time("payment", "refund", || self.inner.refund(request))
    }
}

impl<G: ChargeGateway> ChargeGateway for Metered<G> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn pay(&self, request: &ChargeRequest) -> GatewayOutcome {
        self.time("charge", "pay", || self.inner.pay(request))
    }

    fn refund(&self, request: &RefundRequest) -> GatewayOutcome {
        self.time("charge", "refund", || self.inner.refund(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_observation_in_every_bucket_it_fits() {
        let mut h = Histogram::default();
        h.observe(0.003);
        h.observe(2.0);
        assert_eq!(h.count, 2);
        assert_eq!(h.counts[0], 0, "le 0.001");
        assert_eq!(h.counts[2], 1, "le 0.005");
        assert_eq!(h.counts[BUCKETS.len() - 1], 2, "le 5");
        let mut out = String::new();
        write_histogram(&mut out, "x", "a=\"b\"", &h);
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 2\n"), "{out}");
        assert!(out.contains("x_count{a=\"b\"} 2\n"), "{out}");
    }
}
