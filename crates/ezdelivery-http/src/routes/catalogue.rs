//! Stores, menus and riders: `store …`, `menu …`, `rider add`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ezdelivery_core::json::{MenuJson, MenuList, OrderList, RiderJson, StoreJson, StoreList};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{Errors, IdempotencyKey};
use crate::auth::{own_name, require_role, store_access, Caller};
use crate::body::{Id, JsonBody, PathParam, QueryParams};
use crate::problem::Problem;
use crate::state::AppState;
use crate::tokens::Role;

/// `POST /stores`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewStore {
    /// The store's name.
    name: String,
    /// Its owner's name; an owner's own name when left out.
    #[serde(default)]
    owner: Option<String>,
    /// Its address.
    #[serde(default)]
    address: Option<String>,
    /// The rider's delivery charge for its orders, in won (the default
    /// when left out).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100_000_000)]
    delivery_charge: Option<i64>,
}

/// Registers a store, open (`store add`). Owners register their own stores.
#[utoipa::path(post, path = "/stores", tag = "catalogue", request_body = NewStore,
    params(IdempotencyKey),
    responses((status = 201, description = "the store", body = StoreJson), Errors),
    security(("bearer" = [])))]
pub(crate) async fn add_store(
    State(state): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<NewStore>,
) -> Result<(StatusCode, Json<StoreJson>), Problem> {
    require_role(&caller, &[Role::Owner], "register a store")?;
    let owner = own_name(&caller, body.owner.as_deref(), "register a store")?;
    let store = state
        .engine
        .run(move |e| {
            Ok(e.add_store_charging(&body.name, Some(&owner), body.address.as_deref(), body.delivery_charge)?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(StoreJson::from(&store))))
}

/// Every store (`store list`).
#[utoipa::path(get, path = "/stores", tag = "catalogue",
    responses((status = 200, description = "every store", body = StoreList), Errors),
    security(("bearer" = [])))]
pub(crate) async fn stores(State(state): State<AppState>, Caller(_): Caller) -> Result<Json<StoreList>, Problem> {
    let stores = state.engine.run(|e| Ok(e.stores()?)).await?;
    Ok(Json(StoreList::from(stores.as_slice())))
}

async fn set_open(state: AppState, caller: Caller, store: i64, open: bool) -> Result<Json<StoreJson>, Problem> {
    let store = state
        .engine
        .run(move |e| {
            store_access(e, &caller.0, store)?;
            Ok(e.set_store_open(store, open)?)
        })
        .await?;
    Ok(Json(StoreJson::from(&store)))
}

/// Opens a store (`store open`): its owner or admin.
#[utoipa::path(post, path = "/stores/{id}/open", tag = "catalogue",
    params(("id" = i64, Path, description = "the store", example = 1),
           IdempotencyKey),
    responses((status = 200, description = "the store", body = StoreJson), Errors),
    security(("bearer" = [])))]
pub(crate) async fn open_store(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(Id(id)): PathParam<Id>,
) -> Result<Json<StoreJson>, Problem> {
    set_open(state, caller, id, true).await
}

/// Closes a store (`store close`): its owner or admin.
#[utoipa::path(post, path = "/stores/{id}/close", tag = "catalogue",
    params(("id" = i64, Path, description = "the store", example = 1),
           IdempotencyKey),
    responses((status = 200, description = "the store", body = StoreJson), Errors),
    security(("bearer" = [])))]
pub(crate) async fn close_store(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(Id(id)): PathParam<Id>,
) -> Result<Json<StoreJson>, Problem> {
    set_open(state, caller, id, false).await
}

/// The owner's inbox: paid orders waiting, and in progress (`store orders`).
#[utoipa::path(get, path = "/stores/{id}/orders", tag = "catalogue",
    params(("id" = i64, Path, description = "the store", example = 1)),
    responses((status = 200, description = "the store's open orders", body = OrderList), Errors),
    security(("bearer" = [])))]
pub(crate) async fn store_orders(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParam(Id(id)): PathParam<Id>,
) -> Result<Json<OrderList>, Problem> {
    let orders = state
        .engine
        .run(move |e| {
            store_access(e, &caller, id)?;
            Ok(e.store_inbox(id)?)
        })
        .await?;
    Ok(Json(OrderList { orders }))
}

/// `POST /stores/{id}/menus`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewMenu {
    /// The menu's name, unique in its store.
    name: String,
    /// Its price in whole won.
    #[schema(minimum = 1, maximum = 100_000_000)]
    price: i64,
}

/// Adds a menu to a store (`menu add`): its owner or admin.
#[utoipa::path(post, path = "/stores/{id}/menus", tag = "catalogue", request_body = NewMenu,
    params(("id" = i64, Path, description = "the store", example = 1),
           IdempotencyKey),
    responses((status = 201, description = "the menu", body = MenuJson), Errors),
    security(("bearer" = [])))]
pub(crate) async fn add_menu(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParam(Id(id)): PathParam<Id>,
    JsonBody(body): JsonBody<NewMenu>,
) -> Result<(StatusCode, Json<MenuJson>), Problem> {
    let menu = state
        .engine
        .run(move |e| {
            store_access(e, &caller, id)?;
            Ok(e.add_menu(id, &body.name, body.price)?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(MenuJson::from(&menu))))
}

/// `GET /menus?store=`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MenuQuery {
    /// Only this store's menus.
    #[param(value_type = Option<i64>, minimum = 1)]
    store: Option<Id>,
}

/// The menus of one store, or of all (`menu list`).
#[utoipa::path(get, path = "/menus", tag = "catalogue", params(MenuQuery),
    responses((status = 200, description = "the menus", body = MenuList), Errors),
    security(("bearer" = [])))]
pub(crate) async fn menus(
    State(state): State<AppState>,
    Caller(_): Caller,
    QueryParams(query): QueryParams<MenuQuery>,
) -> Result<Json<MenuList>, Problem> {
    let menus = state.engine.run(move |e| Ok(e.menus(query.store.map(|Id(id)| id))?)).await?;
    Ok(Json(MenuList::from(menus.as_slice())))
}

async fn set_available(state: AppState, caller: Caller, menu: i64, available: bool) -> Result<Json<MenuJson>, Problem> {
    let menu = state
        .engine
        .run(move |e| {
            store_access(e, &caller.0, e.menu(menu)?.store_id)?;
            Ok(e.set_menu_available(menu, available)?)
        })
        .await?;
    Ok(Json(MenuJson::from(&menu)))
}

/// Marks a menu sold out (`menu soldout`): its store's owner or admin.
#[utoipa::path(post, path = "/menus/{id}/soldout", tag = "catalogue",
    params(("id" = i64, Path, description = "the menu", example = 1),
           IdempotencyKey),
    responses((status = 200, description = "the menu", body = MenuJson), Errors),
    security(("bearer" = [])))]
pub(crate) async fn menu_soldout(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(Id(id)): PathParam<Id>,
) -> Result<Json<MenuJson>, Problem> {
    set_available(state, caller, id, false).await
}

/// Offers a menu again (`menu available`): its store's owner or admin.
#[utoipa::path(post, path = "/menus/{id}/available", tag = "catalogue",
    params(("id" = i64, Path, description = "the menu", example = 1),
           IdempotencyKey),
    responses((status = 200, description = "the menu", body = MenuJson), Errors),
    security(("bearer" = [])))]
pub(crate) async fn menu_available(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(Id(id)): PathParam<Id>,
) -> Result<Json<MenuJson>, Problem> {
    set_available(state, caller, id, true).await
}

/// `POST /riders`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewRider {
    /// The rider's name, unique; a rider's own name when left out.
    #[serde(default)]
    name: Option<String>,
}

/// Registers a rider (`rider add`): admin, or a rider registering themself.
#[utoipa::path(post, path = "/riders", tag = "catalogue", request_body = Option<NewRider>,
    params(IdempotencyKey),
    responses((status = 201, description = "the rider", body = RiderJson), Errors),
    security(("bearer" = [])))]
pub(crate) async fn add_rider(
    State(state): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<NewRider>,
) -> Result<(StatusCode, Json<RiderJson>), Problem> {
    require_role(&caller, &[Role::Rider], "register a rider")?;
    let name = own_name(&caller, body.name.as_deref(), "register a rider")?;
    let rider = state.engine.run(move |e| Ok(e.add_rider(&name)?)).await?;
    Ok((StatusCode::CREATED, Json(RiderJson::from(&rider))))
}
