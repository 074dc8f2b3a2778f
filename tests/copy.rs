//! `ezdelivery db copy --to`: the real binary copies a database built by
//! its own commands, and the copy answers every question the same way; a
//! target it must not write to is refused (exit 2) and left byte for byte
//! as it was; a password in a URL is never printed.
//!
//! Every test gets its own temporary folder (see `tests/cli.rs`).

use std::path::Path;

use ezdelivery_testkit::cli_world::{assert_fails, one_object, World};
use ezdelivery_testkit::files::folder;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_ezdelivery");

/// A database with one order delivered and reviewed, one cancelled (its
/// payment refunded), one waiting for its payment; returns the world and
/// the orders' ids.
fn busy_world() -> (World, Vec<i64>) {
    let world = World::without_config(BIN).env("COLUMNS", "200");
    let shop = world.shop(&["lee"]);
    let delivered = world.paid_order(shop, "kim");
    world.advance(delivered, "delivered");
    world.ok(&["review", &delivered.to_string(), "--score", "5", "--text", "맛있어요"]);
    let cancelled = world.paid_order(shop, "kim");
    world.ok(&["cancel", &cancelled.to_string(), "--reason", "changed my mind"]);
    let (code, unpaid) = world.order(shop, "choi", false);
    assert_eq!(code, 0, "{unpaid}");
    (world, vec![delivered, cancelled, unpaid["order_id"].as_i64().expect("an id")])
}

#[test]
fn a_copy_answers_as_its_source_does() {
    let (world, orders) = busy_world();
    let copy = world.path("backup").join("copy.db");
    let to = copy.display().to_string();

    let human = world.run(&["db", "copy", "--to", &to]);
    assert_eq!(human.code, Some(0), "{human:?}");
    assert!(human.stdout.contains("verified: "), "{}", human.stdout);
    assert!(human.stdout.contains("│ events"), "a table of the tables: {}", human.stdout);

    for order in &orders {
        let order = order.to_string();
        let (source, copied) = (world.run(&["status", &order]), world.run_on(&copy, &["status", &order]));
        assert_eq!(copied.code, Some(0), "{copied:?}");
        assert_eq!(source.stdout, copied.stdout, "status {order}");
        let (source, copied) =
            (world.run(&["--json", "status", &order]), world.run_on(&copy, &["--json", "status", &order]));
        assert_eq!(source.stdout, copied.stdout, "status {order} --json");
    }
    for args in [&["status", "--customer", "kim"][..], &["--json", "events"], &["store", "list"], &["breaker"]] {
        assert_eq!(world.run(args).stdout, world.run_on(&copy, args).stdout, "{args:?}");
    }

    // --json: one object; into a second, new file.
    let second = world.path("second.db");
    let run = world.run(&["--json", "db", "copy", "--to", &second.display().to_string()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let report = one_object(&run.stdout, "stdout");
    assert_eq!(report["verified"], true, "{report}");
    let tables = report["tables"].as_array().expect("tables");
    let rows = |name: &str| tables.iter().find(|t| t["name"] == name).map(|t| t["rows"].as_i64().unwrap());
    assert_eq!(rows("orders"), Some(3), "{report}");
    assert_eq!(rows("reviews"), Some(1), "{report}");
    assert_eq!(report["events"].as_i64(), rows("events"), "{report}");
    assert_eq!(report["views"], 3, "{report}");
    assert_eq!(report["rows"].as_i64(), Some(tables.iter().map(|t| t["rows"].as_i64().unwrap()).sum()));

    // The copy goes on where the source stopped.
    let next = world.run_on(&copy, &["--json", "rider", "add", "--name", "kang"]);
    assert_eq!(one_object(&next.stdout, "stdout")["id"], 2, "{next:?}");
}

#[test]
fn a_target_that_must_not_be_written_is_refused_untouched() {
    let (world, _) = busy_world();
    let db = world.db.display().to_string();
    let state = world.db.parent().expect("a folder").to_path_buf();

    // The source itself, by its path or through a link.
    let before = folder(&state);
    let message =
        assert_fails(&world.run(&["--json", "db", "copy", "--to", &db]), "copy to itself", 2, "invalid_input");
    assert!(message.contains("names the database being copied"), "{message}");
    #[cfg(unix)]
    {
        let link = world.path("link.db");
        std::os::unix::fs::symlink(&world.db, &link).expect("a link");
        let run = world.run(&["--json", "db", "copy", "--to", &link.display().to_string()]);
        assert_fails(&run, "copy to a link to itself", 2, "invalid_input");
    }
    assert_eq!(folder(&state), before, "the source is left as it was");

    // A database that holds rows.
    let used = world.path("used");
    std::fs::create_dir(&used).expect("a folder");
    let target = used.join("used.db");
    assert_eq!(world.run_on(&target, &["store", "add", "--name", "other"]).code, Some(0));
    let before = folder(&used);
    let run = world.run(&["db", "copy", "--to", &target.display().to_string()]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("must be empty") && run.stderr.contains("1 in stores"), "{}", run.stderr);
    assert_eq!(folder(&used), before, "the target is left byte for byte as it was");

    // No source: nothing is created on either side.
    let empty = world.path("nothing");
    std::fs::create_dir(&empty).expect("a folder");
    let run =
        world.run_on(&empty.join("none.db"), &["db", "copy", "--to", &empty.join("copy.db").display().to_string()]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(folder(&empty).is_empty(), "{:?}", folder(&empty).keys());
}

#[test]
fn a_postgres_url_that_cannot_be_reached_never_shows_its_password() {
    let (world, _) = busy_world();
    for url in ["postgres://ez:s3cret@127.0.0.1:1/orders", "postgresql://ez@127.0.0.1:1/orders?password=s3cret"] {
        let human = world.run(&["db", "copy", "--to", url]);
        assert_eq!(human.code, Some(1), "{human:?}");
        assert!(
            human.stderr.contains("cannot connect") && human.stderr.contains("check the --to URL"),
            "{}",
            human.stderr
        );
        assert!(!human.stderr.contains("s3cret") && human.stderr.contains("ez@127.0.0.1:1/orders"), "{}", human.stderr);
        let json = world.run(&["--json", "db", "copy", "--to", url]);
        let message = assert_fails(&json, "copy to PostgreSQL", 1, "internal");
        assert!(!message.contains("s3cret"), "{message}");
        let from = world.run_on(Path::new(url), &["db", "copy", "--to", &world.path("x.db").display().to_string()]);
        assert_eq!(from.code, Some(1), "{from:?}");
        assert!(!from.stderr.contains("s3cret"), "{}", from.stderr);
    }
}

/// SQLite → PostgreSQL → SQLite with the real binary: each copy answers
/// as its source does; a PostgreSQL target that holds rows, or that is
/// the source itself (whatever the password), is refused untouched.
#[test]
fn a_copy_to_postgresql_and_back_answers_as_its_source_does() {
    let Some(pg) = ezdelivery_testkit::postgres::server() else { return };
    let (world, orders) = busy_world();
    let url = pg.fresh_database();
    let on_pg = Path::new(&url);

    let run = world.run(&["db", "copy", "--to", &url]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("verified: "), "{}", run.stdout);
    let same = |a: &Path, b: &Path| {
        for order in &orders {
            let order = order.to_string();
            for args in [&["status", &order][..], &["--json", "status", &order]] {
                let (x, y) = (world.run_on(a, args), world.run_on(b, args));
                assert_eq!(y.code, Some(0), "{y:?}");
                assert_eq!(x.stdout, y.stdout, "{args:?}");
            }
        }
        for args in
            [&["--json", "status", "--customer", "kim"][..], &["--json", "events"], &["--json", "store", "list"]]
        {
            assert_eq!(world.run_on(a, args).stdout, world.run_on(b, args).stdout, "{args:?}");
        }
    };
    same(&world.db, on_pg);

    // Back into a new file, from --db postgres://….
    let back = world.path("back").join("back.db");
    let run = world.run_on(on_pg, &["--json", "db", "copy", "--to", &back.display().to_string()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let report = one_object(&run.stdout, "stdout");
    assert_eq!(report["verified"], true, "{report}");
    assert_eq!(report["views"], 3, "{report}");
    same(&world.db, &back);

    // The PostgreSQL copy holds rows now: refused, untouched.
    let counts = "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM events), \
                  (SELECT last_value FROM orders_id_seq)";
    let before = pg.psql(&url, counts);
    let run = world.run(&["db", "copy", "--to", &url]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("must be empty") && run.stderr.contains("in events"), "{}", run.stderr);
    assert_eq!(pg.psql(&url, counts), before);

    // The source itself, named with a password it does not need.
    let with_password = url.replacen("postgres@", "postgres:s3cret@", 1);
    assert_ne!(with_password, url);
    let run = world.run_on(on_pg, &["db", "copy", "--to", &with_password]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("names the database being copied"), "{}", run.stderr);
    assert!(!run.stderr.contains("s3cret"), "{}", run.stderr);
    assert_eq!(pg.psql(&url, counts), before);
}
