//! Copying a whole database into a new, empty one of any kind (`ezdelivery
//! db copy`): every table, row for row, through the [`TableCopy`] port, then
//! a verification of what the target holds.
//!
//! All or nothing: the source is read on one consistent snapshot and the
//! target written in one transaction, which is committed only once the
//! copy has verified; a refused or failed copy (a non-empty target, a
//! different schema, a difference found) rolls it back, so the target is
//! left as it was. The verification, inside that transaction:
//!
//! - every table holds as many rows as the source, and the same rows (a
//!   digest of every value, read back by primary key);
//! - the event log reads back identical, event for event (sequence number,
//!   id, type, order, time, data), as the application reads it, events
//!   paired by sequence number (a PostgreSQL log reads in commit order,
//!   which may differ from number order; a copy's, in number order);
//! - every mypage view in the target equals a rebuild from the target's
//!   log (the `read_model` rule of [`invariants::check`]), and the target
//!   breaks no invariant that the source does not break too.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::app::invariants::{self, Violation};
use crate::domain::validate::Invalid;
use crate::ports::copy::{TableCopy, TableReader, TableWriter, Value};
use crate::ports::storage::StoredEvent;
use crate::ports::Repo;
use crate::{Error, Result};

/// How many rows go into the target at a time.
const BATCH_ROWS: usize = 500;
/// How many events are compared at a time.
const BATCH_EVENTS: usize = 5_000;
/// How many differences a failed verification names.
const LISTED: usize = 5;

/// What a copy did, once it verified.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CopyReport {
    /// Every table copied, parents first, with its rows.
    pub tables: Vec<TableCount>,
    /// Events in the log, each read back identical.
    pub events: u64,
    /// Orders whose mypage view equals a rebuild from the target's log.
    pub views: u64,
    /// Invariants the source already broke, carried over as they were (a
    /// copy does not repair data); empty for a sound database.
    pub carried_violations: Vec<String>,
}

impl CopyReport {
    /// Rows copied, all tables together.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// One table copied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableCount {
    /// Its name.
    pub name: String,
    /// Its rows, the same in the source and in the target.
    pub rows: u64,
}

/// What was read of one source table: how many rows, and their digest.
struct Exported {
    name: String,
    columns: Vec<String>,
    rows: u64,
    digest: u64,
}

/// Copies every table of `from` into `to`, verifies the result (see the
/// module documentation) and commits it; `to` must hold no row.
///
/// Fails with [`Error::Invalid`] when `to` holds any row, or lacks a table
/// or column of `from` (another schema version), and with
/// [`Error::Internal`] naming what differs when the copy does not verify;
/// either way `to` is left as it was.
pub fn copy(from: &dyn TableCopy, to: &dyn TableCopy) -> Result<CopyReport> {
    let _span = tracing::info_span!("copy_database").entered();
    let mut report = None;
    from.export(&mut |source| {
        to.import(&mut |target| {
            report = Some(copy_into(source, target).map_err(|e| match e {
                Error::Internal(m) => {
                    Error::Internal(format!("{m}; so nothing was committed: the target is left as it was"))
                }
                other => other,
            })?);
            Ok(())
        })
    })?;
    report.ok_or_else(|| Error::Internal("the copy did not run".into()))
}

/// Verifies, after the fact, that `to` holds what `from` holds (as
/// [`copy`] does before it commits), each read on a snapshot of its own:
/// the report, or [`Error::Internal`] naming what differs. Both must be
/// left alone meanwhile: a write to either is a difference.
pub fn verify(from: &dyn TableCopy, to: &dyn TableCopy) -> Result<CopyReport> {
    let mut report = None;
    from.export(&mut |source| {
        let mut exported = Vec::new();
        for table in source.tables()? {
            let mut digest = DefaultHasher::new();
            let mut rows = 0u64;
            source.rows(&table.name, &table.columns, &mut |row| {
                row.hash(&mut digest);
                rows += 1;
                Ok(())
            })?;
            exported.push(Exported { name: table.name, columns: table.columns, rows, digest: digest.finish() });
        }
        to.export(&mut |target| {
            report = Some(check(source, target, &exported)?);
            Ok(())
        })
    })?;
    report.ok_or_else(|| Error::Internal("the verification did not run".into()))
}

/// The copy inside the two transactions.
fn copy_into(source: &mut dyn TableReader, target: &mut dyn TableWriter) -> Result<CopyReport> {
    refuse_non_empty(target)?;
    let tables = source.tables()?;
    let wanted = target.tables()?;
    for table in &tables {
        let Some(there) = wanted.iter().find(|t| t.name == table.name) else {
            return Err(schema_differs(format!("it has no table `{}`", table.name)));
        };
        if let Some(column) = table.columns.iter().find(|c| !there.columns.contains(c)) {
            return Err(schema_differs(format!("its table `{}` has no column `{column}`", table.name)));
        }
    }

    let mut exported = Vec::with_capacity(tables.len());
    for table in tables {
        let mut batch: Vec<Vec<Value>> = Vec::with_capacity(BATCH_ROWS);
        let mut digest = DefaultHasher::new();
        let mut rows = 0u64;
        source.rows(&table.name, &table.columns, &mut |row| {
            row.hash(&mut digest);
            rows += 1;
            batch.push(row);
            if batch.len() == BATCH_ROWS {
                target.insert(&table.name, &table.columns, &batch)?;
                batch.clear();
            }
            Ok(())
        })?;
        if !batch.is_empty() {
            target.insert(&table.name, &table.columns, &batch)?;
        }
        exported.push(Exported { name: table.name, columns: table.columns, rows, digest: digest.finish() });
    }
    target.after_import()?;
    check(source, target, &exported)
}

/// Refuses a target that holds any row, before anything is written.
fn refuse_non_empty(target: &mut dyn TableWriter) -> Result<()> {
    let mut holding = Vec::new();
    for table in target.tables()? {
        let rows = target.count(&table.name)?;
        if rows > 0 {
            holding.push(format!("{rows} in {}", table.name));
        }
    }
    if holding.is_empty() {
        return Ok(());
    }
    let more = holding.len().saturating_sub(LISTED);
    holding.truncate(LISTED);
    let more = if more > 0 { format!(" and {more} more tables") } else { String::new() };
    Err(Error::Invalid(Invalid(format!(
        "the target of a copy must be empty, and it holds rows ({}{more}); it is left as it was",
        holding.join(", ")
    ))))
}

fn schema_differs(what: String) -> Error {
    Error::Invalid(Invalid(format!(
        "the target's schema is not the source's ({what}): both must be of the same ezdelivery version; the \
         target is left as it was"
    )))
}

/// Checks what the target holds against what was read from the source.
fn check(source: &mut dyn TableReader, target: &mut dyn TableReader, exported: &[Exported]) -> Result<CopyReport> {
    let mut problems = Vec::new();
    let mut tables = Vec::with_capacity(exported.len());
    for table in exported {
        let rows = target.count(&table.name)?;
        if rows != table.rows {
            problems.push(format!("table {}: {} rows in the source, {rows} in the copy", table.name, table.rows));
        } else {
            let mut digest = DefaultHasher::new();
            target.rows(&table.name, &table.columns, &mut |row| {
                row.hash(&mut digest);
                Ok(())
            })?;
            if digest.finish() != table.digest {
                problems.push(format!("table {}: the rows read back differ from the source's", table.name));
            }
        }
        tables.push(TableCount { name: table.name.clone(), rows: table.rows });
    }

    let events = compare_logs(source, target, &mut problems)?;

    let in_source: BTreeSet<String> = with_repo(source, invariants::check)?.iter().map(Violation::to_string).collect();
    let in_target = with_repo(target, invariants::check)?;
    let mut carried_violations = Vec::new();
    for violation in &in_target {
        let text = violation.to_string();
        let carried = in_source.contains(&text);
        if violation.rule == "read_model" {
            let note = if carried { " (the source's view is stale too: rebuild its projection first)" } else { "" };
            problems.push(format!("{text}{note}"));
        } else if carried {
            carried_violations.push(text);
        } else {
            problems.push(format!("{text}, which the source does not break"));
        }
    }

    if !problems.is_empty() {
        let n = problems.len();
        let more = n.saturating_sub(LISTED);
        problems.truncate(LISTED);
        let more = if more > 0 { format!("; and {more} more") } else { String::new() };
        return Err(Error::Internal(format!("the copy does not match its source: {}{more}", problems.join("; "))));
    }
    let views = with_repo(target, |repo| {
        let last = repo.next_id(crate::ports::Table::Order)? - 1;
        let mut views = 0;
        for id in 1..=last {
            if repo.view(id)?.is_some() {
                views += 1;
            }
        }
        Ok(views)
    })?;
    Ok(CopyReport { tables, events, views, carried_violations })
}

/// Reads both logs batch by batch, each in the order its storage gives it,
/// and pairs their events by sequence number: a PostgreSQL log reads in
/// commit order, which may differ from number order, while a copy's (one
/// transaction) reads in number order, so a faithful copy pairs every
/// event though the two orders differ. Events wait in `pending` until their
/// number turns up on the other side (few do, for a log read nearly in
/// number order). Notes the first difference (the lowest number among
/// those found) and returns how many events matched.
fn compare_logs(source: &mut dyn TableReader, target: &mut dyn TableReader, problems: &mut Vec<String>) -> Result<u64> {
    let (mut after_source, mut after_target) = (0, 0);
    let (mut source_done, mut target_done) = (false, false);
    let mut pending: [BTreeMap<i64, StoredEvent>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let mut matched = 0u64;
    while !(source_done && target_done) {
        let ours =
            if source_done { Vec::new() } else { with_repo(source, |repo| repo.events(after_source, BATCH_EVENTS))? };
        let theirs =
            if target_done { Vec::new() } else { with_repo(target, |repo| repo.events(after_target, BATCH_EVENTS))? };
        source_done = source_done || ours.len() < BATCH_EVENTS;
        target_done = target_done || theirs.len() < BATCH_EVENTS;
        after_source = ours.last().map_or(after_source, |e| e.seq);
        after_target = theirs.last().map_or(after_target, |e| e.seq);
        for (side, batch) in [(0, ours), (1, theirs)] {
            for event in batch {
                if pending[side].insert(event.seq, event).is_some() {
                    return Err(Error::Internal("a log gave the same event twice".into()));
                }
            }
        }
        let [mine, other] = &mut pending;
        let both: Vec<i64> = mine.keys().filter(|seq| other.contains_key(seq)).copied().collect();
        let mut first_difference = None;
        for seq in both {
            if let (Some(a), Some(b)) = (mine.remove(&seq), other.remove(&seq)) {
                if a == b {
                    matched += 1;
                } else if first_difference.is_none() {
                    first_difference = Some((a, b));
                }
            }
        }
        if let Some((a, b)) = first_difference {
            problems.push(format!("the event log differs at source event {}: {}", a.seq, event_difference(&a, &b)));
            return Ok(matched);
        }
    }
    let missing = match (pending[0].first_key_value(), pending[1].first_key_value()) {
        (Some((a, _)), Some((b, _))) if b < a => Some(format!("the copy has an extra event {b}")),
        (Some((a, _)), _) => Some(format!("event {a} of the source is missing from the copy")),
        (None, Some((b, _))) => Some(format!("the copy has an extra event {b}")),
        (None, None) => None,
    };
    if let Some(missing) = missing {
        problems.push(format!("the event log differs: {missing}"));
    }
    Ok(matched)
}

/// What differs between two events of the same number, for the message.
fn event_difference(a: &StoredEvent, b: &StoredEvent) -> String {
    if a.id != b.id {
        format!("its id is {} in the copy, {} in the source", b.id, a.id)
    } else if a.at != b.at {
        format!("its time is {} in the copy, {} in the source", b.at, a.at)
    } else if a.event.kind() != b.event.kind() {
        format!("its type is {} in the copy, {} in the source", b.event.kind(), a.event.kind())
    } else if a.event.order_id() != b.event.order_id() {
        format!("its order is {:?} in the copy, {:?} in the source", b.event.order_id(), a.event.order_id())
    } else {
        "its data differs".into()
    }
}

/// Runs `read` on the [`Repo`] of `tables`' transaction.
fn with_repo<R>(tables: &mut (impl TableReader + ?Sized), read: impl FnOnce(&mut dyn Repo) -> Result<R>) -> Result<R> {
    let mut read = Some(read);
    let mut out = None;
    tables.repo(&mut |repo| {
        let run = read.take().ok_or_else(|| Error::Internal("a read ran twice".into()))?;
        out = Some(run(repo)?);
        Ok(())
    })?;
    out.ok_or_else(|| Error::Internal("a read did not run".into()))
}

/// The busy database the copy's tests (SQLite's here, PostgreSQL's in
/// `adapters::postgres`) copy: every table holds rows.
#[cfg(test)]
pub(crate) mod fixture {
    use std::path::{Path, PathBuf};

    use crate::adapters::sqlite::SqliteStorage;
    use crate::domain::ChannelName;
    use crate::ports::{Message, Notifier};
    use crate::{Engine, ItemPick, NewOrder};

    /// A channel that is always down: messages stay queued, its breaker counts.
    pub(crate) struct Down(pub(crate) ChannelName);

    impl Notifier for Down {
        fn channel(&self) -> &ChannelName {
            &self.0
        }
        fn send(&self, _: &Message) -> std::result::Result<(), String> {
            Err("the channel is down".into())
        }
    }

    pub(crate) fn engine(path: &Path) -> Engine {
        let storage = SqliteStorage::open(path).expect("open the database");
        Engine::builder(storage).notifier(Down(ChannelName::new("pager").expect("a channel name"))).build()
    }

    /// A database that went through whole lifecycles: delivered and
    /// reviewed, cancelled with refunds (before and after cooking), one
    /// unpaid, messages queued for a channel that is down, breakers, a
    /// projection rebuilt (its checkpoint kept), idempotency keys of
    /// requests: every table holds rows.
    pub(crate) fn busy_database(dir: &Path) -> PathBuf {
        let path = dir.join("source.db");
        let engine = engine(&path);
        let store = engine.add_store("교촌치킨", Some("park"), Some("서울")).expect("store");
        engine.add_menu(store.id, "후라이드", 18_000).expect("menu");
        engine.add_menu(store.id, "콜라", 2_000).expect("menu");
        engine.add_rider("lee").expect("rider");
        engine.add_rider("kang").expect("rider");
        let items = [ItemPick::new("후라이드", 2), ItemPick::new("콜라", 1)];
        let order = |customer: &str, pay: bool| {
            let new = NewOrder::new(store.id, customer, &items).deliver_to("강남구");
            let new = if pay { new.pay_now(None) } else { new };
            engine.place_order(new).expect("order").order_id
        };
        let delivered = order("kim", true);
        engine.start_cooking(delivered).expect("cook");
        engine.finish_cooking(delivered).expect("cooked");
        engine.start_delivery(delivered, Some("lee")).expect("depart");
        engine.complete_delivery(delivered).expect("delivered");
        engine.review(delivered, 5, "맛있어요").expect("review");
        let cancelled = order("kim", true);
        engine.cancel(cancelled, "changed my mind").expect("cancel");
        let cooking = order("choi", true);
        engine.start_cooking(cooking).expect("cook");
        engine.cancel(cooking, "too slow").expect("cancel while cooking");
        let rejected = order("choi", true);
        engine.reject(rejected, "out of chicken").expect("reject");
        order("park", false);
        engine.relay().expect("relay");
        engine.reset_breaker(&engine.breaker_name("payment").expect("a breaker")).expect("reset");
        engine.rebuild_projection().expect("rebuild");
        // Idempotency keys of requests: one answered, one still running.
        engine.claim_request("customer:kim", "key-1", "fp-1").expect("claimed");
        let answered = crate::StoredResponse { status: 201, body: "{\"order_id\":1}".into() };
        engine.finish_request("customer:kim", "key-1", &answered).expect("finished");
        engine.claim_request("customer:choi", "key-1", "fp-2").expect("claimed");
        path
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::fixture::{busy_database, engine};
    use super::*;
    use crate::adapters::sqlite::SqliteStorage;
    use crate::ports::Storage;
    use crate::{ItemPick, NewOrder};

    fn open(path: &Path) -> SqliteStorage {
        SqliteStorage::open(path).expect("open")
    }

    fn contents(path: &Path) -> crate::adapters::sqlite::Contents {
        SqliteStorage::inspect(path).expect("inspect").expect("a database")
    }

    #[test]
    fn a_busy_database_is_copied_whole_and_verified() {
        let dir = tempfile::tempdir().expect("a folder");
        let source = busy_database(dir.path());
        let target = dir.path().join("copy.db");
        let report = copy(&open(&source), &open(&target)).expect("the copy verifies");

        let before = contents(&source);
        for table in &report.tables {
            assert!(table.rows > 0, "every table holds rows: {report:?}");
            assert_eq!(before.rows_in(&table.name), table.rows, "{}", table.name);
        }
        assert_eq!(report.tables.len(), before.rows.len(), "every table: {report:?}");
        assert_eq!(contents(&target), before, "the same rows in every table");
        let names: Vec<&str> = report.tables.iter().map(|t| t.name.as_str()).collect();
        let at = |name: &str| names.iter().position(|n| *n == name).expect(name);
        assert!(
            at("stores") < at("orders") && at("orders") < at("payments") && at("messages") < at("message_deliveries")
        );
        assert_eq!(report.events, before.rows_in("events"));
        assert_eq!(report.views, 5);
        assert!(report.carried_violations.is_empty(), "{report:?}");

        // The copy works as the source did: the same answers, and what it
        // adds comes after what it holds.
        let (old, new) = (engine(&source), engine(&target));
        assert_eq!(old.events(0, None, 10_000).unwrap(), new.events(0, None, 10_000).unwrap());
        assert_eq!(old.customer_orders("kim").unwrap(), new.customer_orders("kim").unwrap());
        assert_eq!(old.breakers().unwrap(), new.breakers().unwrap());
        assert_eq!(old.order_counts().unwrap(), new.order_counts().unwrap());
        // Idempotency keys hold on the copy: the answer kept, the one running still running.
        let answered =
            crate::RequestClaim::Done(crate::StoredResponse { status: 201, body: "{\"order_id\":1}".into() });
        assert_eq!(new.claim_request("customer:kim", "key-1", "fp-1").unwrap(), answered);
        assert!(matches!(
            new.claim_request("customer:choi", "key-1", "fp-2").unwrap(),
            crate::RequestClaim::InFlight { .. }
        ));
        assert!(new.check_invariants().unwrap().is_empty());
        let last = new.events(0, None, 10_000).unwrap().last().map(|e| e.seq).unwrap();
        let items = [ItemPick::new("콜라", 1)];
        let placed = new.place_order(NewOrder::new(1, "lim", &items)).expect("an order on the copy");
        assert_eq!(placed.order_id, 6);
        assert!(placed.timeline.iter().all(|t| t.seq > last), "sequence numbers go on after the copied ones");
    }

    #[test]
    fn a_target_that_holds_rows_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().expect("a folder");
        let source = busy_database(dir.path());
        let target = dir.path().join("used.db");
        engine(&target).add_rider("someone").expect("a rider");
        let before = contents(&target);
        let e = copy(&open(&source), &open(&target)).expect_err("refused");
        assert!(matches!(e, Error::Invalid(_)), "{e:?}");
        assert!(e.to_string().contains("must be empty") && e.to_string().contains("1 in riders"), "{e}");
        assert_eq!(contents(&target), before);
    }

    /// A target that changes what it is given: `tamper` sees each batch.
    struct Tampering {
        inner: SqliteStorage,
        tamper: fn(&str, &mut Vec<Vec<Value>>),
    }

    impl Storage for Tampering {
        fn write(&self, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()> {
            self.inner.write(work)
        }
        fn read(&self, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()> {
            self.inner.read(work)
        }
    }

    impl TableCopy for Tampering {
        fn export(&self, work: &mut dyn FnMut(&mut dyn TableReader) -> Result<()>) -> Result<()> {
            self.inner.export(work)
        }
        fn import(&self, work: &mut dyn FnMut(&mut dyn TableWriter) -> Result<()>) -> Result<()> {
            self.inner.import(&mut |inner| work(&mut Tampered { inner, tamper: self.tamper }))
        }
    }

    struct Tampered<'a> {
        inner: &'a mut dyn TableWriter,
        tamper: fn(&str, &mut Vec<Vec<Value>>),
    }

    impl TableReader for Tampered<'_> {
        fn tables(&mut self) -> Result<Vec<crate::ports::copy::TableInfo>> {
            self.inner.tables()
        }
        fn count(&mut self, table: &str) -> Result<u64> {
            self.inner.count(table)
        }
        fn rows(
            &mut self,
            table: &str,
            columns: &[String],
            row: &mut dyn FnMut(Vec<Value>) -> Result<()>,
        ) -> Result<()> {
            self.inner.rows(table, columns, row)
        }
        fn repo(&mut self, work: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()> {
            self.inner.repo(work)
        }
    }

    impl TableWriter for Tampered<'_> {
        fn insert(&mut self, table: &str, columns: &[String], rows: &[Vec<Value>]) -> Result<()> {
            let mut rows = rows.to_vec();
            (self.tamper)(table, &mut rows);
            self.inner.insert(table, columns, &rows)
        }
        fn after_import(&mut self) -> Result<()> {
            self.inner.after_import()
        }
    }

    fn tampered_copy(tamper: fn(&str, &mut Vec<Vec<Value>>)) -> String {
        let dir = tempfile::tempdir().expect("a folder");
        let source = busy_database(dir.path());
        let target = dir.path().join("copy.db");
        let e = copy(&open(&source), &Tampering { inner: open(&target), tamper }).expect_err("does not verify");
        assert!(matches!(e, Error::Internal(_)), "{e:?}");
        assert!(contents(&target).is_empty(), "rolled back: {:?}", contents(&target));
        e.to_string()
    }

    #[test]
    fn a_copy_that_does_not_verify_is_rolled_back() {
        // A view that says another address: the rows differ, and the view is
        // not what its log rebuilds.
        let message = tampered_copy(|table, rows| {
            if table == "mypage" {
                if let Some(Value::Text(view)) = rows[0].get_mut(2) {
                    *view = view.replace("강남구", "종로구");
                }
            }
        });
        assert!(message.contains("table mypage: the rows read back differ"), "{message}");
        assert!(message.contains("order 1: the view differs from a rebuild"), "{message}");
        assert!(message.contains("nothing was committed"), "{message}");

        // An event lost on the way.
        let message = tampered_copy(|table, rows| {
            if table == "events" {
                rows.remove(3);
            }
        });
        assert!(message.contains("table events: "), "{message}");
        assert!(message.contains("the event log differs"), "{message}");
    }

    #[test]
    fn verify_finds_a_view_tampered_with_after_the_copy() {
        let dir = tempfile::tempdir().expect("a folder");
        let source = busy_database(dir.path());
        let target = dir.path().join("copy.db");
        copy(&open(&source), &open(&target)).expect("the copy verifies");
        assert!(verify(&open(&source), &open(&target)).is_ok());
        let copied = open(&target);
        copied
            .connection()
            .execute("UPDATE mypage SET view = replace(view, '강남구', '종로구') WHERE order_id = 1", [])
            .expect("tamper");
        let e = verify(&open(&source), &copied).expect_err("a difference");
        let message = e.to_string();
        assert!(message.contains("table mypage: the rows read back differ"), "{message}");
        assert!(message.contains("order 1: the view differs from a rebuild from the log"), "{message}");
        assert!(!message.contains("stale too"), "the source's view is sound: {message}");
    }
}
