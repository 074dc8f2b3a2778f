//! Who is calling ([`Caller`], from the bearer token) and what they may do
//! to an order or a store. Each role is limited to its own resources: a
//! customer to their orders, an owner to the orders and menus of their
//! stores, a rider to the deliveries assigned to them (or unassigned ones,
//! to start them), admin to everything. Another's resource is 403; one that
//! does not exist is 404.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use ezdelivery_core::{Engine, OrderView};

use crate::problem::Problem;
use crate::state::AppState;
use crate::tokens::{Principal, Role};

/// The authenticated caller of a request (401 without a known token).
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, Problem> {
        caller_of(parts, state).map(Caller)
    }
}

/// The principal of the bearer token in `parts`, if the tokens file knows
/// it; else the 401 to answer. Two `Authorization` headers are no caller:
/// which of them is meant is not the server's to guess (the first won,
/// whoever it named).
pub(crate) fn caller_of(parts: &Parts, state: &AppState) -> Result<Principal, Problem> {
    let mut headers = parts.headers.get_all(AUTHORIZATION).iter();
    let header = headers.next().ok_or_else(Problem::unauthorized)?;
    if headers.next().is_some() {
        return Err(Problem::unauthorized_because(
            "two Authorization headers: send one (a proxy may be adding its own)",
        ));
    }
    let bearer = header.to_str().ok().and_then(|h| h.split_once(' ')).filter(|(s, _)| s.eq_ignore_ascii_case("bearer"));
    let token = bearer.ok_or_else(Problem::unauthorized)?.1;
    state.tokens.authenticate(token.trim()).cloned().ok_or_else(Problem::unauthorized)
}

/// What a caller wants to do to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderAction {
    /// See its view and its events.
    Read,
    /// Pay for it.
    Pay,
    /// Accept, finish or reject the cooking.
    Cook,
    /// Depart with it.
    StartDelivery,
    /// Hand it over.
    CompleteDelivery,
    /// Cancel it.
    Cancel,
    /// Review it.
    Review,
}

/// How a caller stands to one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Party {
    Admin,
    Customer,
    StoreOwner,
    AssignedRider,
    FreeRider,
    Stranger,
}

impl OrderAction {
    fn allows(self, party: Party) -> bool {
        use Party::*;
        match self {
            OrderAction::Read => party != Stranger,
            OrderAction::Pay | OrderAction::Review => matches!(party, Admin | Customer),
            OrderAction::Cook => matches!(party, Admin | StoreOwner),
            OrderAction::StartDelivery => matches!(party, Admin | AssignedRider | FreeRider),
            OrderAction::CompleteDelivery => matches!(party, Admin | AssignedRider),
            OrderAction::Cancel => matches!(party, Admin | Customer | StoreOwner),
        }
    }

    fn verb(self) -> &'static str {
        match self {
            OrderAction::Read => "see",
            OrderAction::Pay => "pay for",
            OrderAction::Cook => "cook",
            OrderAction::StartDelivery => "start the delivery of",
            OrderAction::CompleteDelivery => "complete the delivery of",
            OrderAction::Cancel => "cancel",
            OrderAction::Review => "review",
        }
    }
}

/// Checks that `caller` may do `action` to order `order` (404 when there
/// is no such order, 403 when it is another's); returns its view. A store
/// sees an order once it is paid (its kitchen ticket is made then): until
/// then it is the customer's alone, and its store's owner is a stranger
/// to it.
pub(crate) fn order_access(
    engine: &Engine,
    caller: &Principal,
    order: i64,
    action: OrderAction,
) -> Result<OrderView, Problem> {
    let view = engine.status(order)?;
    let party = match caller.role {
        Role::Admin => Party::Admin,
        Role::Customer if *view.customer == *caller.name => Party::Customer,
        Role::Owner if engine.store(view.store_id)?.owner == caller.name => {
            if view.kitchen.is_none() {
                return Err(Problem::forbidden(format!(
                    "order {order} is not paid: store {} sees it once it is",
                    view.store_id
                )));
            }
            Party::StoreOwner
        }
        Role::Rider => match &view.delivery {
            Some(d) if d.rider.as_deref() == Some(caller.name.as_str()) => Party::AssignedRider,
            Some(d) if d.rider.is_none() => Party::FreeRider,
            _ => Party::Stranger,
        },
        _ => Party::Stranger,
    };
    if action.allows(party) {
        Ok(view)
    } else {
        Err(Problem::forbidden(format!(
            "{} {} may not {} order {order}",
            caller.role.as_str(),
            caller.name,
            action.verb()
        )))
    }
}

/// Checks that `caller` runs store `store` (its owner, or admin); 404 when
/// there is no such store.
pub(crate) fn store_access(engine: &Engine, caller: &Principal, store: i64) -> Result<(), Problem> {
    let found = engine.store(store)?;
    match caller.role {
        Role::Admin => Ok(()),
        Role::Owner if found.owner == caller.name => Ok(()),
        _ => Err(Problem::forbidden(format!("{} {} does not run store {store}", caller.role.as_str(), caller.name))),
    }
}

/// Refuses unless `caller` has one of `roles` (`what` says what was asked).
pub(crate) fn require_role(caller: &Principal, roles: &[Role], what: &str) -> Result<(), Problem> {
    if caller.role == Role::Admin || roles.contains(&caller.role) {
        Ok(())
    } else {
        Err(Problem::forbidden(format!("{} {} may not {what}", caller.role.as_str(), caller.name)))
    }
}

/// The name a non-admin caller acts as: `given` when it is theirs or
/// absent, 403 when it names someone else. An admin may name anyone.
pub(crate) fn own_name(caller: &Principal, given: Option<&str>, what: &str) -> Result<String, Problem> {
    match given {
        Some(name) if caller.role == Role::Admin || name == caller.name => Ok(name.to_string()),
        None => Ok(caller.name.clone()),
        Some(name) => Err(not_as(caller, name, what)),
    }
}

/// 403: `caller` may not `what` as `name`.
pub(crate) fn not_as(caller: &Principal, name: &str, what: &str) -> Problem {
    Problem::forbidden(format!("{} {} may not {what} as {name}", caller.role.as_str(), caller.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_is_allowed_to_exactly_its_parties() {
        use OrderAction as A;
        use Party::*;
        let parties = [Admin, Customer, StoreOwner, AssignedRider, FreeRider, Stranger];
        let table: [(A, &[Party]); 7] = [
            (A::Read, &[Admin, Customer, StoreOwner, AssignedRider, FreeRider]),
            (A::Pay, &[Admin, Customer]),
            (A::Review, &[Admin, Customer]),
            (A::Cook, &[Admin, StoreOwner]),
            (A::StartDelivery, &[Admin, AssignedRider, FreeRider]),
            (A::CompleteDelivery, &[Admin, AssignedRider]),
            (A::Cancel, &[Admin, Customer, StoreOwner]),
        ];
        for (action, allowed) in table {
            for party in parties {
                assert_eq!(action.allows(party), allowed.contains(&party), "{action:?} by {party:?}");
            }
        }
    }

    #[test]
    fn a_caller_acts_under_their_own_name_unless_admin() {
        let kim = Principal { role: Role::Customer, name: "kim".into() };
        assert_eq!(own_name(&kim, None, "order").unwrap(), "kim");
        assert_eq!(own_name(&kim, Some("kim"), "order").unwrap(), "kim");
        assert_eq!(own_name(&kim, Some("lee"), "order").unwrap_err().status, 403);
        let admin = Principal { role: Role::Admin, name: "ops".into() };
        assert_eq!(own_name(&admin, Some("lee"), "order").unwrap(), "lee");
    }
}
