//! Orders through their lifecycle: `order`, `status`, `pay`, `cook …`,
//! `deliver …`, `cancel`, `review`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ezdelivery_core::domain::Rider;
use ezdelivery_core::json::{OrderList, ReviewJson};
use ezdelivery_core::{Engine, Error, ItemPick, NewOrder, OrderView};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Errors, IdempotencyKey};
use crate::auth::{not_as, order_access, own_name, require_role, Caller, OrderAction};
use crate::body::{Id, JsonBody, PathParam};
use crate::problem::Problem;
use crate::state::AppState;
use crate::tokens::{Principal, Role};

/// A menu (within the order's store) or a rider, by id or by exact name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum IdOrName {
    /// The id.
    Id(i64),
    /// The exact name.
    Name(String),
}

/// `id`, or invalid input when it is below 1, as everywhere.
fn positive(id: i64) -> Result<i64, Problem> {
    if id < 1 {
        return Err(Problem::invalid(format!("an id must be 1 or more, got {id}")));
    }
    Ok(id)
}

/// One line of `POST /orders`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ItemBody {
    /// The menu, by id or name.
    menu: IdOrName,
    /// How many; 1 when left out.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 999)]
    qty: Option<u32>,
}

/// `POST /orders`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewOrderBody {
    /// The store ordered from.
    #[schema(value_type = i64, minimum = 1)]
    store_id: Id,
    /// Who orders; a customer's own name when left out.
    #[serde(default)]
    customer: Option<String>,
    /// What is ordered.
    items: Vec<ItemBody>,
    /// Where to deliver.
    #[serde(default)]
    address: Option<String>,
    /// Pay at once.
    #[serde(default)]
    pay: bool,
    /// The card to pay with (with `pay`).
    #[serde(default)]
    card: Option<String>,
}

/// Places an order, paid at once with `pay` (`order`): a customer for
/// themself, or admin. A declined card is 402 and a payment gateway that
/// is down 503; in both cases the order is kept (`order_id` in the problem).
#[utoipa::path(post, path = "/orders", tag = "orders", request_body = NewOrderBody, params(IdempotencyKey),
    responses((status = 201, description = "the order's view", body = OrderView), Errors),
    security(("bearer" = [])))]
pub(crate) async fn place_order(
    State(state): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<NewOrderBody>,
) -> Result<(StatusCode, Json<OrderView>), Problem> {
    require_role(&caller, &[Role::Customer], "place an order")?;
    if body.card.is_some() && !body.pay {
        // As the CLI refuses `--card` without `--pay`: a card sent alone
        // would be dropped, and the order left unpaid without a word.
        return Err(Problem::invalid(
            "`card` pays at once: send it with \"pay\": true, or pay later with POST /orders/{id}/payments",
        ));
    }
    let customer = own_name(&caller, body.customer.as_deref(), "place an order")?;
    let picks = body
        .items
        .iter()
        .map(|i| {
            let qty = i.qty.unwrap_or(1);
            // JSON tells a number from a string: a menu named "2" is not
            // menu 2, as it would be to the CLI.
            Ok(match &i.menu {
                IdOrName::Id(id) => ItemPick::by_id(positive(*id)?, qty),
                IdOrName::Name(name) => ItemPick::by_name(name.clone(), qty),
            })
        })
        .collect::<Result<Vec<ItemPick>, Problem>>()?;
    let view = state
        .engine
        .run(move |e| {
            let mut new = NewOrder::new(body.store_id.0, &customer, &picks);
            if let Some(address) = &body.address {
                new = new.deliver_to(address);
            }
            if body.pay {
                new = new.pay_now(body.card.as_deref());
            }
            Ok(e.place_order(new)?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The mypage view of one order, with its timeline (`status ORDER`).
#[utoipa::path(get, path = "/orders/{id}", tag = "orders", params(("id" = i64, Path, description = "the order", example = 1)),
    responses((status = 200, description = "the order's view", body = OrderView), Errors),
    security(("bearer" = [])))]
pub(crate) async fn order(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParam(Id(id)): PathParam<Id>,
) -> Result<Json<OrderView>, Problem> {
    let view = state.engine.run(move |e| order_access(e, &caller, id, OrderAction::Read)).await?;
    Ok(Json(view))
}

/// Mypage: every order of a customer (`status --customer`): that customer, or admin.
#[utoipa::path(get, path = "/customers/{name}/orders", tag = "orders",
    params(("name" = String, Path, description = "the customer", example = "kim")),
    responses((status = 200, description = "the customer's orders", body = OrderList), Errors),
    security(("bearer" = [])))]
pub(crate) async fn customer_orders(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParam(name): PathParam<String>,
) -> Result<Json<OrderList>, Problem> {
    require_role(&caller, &[Role::Customer], "see a customer's orders")?;
    let name = own_name(&caller, Some(&name), "see the orders of a customer")?;
    let orders = state.engine.run(move |e| Ok(e.customer_orders(&name)?)).await?;
    Ok(Json(OrderList { orders }))
}

/// Runs `act` on order `id` once `caller` is found to be allowed `action` on it.
async fn act(
    state: AppState,
    caller: Principal,
    id: i64,
    action: OrderAction,
    act: impl FnOnce(&Engine) -> Result<OrderView, Problem> + Send + 'static,
) -> Result<Json<OrderView>, Problem> {
    let view = state
        .engine
        .run(move |e| {
            order_access(e, &caller, id, action)?;
            act(e)
        })
        .await?;
    Ok(Json(view))
}

/// `POST /orders/{id}/payments`
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PaymentBody {
    /// The card to pay with.
    #[serde(default)]
    card: Option<String>,
}

/// Pays for an order (`pay`): its customer, or admin.
#[utoipa::path(post, path = "/orders/{id}/payments", tag = "orders", request_body = Option<PaymentBody>,
    params(("id" = i64, Path, description = "the order", example = 1), IdempotencyKey),
    responses((status = 200, description = "the order's view", body = OrderView), Errors),
    security(("bearer" = [])))]
pub(crate) async fn pay(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParam(Id(id)): PathParam<Id>,
    JsonBody(body): JsonBody<PaymentBody>,
) -> Result<Json<OrderView>, Problem> {
    act(state, caller, id, OrderAction::Pay, move |e| Ok(e.pay(id, body.card.as_deref())?)).await
}

/// Accepts an order and starts cooking (`cook start`): the store's owner, or admin.
#[utoipa::path(post, path = "/orders/{id}/cook/start", tag = "orders",
    params(("id" = i64, Path, description = "the order", example = 1), IdempotencyKey),
    responses((status = 200, description = "the order's view", body = OrderView), Errors),
    security(("bearer" = [])))]
pub(crate) async fn cook_start(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParam(Id(id)): PathParam<Id>,
) -> Result<Json<OrderView>, Problem> {
    act(state, caller, id, OrderAction::Cook, move |e| Ok(e.start_cooking(id)?)).await
}

/// The food is cooked (`cook finish`): the store's owner, or admin.
#[utoipa::path(post, path = "/orders/{id}/cook/finish", tag = "orders",
    params(("id" = i64, Path, description = "the order", example = 1), IdempotencyKey),
    responses((status = 200, description = "the order's view", body = OrderView), Errors),
    security(("bearer" = [])))]
pub(crate) async fn cook_finish(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParam(Id(id)): PathParam<Id>,
) -> Result<Json<OrderView>, Problem> {
    act(state, caller, id, OrderAction::Cook, move |e| Ok(e.finish_cooking(id)?)).await
}

/// `POST /orders/{id}/cook/reject` and `/cancel`
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReasonBody {
    /// Why, for the customer.
    #[serde(default)]
    reason: Option<String>,
}

/// Rejects an order; its payment is refunded (`cook reject`): the store's owner, or admin.
#[utoipa::path(post, path = "/orders/{id}/cook/reject", tag = "orders", request_body = Option<ReasonBody>,
    params(("id" = i64, Path, description = "the order", example = 1), IdempotencyKey),
    responses((status = 200, description = "the order's view", body = OrderView), Errors),
    security(("bearer" = [])))]
pub(crate) async fn cook_reject(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParam(Id(id)): PathParam<Id>,
    JsonBody(body): JsonBody<ReasonBody>,
) -> Result<Json<OrderView>, Problem> {
    let reason = body.reason.unwrap_or_default();
    act(state, caller, id, OrderAction::Cook, move |e| Ok(e.reject(id, &reason)?)).await
}

/// `POST /orders/{id}/delivery/start`
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RiderBody {
    /// The rider, by id or name; the rider calling when left out (admin:
    /// the delivery's rider).
    #[serde(default)]
    rider: Option<IdOrName>,
}

/// The rider departs (`deliver start`): the assigned rider, any rider when
/// none is assigned, or admin.
#[utoipa::path(post, path = "/orders/{id}/delivery/start", tag = "orders", request_body = Option<RiderBody>,
    params(("id" = i64, Path, description = "the order", example = 1), IdempotencyKey),
    responses((status = 200, description = "the order's view", body = OrderView), Errors),
    security(("bearer" = [])))]
pub(crate) async fn delivery_start(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParam(Id(id)): PathParam<Id>,
    JsonBody(body): JsonBody<RiderBody>,
) -> Result<Json<OrderView>, Problem> {
    if let Some(IdOrName::Id(id)) = body.rider {
        positive(id)?; // for riders too, who are then found by `own_rider`
    }
    let me = caller.clone();
    let rider = state
        .engine
        .run(move |e| match (me.role, body.rider) {
            (Role::Admin, None) => Ok(None),
            (Role::Admin, Some(given)) => rider_id(e, given).map(Some),
            (_, given) => own_rider(e, &me, given).map(Some),
        })
        .await?
        .map(|id| id.to_string());
    act(state, caller, id, OrderAction::StartDelivery, move |e| Ok(e.start_delivery(id, rider.as_deref())?)).await
}

/// The id of the rider `given` names: a number is an id, a string an
/// exact name (a rider named "1" is not rider 1, as JSON tells them apart);
/// 404 when there is none.
fn rider_id(e: &Engine, given: IdOrName) -> Result<i64, Problem> {
    match given {
        IdOrName::Name(name) => Ok(e.rider_named(&name)?.id),
        // `Engine::rider` reads a number as an id first, then as a name:
        // a rider named "7" found for 7 is not rider 7.
        IdOrName::Id(id) => match e.rider(&id.to_string()) {
            Ok(rider) if rider.id == id => Ok(id),
            Ok(_) => Err(Error::not_found(ezdelivery_core::Record::Rider, id).into()),
            Err(e) => Err(e.into()),
        },
    }
}

/// The id of the rider `caller` is, found by their exact name (a rider
/// named "1" is not rider 1), when `given` (the body's `rider`) names no
/// one else: an id must be theirs, a name theirs. 403 otherwise, or when
/// the caller is no rider at all.
fn own_rider(e: &Engine, caller: &Principal, given: Option<IdOrName>) -> Result<i64, Problem> {
    let named = match &given {
        Some(IdOrName::Id(id)) => id.to_string(),
        Some(IdOrName::Name(name)) => name.clone(),
        None => caller.name.clone(),
    };
    let refused = || not_as(caller, &named, "deliver");
    let found = |rider: Result<Rider, Error>| match rider {
        Err(Error::NotFound { .. } | Error::Invalid(_)) => Err(refused()),
        other => Ok(other?),
    };
    let own = match e.rider_named(&caller.name) {
        // A rider's token for a name no rider has yet: say how to become one.
        Err(Error::NotFound { .. }) if caller.role == Role::Rider => {
            return Err(Problem::forbidden(format!(
                "rider {} is not registered as a rider yet: register with POST /riders, then start the delivery",
                caller.name
            )))
        }
        rider => found(rider)?,
    };
    let theirs = match given {
        None => true,
        Some(IdOrName::Id(id)) => id == own.id,
        Some(IdOrName::Name(name)) => name == own.name,
    };
    if !theirs {
        return Err(refused());
    }
    Ok(own.id)
}

/// The food is handed over (`deliver complete`): the assigned rider, or admin.
#[utoipa::path(post, path = "/orders/{id}/delivery/complete", tag = "orders",
    params(("id" = i64, Path, description = "the order", example = 1), IdempotencyKey),
    responses((status = 200, description = "the order's view", body = OrderView), Errors),
    security(("bearer" = [])))]
pub(crate) async fn delivery_complete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParam(Id(id)): PathParam<Id>,
) -> Result<Json<OrderView>, Problem> {
    act(state, caller, id, OrderAction::CompleteDelivery, move |e| Ok(e.complete_delivery(id)?)).await
}

/// Cancels an order, refunding what was paid (`cancel`): its customer, its
/// store's owner, or admin.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", request_body = Option<ReasonBody>,
    params(("id" = i64, Path, description = "the order", example = 1), IdempotencyKey),
    responses((status = 200, description = "the order's view", body = OrderView), Errors),
    security(("bearer" = [])))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParam(Id(id)): PathParam<Id>,
    JsonBody(body): JsonBody<ReasonBody>,
) -> Result<Json<OrderView>, Problem> {
    let reason = body.reason.unwrap_or_default();
    act(state, caller, id, OrderAction::Cancel, move |e| Ok(e.cancel(id, &reason)?)).await
}

/// `POST /orders/{id}/review`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReviewBody {
    /// From 1 (worst) to 5 (best).
    #[schema(minimum = 1, maximum = 5)]
    score: u8,
    /// What the customer says.
    #[serde(default)]
    text: Option<String>,
}

/// Reviews a delivered order, once (`review`): its customer, or admin.
#[utoipa::path(post, path = "/orders/{id}/review", tag = "orders", request_body = ReviewBody,
    params(("id" = i64, Path, description = "the order", example = 1), IdempotencyKey),
    responses((status = 201, description = "the review", body = ReviewJson), Errors),
    security(("bearer" = [])))]
pub(crate) async fn review(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParam(Id(id)): PathParam<Id>,
    JsonBody(body): JsonBody<ReviewBody>,
) -> Result<(StatusCode, Json<ReviewJson>), Problem> {
    let review = state
        .engine
        .run(move |e| {
            order_access(e, &caller, id, OrderAction::Review)?;
            Ok(e.review(id, body.score, body.text.as_deref().unwrap_or_default())?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(ReviewJson::from(&review))))
}
