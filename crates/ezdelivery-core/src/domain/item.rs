//! One line of an order, as the order and its `OrderPlaced` event carry it.

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::ids::{MenuId, Won};

/// One line of an order: a menu at the price it had when ordered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderItem {
    /// The menu item ordered (its name and price may change later; this
    /// line keeps them as they were).
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub menu_id: MenuId,
    /// Its name when ordered.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: SmolStr,
    /// Its price when ordered, in whole won, for one.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub unit_price: Won,
    /// How many of it, 1 to 999 ([`MAX_QTY`](crate::domain::validate::MAX_QTY)).
    pub qty: u32,
}
