//! Sandbox gateways: deterministic stand-ins for the payment and
//! delivery-charge services, for demos and tests. They approve, decline the
//! configured cards, and can be made slow or unavailable.

use std::time::Duration;

use crate::domain::payment::mask_card;
use crate::ports::{ChargeGateway, ChargeRequest, GatewayOutcome, PaymentGateway, PaymentRequest, RefundRequest};

/// The card the sandbox declines unless configured otherwise.
pub const DEFAULT_DECLINE_CARD: &str = "4000000000000002";

/// How a sandbox gateway behaves: also the `[payment.sandbox]` and
/// `[charge.sandbox]` sections of the config file, every key optional.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSettings {
    /// Sleep this long before answering, to show slowness.
    pub latency_ms: u64,
    /// Answer "unavailable" to everything, to show an outage.
    pub unavailable: bool,
    /// Card numbers to decline (payment only). Compared masked, as the
    /// gateway only ever sees the last four digits and the length.
    pub decline_cards: Vec<String>,
    /// The caller's timeout (the section's `timeout_ms`): a `latency_ms`
    /// beyond it is a timeout, answered as "unavailable" (the sandbox did
    /// the work, as a slow real gateway may have, so a retry under the same
    /// key finds it done).
    #[serde(skip)]
    pub timeout_ms: Option<u64>,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            latency_ms: 0,
            unavailable: false,
            decline_cards: vec![DEFAULT_DECLINE_CARD.to_string()],
            timeout_ms: None,
        }
    }
}

impl SandboxSettings {
    /// Waits the configured latency (at most the caller's timeout); answers
    /// `NotReached` during an outage and `Unavailable` on a timeout.
    fn outage(&self) -> Option<GatewayOutcome> {
        if self.unavailable {
            return Some(GatewayOutcome::NotReached { reason: "the sandbox is set to be unavailable".into() });
        }
        match self.timeout_ms {
            Some(timeout) if self.latency_ms > timeout => {
                std::thread::sleep(Duration::from_millis(timeout));
                Some(GatewayOutcome::Unavailable {
                    reason: format!("no answer within {timeout} ms (the sandbox's latency_ms is {})", self.latency_ms),
                })
            }
            _ => {
                std::thread::sleep(Duration::from_millis(self.latency_ms));
                None
            }
        }
    }

    /// The reference is a function of the key, so a retry gets the same one.
    fn approved(prefix: &str, idempotency_key: &str) -> GatewayOutcome {
        GatewayOutcome::Approved { gateway_ref: [prefix, "-", idempotency_key].concat() }
    }

    /// A refund of what the sandbox took under `taken` (its references'
    /// prefix). One of a reference it never gave is not its to make:
    /// money another gateway took (a command run without the config that
    /// took it) is not reported given back. The sandbox answers no, which
    /// for a refund settles nothing: the refund stays queued for the
    /// gateway that took it, needs a person after `attention_after` such
    /// answers, and (an answer, not an outage) never opens the breaker
    /// that processes using the real gateway share.
    fn refund(&self, request: &RefundRequest, taken: &str, prefix: &str) -> GatewayOutcome {
        if let Some(outcome) = self.outage() {
            return outcome;
        }
        let ours = request.gateway_ref.strip_prefix(taken).is_some_and(|rest| rest.starts_with('-'));
        if !ours {
            return GatewayOutcome::Declined {
                reason: format!(
                    "the sandbox did not take {:?}, so it cannot give it back: run relay with the config of the \
                     gateway that took it",
                    request.gateway_ref
                ),
            };
        }
        SandboxSettings::approved(prefix, &request.idempotency_key)
    }
}

/// The sandbox payment gateway.
#[derive(Debug, Clone, Default)]
pub struct SandboxPayment {
    settings: SandboxSettings,
}

impl SandboxPayment {
    /// A sandbox payment gateway with these settings.
    pub fn new(settings: SandboxSettings) -> SandboxPayment {
        SandboxPayment { settings }
    }

    fn declines(&self, card: &str) -> bool {
        self.settings.decline_cards.iter().any(|c| mask_card(c).is_ok_and(|m| m == card))
    }
}

/// The name of both sandbox gateways ([`PaymentGateway::name`]).
pub const SANDBOX: &str = "sandbox";

impl PaymentGateway for SandboxPayment {
    fn name(&self) -> &str {
        SANDBOX
    }

    fn approve(&self, request: &PaymentRequest) -> GatewayOutcome {
        if let Some(outcome) = self.settings.outage() {
            return outcome;
        }
        match &request.card {
            Some(card) if self.declines(card) => {
                GatewayOutcome::Declined { reason: "card declined by the sandbox".into() }
            }
            _ => SandboxSettings::approved("sandbox-pay", &request.idempotency_key),
        }
    }

    fn refund(&self, request: &RefundRequest) -> GatewayOutcome {
        self.settings.refund(request, "sandbox-pay", "sandbox-refund")
    }
}

/// The sandbox delivery-charge gateway.
#[derive(Debug, Clone, Default)]
pub struct SandboxCharge {
    settings: SandboxSettings,
}

impl SandboxCharge {
    /// A sandbox charge gateway with these settings (`decline_cards` is unused).
    pub fn new(settings: SandboxSettings) -> SandboxCharge {
        SandboxCharge { settings }
    }
}

impl ChargeGateway for SandboxCharge {
    fn name(&self) -> &str {
        SANDBOX
    }

    fn pay(&self, request: &ChargeRequest) -> GatewayOutcome {
        self.settings.outage().unwrap_or_else(|| SandboxSettings::approved("sandbox-charge", &request.idempotency_key))
    }

    fn refund(&self, request: &RefundRequest) -> GatewayOutcome {
        self.settings.refund(request, "sandbox-charge", "sandbox-charge-refund")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pay(card: Option<&str>) -> PaymentRequest {
        PaymentRequest {
            idempotency_key: "k1".into(),
            order_id: 1,
            amount: 100,
            card: card.map(|c| mask_card(c).unwrap()),
        }
    }

    #[test]
    fn approves_deterministically_and_declines_listed_cards() {
        let gw = SandboxPayment::default();
        let a = gw.approve(&pay(None));
        assert_eq!(a, gw.approve(&pay(Some("4111111111111111"))));
        assert!(matches!(a, GatewayOutcome::Approved { .. }));
        assert!(matches!(gw.approve(&pay(Some(DEFAULT_DECLINE_CARD))), GatewayOutcome::Declined { .. }));
    }

    #[test]
    fn latency_beyond_the_timeout_is_a_timeout() {
        let slow = SandboxSettings { latency_ms: 50, timeout_ms: Some(5), ..Default::default() };
        let gw = SandboxPayment::new(slow);
        assert!(matches!(gw.approve(&pay(None)), GatewayOutcome::Unavailable { .. }));
        let patient = SandboxSettings { latency_ms: 5, timeout_ms: Some(50), ..Default::default() };
        assert!(matches!(SandboxPayment::new(patient).approve(&pay(None)), GatewayOutcome::Approved { .. }));
    }

    #[test]
    fn it_gives_back_only_what_it_took() {
        let refund = |gateway_ref: &str| RefundRequest {
            idempotency_key: "k1-refund".into(),
            order_id: 1,
            gateway_ref: gateway_ref.into(),
            amount: 100,
            reason: "cancelled".into(),
        };
        let (payments, charges) = (SandboxPayment::default(), SandboxCharge::default());
        let GatewayOutcome::Approved { gateway_ref } = payments.approve(&pay(None)) else { panic!("approved") };
        assert!(matches!(payments.refund(&refund(&gateway_ref)), GatewayOutcome::Approved { .. }));
        let req =
            ChargeRequest { idempotency_key: "c".into(), order_id: 1, rider_id: 1, rider: "lee".into(), amount: 3000 };
        let GatewayOutcome::Approved { gateway_ref: paid } = charges.pay(&req) else { panic!("paid") };
        assert!(matches!(charges.refund(&refund(&paid)), GatewayOutcome::Approved { .. }));
        // Another gateway's reference, or the other kind's: nothing is given back.
        for (theirs, of_payments) in
            [("pay_8f2a", true), ("sandbox-payment", true), (paid.as_str(), true), ("x", false)]
        {
            let outcome = if of_payments { payments.refund(&refund(theirs)) } else { charges.refund(&refund(theirs)) };
            let GatewayOutcome::Declined { reason } = outcome else { panic!("{theirs}: {outcome:?}") };
            assert!(reason.contains("did not take") && reason.contains("config"), "{reason}");
        }
        assert!(matches!(charges.refund(&refund(&gateway_ref)), GatewayOutcome::Declined { .. }));
    }

    #[test]
    fn unavailable_switch() {
        let gw = SandboxCharge::new(SandboxSettings { unavailable: true, ..Default::default() });
        let req =
            ChargeRequest { idempotency_key: "c".into(), order_id: 1, rider_id: 1, rider: "lee".into(), amount: 3000 };
        assert!(matches!(gw.pay(&req), GatewayOutcome::NotReached { .. }));
    }
}
