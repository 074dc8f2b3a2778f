//! One small function per command (or group of commands): each checks what
//! is left to check, calls the engine, and hands the result to [`render`]
//! for its `--json` object and its text. [`crate::execute`] picks the function.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ezdelivery_core::domain::validate::Invalid;
use ezdelivery_core::ports::storage::StoredEvent;
use ezdelivery_core::ports::{Clock, SystemClock};
use ezdelivery_core::{Engine, Error, ItemPick, NewOrder, Result};

use crate::args::{
    BreakerCommand, CookCommand, DeliverCommand, EventFormat, MenuCommand, OrderArgs, ProjectionCommand, RiderCommand,
    StoreCommand,
};
use crate::render::{self, Output};
use crate::{output_error, print_line, Context, Printed};

/// `store add | list | open | close | orders`
pub fn store(engine: &Engine, command: &StoreCommand) -> Result<Output> {
    Ok(match command {
        StoreCommand::Add { name, owner, address, delivery_charge } => {
            let store = engine.add_store_charging(name, owner.as_deref(), address.as_deref(), *delivery_charge)?;
            render::store("registered", &store)
        }
        StoreCommand::List => render::stores(&engine.stores()?),
        StoreCommand::Open { store } => render::store("is open", &engine.set_store_open(*store, true)?),
        StoreCommand::Close { store } => render::store("is closed", &engine.set_store_open(*store, false)?),
        StoreCommand::Orders { store } => render::views(&engine.store_inbox(*store)?),
    })
}

/// `menu add | list | soldout | available`
pub fn menu(engine: &Engine, command: &MenuCommand) -> Result<Output> {
    Ok(match command {
        MenuCommand::Add { store, name, price } => render::menu("added", &engine.add_menu(*store, name, *price)?),
        MenuCommand::List { store } => render::menus(&engine.menus(*store)?),
        MenuCommand::Soldout { menu } => render::menu("is sold out", &engine.set_menu_available(*menu, false)?),
        MenuCommand::Available { menu } => render::menu("is available again", &engine.set_menu_available(*menu, true)?),
    })
}

/// `rider add | list`
pub fn rider(engine: &Engine, command: &RiderCommand) -> Result<Output> {
    Ok(match command {
        RiderCommand::Add { name } => render::rider_added(&engine.add_rider(name)?),
        RiderCommand::List => render::riders(&engine.riders()?),
    })
}

/// `order`, paid at once with `--pay`.
pub fn order(engine: &Engine, o: &OrderArgs) -> Result<Output> {
    let picks = o.items.iter().map(|i| ItemPick::parse(i)).collect::<Result<Vec<_>>>()?;
    let mut new = NewOrder::new(o.store, &o.customer, &picks).deliver_to(&o.address);
    if o.pay {
        new = new.pay_now(o.card.as_deref());
    }
    Ok(render::view(&engine.place_order(new)?))
}

/// `pay`
pub fn pay(engine: &Engine, order: i64, card: Option<&str>) -> Result<Output> {
    Ok(render::view(&engine.pay(order, card)?))
}

/// `cook start | finish | reject`
pub fn cook(engine: &Engine, command: &CookCommand) -> Result<Output> {
    let view = match command {
        CookCommand::Start { order } => engine.start_cooking(*order)?,
        CookCommand::Finish { order } => engine.finish_cooking(*order)?,
        CookCommand::Reject { order, reason } => engine.reject(*order, reason)?,
    };
    Ok(render::view(&view))
}

/// `deliver start | complete`
pub fn deliver(engine: &Engine, command: &DeliverCommand) -> Result<Output> {
    let view = match command {
        DeliverCommand::Start { order, rider } => engine.start_delivery(*order, rider.as_deref())?,
        DeliverCommand::Complete { order } => engine.complete_delivery(*order)?,
    };
    Ok(render::view(&view))
}

/// `cancel`
pub fn cancel(engine: &Engine, order: i64, reason: &str) -> Result<Output> {
    Ok(render::view(&engine.cancel(order, reason)?))
}

/// `review`
pub fn review(engine: &Engine, order: i64, score: u8, text: &str) -> Result<Output> {
    Ok(render::review(&engine.review(order, score, text)?))
}

/// `status ORDER` or `status --customer NAME`
pub fn status(engine: &Engine, order: Option<i64>, customer: Option<&str>) -> Result<Output> {
    Ok(match order {
        Some(order) => render::view(&engine.status(order)?),
        None => render::views(&engine.customer_orders(customer.unwrap_or_default())?),
    })
}

/// `events`: printed at once (a table, or one `--json` object), or as
/// lines, one per event; with `--follow`, until interrupted.
pub fn events(
    engine: &Engine,
    order: Option<i64>,
    after: i64,
    format: Option<EventFormat>,
    follow: bool,
    context: &Context,
) -> Result<Printed> {
    let json = context.json;
    if after < 0 {
        return Err(Error::Invalid(Invalid(format!("--after must be 0 or more, got {after}"))));
    }
    // --json: one object {"events":[…]}, or with --follow one object
    // per line; the items in --format json (the default) or cloudevents.
    if json && format == Some(EventFormat::Table) {
        return Err(Error::Invalid(Invalid(
            "--format table is for people and --json for programs: with --json, use --format json \
             (the default) or --format cloudevents"
                .into(),
        )));
    }
    let format =
        format.unwrap_or(if !json && std::io::stdout().is_terminal() { EventFormat::Table } else { EventFormat::Json });
    let events = engine.events(after, order, usize::MAX >> 1)?;
    if !follow && (json || format == EventFormat::Table) {
        return Ok(Printed::Out(render::events(&events, format)));
    }
    // `-q` prints nothing on success, JSON lines included (`--json` still
    // prints, as it does for every command).
    let print = |e: &StoredEvent| {
        if context.quiet && !json {
            return Ok(());
        }
        print_line(&render::event_line_in(format, e)).map_err(output_error)
    };
    let mut last = after;
    for e in &events {
        print(e)?;
        last = e.seq;
    }
    // --follow: poll for what other processes append, sleeping
    // between looks (no busy loop), until interrupted.
    if follow {
        loop {
            std::thread::sleep(std::time::Duration::from_millis(200));
            for e in engine.events(last, order, 1_000)? {
                print(&e)?;
                last = e.seq;
            }
        }
    }
    Ok(Printed::Done)
}

/// `breaker [status]` or `breaker reset NAME`
pub fn breaker(engine: &Engine, action: Option<&BreakerCommand>) -> Result<Output> {
    Ok(match action {
        Some(BreakerCommand::Reset { name }) => {
            let name = engine.breaker_name(name)?;
            render::breaker_reset(&engine.reset_breaker(&name)?)
        }
        Some(BreakerCommand::Status) | None => render::breakers(&engine.breakers()?),
    })
}

/// What `relay` was asked to do.
#[derive(Debug, Clone, Copy)]
pub struct RelayFlags {
    /// `--dead`: list the dead messages.
    pub dead: bool,
    /// `--attention`: list what needs a person.
    pub attention: bool,
    /// `--retry-dead`: queue the dead messages again first.
    pub retry_dead: bool,
    /// `--retry-attention`: queue what needs attention again first.
    pub retry_attention: bool,
}

/// `relay`, `relay --dead`, `relay --attention`
pub fn relay(engine: &Engine, flags: RelayFlags) -> Result<Output> {
    if flags.dead {
        return Ok(render::dead_messages(&engine.dead_messages()?));
    }
    if flags.attention {
        return Ok(render::attention(&engine.attention()?));
    }
    let revived = if flags.retry_dead { engine.revive_dead_messages()? } else { 0 };
    let requeued = if flags.retry_attention { engine.requeue_attention()? } else { 0 };
    let report = engine.relay()?;
    let waiting = engine.queue_status()?;
    Ok(render::relay(&report, &waiting, revived, requeued))
}

/// `relay --watch`: relays until SIGTERM or SIGINT, printing a line per
/// pass that made a gateway call or sent a message (none with `-q` or
/// `--json`; `-v` logs every pass on stderr), then one summary: its
/// `--json` object is the only thing on stdout.
pub fn relay_watch(engine: &Engine, flags: RelayFlags, context: &Context) -> Result<Output> {
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(&stop)?;
    let revived = if flags.retry_dead { engine.revive_dead_messages()? } else { 0 };
    let requeued = if flags.retry_attention { engine.requeue_attention()? } else { 0 };
    let talk = !context.json && !context.quiet;
    let mut unwritten: Option<Error> = None;
    let report = engine.relay_watch(context.watch, &stop, &mut |pass| {
        if talk && pass.tried() > 0 && unwritten.is_none() {
            if let Err(e) = print_line(&render::relay_pass(pass, SystemClock.now())) {
                // Nobody reads any more (or cannot): stop as if told to.
                unwritten = Some(output_error(e));
                stop.store(true, Ordering::SeqCst);
            }
        }
    })?;
    if let Some(e) = unwritten {
        return Err(e);
    }
    let waiting = engine.queue_status()?;
    Ok(render::relay_watch(&report, &waiting, revived, requeued))
}

/// Sets `stop` on SIGTERM and SIGINT (Ctrl-C). A second one ends the
/// program at once, with 128 + the signal's number (as a shell reports a
/// process a signal killed): whoever insists does not wait for the call in
/// flight. The handlers are signal-hook's (no unsafe code of ours).
fn stop_on_signals(stop: &Arc<AtomicBool>) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for signal in [SIGTERM, SIGINT] {
        let failed = |e: std::io::Error| Error::Internal(format!("cannot handle signal {signal}: {e}"));
        // Registered first, so the first signal finds the flag still unset.
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, Arc::clone(stop)).map_err(failed)?;
        signal_hook::flag::register(signal, Arc::clone(stop)).map_err(failed)?;
    }
    Ok(())
}

/// `projection rebuild`
pub fn projection(engine: &Engine, command: &ProjectionCommand) -> Result<Output> {
    match command {
        ProjectionCommand::Rebuild => Ok(render::rebuild(&engine.rebuild_projection()?)),
    }
}
