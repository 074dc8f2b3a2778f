//! Catalogue commands: stores, menus, riders, and the store owner's inbox.

use crate::app::engine::{Engine, MenuPick};
use crate::domain::validate::{self, Invalid};
use crate::domain::view::OrderView;
use crate::domain::{Menu, MenuId, Rider, Store, StoreId, Won};
use crate::ports::storage::{Repo, Table};
use crate::{Error, Result};

impl Engine {
    /// Registers a store, open (`ezdelivery store add`).
    pub fn add_store(&self, name: &str, owner: Option<&str>, address: Option<&str>) -> Result<Store> {
        self.add_store_charging(name, owner, address, None)
    }

    /// Registers a store, open, with its rider's delivery charge when given
    /// (`ezdelivery store add --delivery-charge WON`, `POST /stores`), in one
    /// unit of work: a charge that is not valid registers nothing.
    pub fn add_store_charging(
        &self,
        name: &str,
        owner: Option<&str>,
        address: Option<&str>,
        delivery_charge: Option<Won>,
    ) -> Result<Store> {
        let _span = tracing::info_span!("add_store").entered();
        let delivery_charge = delivery_charge.map(validate::charge).transpose()?;
        self.write_command(|w| {
            let (mut store, event) = Store::register(w.repo.next_id(Table::Store)?, name, owner, address)?;
            if let Some(charge) = delivery_charge {
                store.delivery_charge = charge;
            }
            w.repo.save_store(&store)?;
            w.emit(event)?;
            Ok(store)
        })
    }

    /// Every store, by id (`ezdelivery store list`).
    pub fn stores(&self) -> Result<Vec<Store>> {
        self.read(|repo| repo.stores())
    }

    /// One store, or `not_found` (what a caller of the HTTP API may do to a
    /// store depends on its owner).
    pub fn store(&self, store: StoreId) -> Result<Store> {
        self.read(|repo| existing_store(repo, store))
    }

    /// Opens or closes a store (`ezdelivery store open|close`).
    pub fn set_store_open(&self, store: StoreId, open: bool) -> Result<Store> {
        let _span = tracing::info_span!("set_store_open", store, open).entered();
        self.write_command(|w| {
            let (store, event) = existing_store(w.repo, store)?.set_open(open);
            w.repo.save_store(&store)?;
            w.emit_opt(event)?;
            Ok(store)
        })
    }

    /// Sets what each delivery of `store` pays the rider.
    pub fn set_delivery_charge(&self, store: StoreId, charge: Won) -> Result<Store> {
        let _span = tracing::info_span!("set_delivery_charge", store, charge).entered();
        let charge = validate::charge(charge)?;
        self.write_command(|w| {
            let store = Store { delivery_charge: charge, ..existing_store(w.repo, store)? };
            w.repo.save_store(&store)?;
            Ok(store)
        })
    }

    /// The owner's inbox: the store's paid orders that are not finished,
    /// oldest first (`ezdelivery store orders`).
    pub fn store_inbox(&self, store: StoreId) -> Result<Vec<OrderView>> {
        self.read(|repo| {
            existing_store(repo, store)?;
            let mut views = Vec::new();
            for id in repo.store_inbox(store)? {
                views.extend(repo.view(id)?);
            }
            Ok(views)
        })
    }

    /// Adds a menu item to a store (`ezdelivery menu add`).
    pub fn add_menu(&self, store: StoreId, name: &str, price: Won) -> Result<Menu> {
        let _span = tracing::info_span!("add_menu", store, price).entered();
        self.write_command(|w| {
            // The values first: a bad price is the news whatever the store.
            let (menu, event) = Menu::add(w.repo.next_id(Table::Menu)?, store, name, price)?;
            existing_store(w.repo, store)?;
            if w.repo.menu_by_name(store, &menu.name)?.is_some() {
                return Err(Invalid(validate::menu_taken(store, &menu.name)).into());
            }
            w.repo.save_menu(&menu)?;
            w.emit(event)?;
            Ok(menu)
        })
    }

    /// The menus of one store, or of all stores (`ezdelivery menu list`).
    pub fn menus(&self, store: Option<StoreId>) -> Result<Vec<Menu>> {
        self.read(|repo| {
            if let Some(id) = store {
                existing_store(repo, id)?;
            }
            repo.menus(store)
        })
    }

    /// One menu, or `not_found`.
    pub fn menu(&self, menu: MenuId) -> Result<Menu> {
        self.read(|repo| repo.menu(menu)?.ok_or_else(|| Error::not_found(crate::Record::Menu, menu)))
    }

    /// Marks a menu sold out or available again (`ezdelivery menu soldout|available`).
    pub fn set_menu_available(&self, menu: MenuId, available: bool) -> Result<Menu> {
        let _span = tracing::info_span!("set_menu_available", menu, available).entered();
        self.write_command(|w| {
            let found = w.repo.menu(menu)?.ok_or_else(|| Error::not_found(crate::Record::Menu, menu))?;
            let (menu, event) = found.set_available(available);
            w.repo.save_menu(&menu)?;
            w.emit_opt(event)?;
            Ok(menu)
        })
    }

    /// Registers a rider (`ezdelivery rider add`). Names are unique so that
    /// `--rider NAME` is never ambiguous.
    pub fn add_rider(&self, name: &str) -> Result<Rider> {
        let _span = tracing::info_span!("add_rider").entered();
        self.write_command(|w| {
            let (rider, event) = Rider::register(w.repo.next_id(Table::Rider)?, name)?;
            if w.repo.rider_by_name(&rider.name)?.is_some() {
                return Err(Invalid(validate::rider_taken(&rider.name)).into());
            }
            w.repo.save_rider(&rider)?;
            w.emit(event)?;
            Ok(rider)
        })
    }

    /// Every rider, by id.
    pub fn riders(&self) -> Result<Vec<Rider>> {
        self.read(|repo| repo.riders())
    }

    /// The rider `rider` names, by id or exact name (a name that is also
    /// a number is tried as an id first), as `deliver start --rider` takes
    /// it; `not_found` when there is none.
    pub fn rider(&self, rider: &str) -> Result<Rider> {
        self.read(|repo| find_rider(repo, rider))
    }

    /// The rider named exactly `name` (a name that is a number too is not
    /// read as an id); `not_found` when there is none.
    pub fn rider_named(&self, name: &str) -> Result<Rider> {
        self.read(|repo| repo.rider_by_name(name)?.ok_or_else(|| Error::not_found(crate::Record::Rider, name)))
    }
}

/// The store `id`, or `not_found`.
pub(crate) fn existing_store(repo: &mut dyn Repo, id: StoreId) -> Result<Store> {
    repo.store(id)?.ok_or_else(|| Error::not_found(crate::Record::Store, id))
}

/// A rider by id or exact name, or `not_found`.
pub(crate) fn find_rider(repo: &mut dyn Repo, rider: &str) -> Result<Rider> {
    let rider = &validate::name("rider", rider)?;
    if let Ok(id) = rider.parse::<i64>() {
        if let Some(found) = repo.rider(id)? {
            return Ok(found);
        }
    }
    repo.rider_by_name(rider)?.ok_or_else(|| Error::not_found(crate::Record::Rider, rider))
}

/// The menu of `store` that `pick` names, or `not_found`.
pub(crate) fn find_menu(repo: &mut dyn Repo, store: StoreId, pick: &MenuPick) -> Result<Menu> {
    let (id, name) = match pick {
        MenuPick::IdOrName(text) => (text.parse::<i64>().ok(), Some(text)),
        MenuPick::Id(id) => (Some(*id), None),
        MenuPick::Name(name) => (None, Some(name)),
    };
    if let Some(id) = id {
        if let Some(found) = repo.menu(id)?.filter(|m| m.store_id == store) {
            return Ok(found);
        }
    }
    if let Some(name) = name {
        if let Some(found) = repo.menu_by_name(store, name)? {
            return Ok(found);
        }
    }
    Err(Error::NotFound {
        what: crate::Record::Menu,
        id: format!("`{}` of store {store}", validate::shown(&pick.to_string())),
        store: Some(store),
    })
}
