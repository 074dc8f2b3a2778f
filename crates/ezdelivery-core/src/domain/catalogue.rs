//! The catalogue: stores with their menus, and the riders who deliver.

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::event::Event;
use super::ids::{MenuId, RiderId, StoreId, Won};
use super::validate::{self, Invalid};

/// The delivery charge a store pays its rider per delivery unless it sets another.
pub const DEFAULT_DELIVERY_CHARGE: Won = 3_000;

/// A store: takes orders while open, keeps its review score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Store {
    /// Handed out by the storage, from 1: what the commands print and take.
    pub id: StoreId,
    /// Its name as customers see it.
    pub name: SmolStr,
    /// The owner, who receives a message for every new paid order.
    pub owner: SmolStr,
    /// Where it is (empty when none was given).
    pub address: SmolStr,
    /// Whether it takes orders now.
    pub open: bool,
    /// What each delivery pays the rider.
    pub delivery_charge: Won,
    /// How many reviews it has received.
    pub review_count: i64,
    /// The sum of their scores (the average is `review_sum / review_count`).
    pub review_sum: i64,
}

impl Store {
    /// Registers a store, open, with the default delivery charge.
    pub fn register(
        id: StoreId,
        name: &str,
        owner: Option<&str>,
        address: Option<&str>,
    ) -> Result<(Store, Event), Invalid> {
        let name = SmolStr::from(validate::name("store name", name)?);
        let owner = match owner {
            Some(o) => validate::name("owner", o)?.into(),
            None => name.clone(),
        };
        let address = validate::text("address", address.unwrap_or(""))?.into();
        let store = Store {
            id,
            name,
            owner,
            address,
            open: true,
            delivery_charge: DEFAULT_DELIVERY_CHARGE,
            review_count: 0,
            review_sum: 0,
        };
        let event = Event::StoreRegistered {
            store_id: id,
            name: String::from(store.name.as_str()),
            owner: String::from(store.owner.as_str()),
        };
        Ok((store, event))
    }

    /// Opens or closes the store. Doing what is already done is allowed and
    /// emits nothing, so scripts can run it without checking first.
    pub fn set_open(&self, open: bool) -> (Store, Option<Event>) {
        if self.open == open {
            return (self.clone(), None);
        }
        let store = Store { open, ..self.clone() };
        let event =
            if open { Event::StoreOpened { store_id: self.id } } else { Event::StoreClosed { store_id: self.id } };
        (store, Some(event))
    }

    /// Counts one more review of `score`.
    pub fn add_review(&self, score: u8) -> Store {
        Store { review_count: self.review_count + 1, review_sum: self.review_sum + i64::from(score), ..self.clone() }
    }

    /// The average review score, or `None` before the first review.
    pub fn average_score(&self) -> Option<f64> {
        (self.review_count > 0).then(|| self.review_sum as f64 / self.review_count as f64)
    }
}

/// One item on a store's menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Menu {
    /// Handed out by the storage, from 1: a menu is picked by it or by its name.
    pub id: MenuId,
    /// The store it belongs to.
    pub store_id: StoreId,
    /// Its name, unique within the store.
    pub name: SmolStr,
    /// Its price, in whole won (at least 1); an order keeps the price it
    /// was placed at.
    pub price: Won,
    /// False while sold out: it cannot be ordered until it is available
    /// again.
    pub available: bool,
}

impl Menu {
    /// Adds a menu item to a store, available.
    pub fn add(id: MenuId, store_id: StoreId, name: &str, price: Won) -> Result<(Menu, Event), Invalid> {
        let menu = Menu {
            id,
            store_id,
            name: validate::name("menu name", name)?.into(),
            price: validate::price(price)?,
            available: true,
        };
        let event =
            Event::MenuAdded { store_id, menu_id: id, name: String::from(menu.name.as_str()), price: menu.price };
        Ok((menu, event))
    }

    /// Marks the menu sold out (`false`) or available again (`true`);
    /// idempotent like [`Store::set_open`].
    pub fn set_available(&self, available: bool) -> (Menu, Option<Event>) {
        if self.available == available {
            return (self.clone(), None);
        }
        let menu = Menu { available, ..self.clone() };
        let (store_id, menu_id) = (self.store_id, self.id);
        let event = if available {
            Event::MenuAvailable { store_id, menu_id }
        } else {
            Event::MenuSoldOut { store_id, menu_id }
        };
        (menu, Some(event))
    }
}

/// A rider who delivers orders and is paid a delivery charge for each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rider {
    /// Handed out by the storage, from 1: a rider is named by it or by their name.
    pub id: RiderId,
    /// The rider's name, unique among riders (`deliver --rider NAME`).
    pub name: SmolStr,
}

impl Rider {
    /// Registers a rider.
    pub fn register(id: RiderId, name: &str) -> Result<(Rider, Event), Invalid> {
        let rider = Rider { id, name: validate::name("rider name", name)?.into() };
        let event = Event::RiderRegistered { rider_id: id, name: String::from(rider.name.as_str()) };
        Ok((rider, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_registers_open_with_default_charge_and_owner() {
        let (s, e) = Store::register(1, "BBQ", None, None).unwrap();
        assert!(s.open);
        assert_eq!(s.delivery_charge, DEFAULT_DELIVERY_CHARGE);
        assert_eq!(s.owner, "BBQ");
        assert_eq!(e.type_name(), "StoreRegistered");
        assert!(Store::register(1, "  ", None, None).is_err());
    }

    #[test]
    fn store_open_close_is_idempotent() {
        let (s, _) = Store::register(1, "BBQ", Some("park"), None).unwrap();
        let (closed, e) = s.set_open(false);
        assert!(!closed.open);
        assert_eq!(e, Some(Event::StoreClosed { store_id: 1 }));
        assert_eq!(closed.set_open(false).1, None);
        let (open, e) = closed.set_open(true);
        assert!(open.open);
        assert_eq!(e, Some(Event::StoreOpened { store_id: 1 }));
        assert_eq!(open.set_open(true).1, None);
    }

    #[test]
    fn reviews_average() {
        let (s, _) = Store::register(1, "BBQ", None, None).unwrap();
        assert_eq!(s.average_score(), None);
        let s = s.add_review(5).add_review(2);
        assert_eq!(s.review_count, 2);
        assert_eq!(s.average_score(), Some(3.5));
    }

    #[test]
    fn menu_validates_price_and_toggles() {
        assert!(Menu::add(1, 1, "치킨", 0).is_err());
        assert!(Menu::add(1, 1, "치킨", -5).is_err());
        assert!(Menu::add(1, 1, "치킨", validate::MAX_PRICE + 1).is_err());
        let (m, _) = Menu::add(1, 1, "치킨", 18_000).unwrap();
        let (sold, e) = m.set_available(false);
        assert!(!sold.available);
        assert_eq!(e, Some(Event::MenuSoldOut { store_id: 1, menu_id: 1 }));
        assert_eq!(sold.set_available(false).1, None);
        assert_eq!(sold.set_available(true).1, Some(Event::MenuAvailable { store_id: 1, menu_id: 1 }));
    }

    #[test]
    fn rider_needs_a_name() {
        assert!(Rider::register(1, "").is_err());
        assert_eq!(Rider::register(1, "lee").unwrap().0.name, "lee");
    }
}
