//! `ezdelivery man`: one complete man page (roff), generated from the same
//! clap definitions as `--help`. clap_mangen renders the head (title, name,
//! synopsis, global options); every command follows with its usage,
//! options and example, then the environment, files and exit codes.

use std::fmt::Write as _;

use clap::{Arg, Command, CommandFactory};

use crate::args::Cli;

/// The whole page, `ezdelivery.1`.
pub fn page() -> std::io::Result<String> {
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    let man = clap_mangen::Man::new(cli.clone());
    let mut out = String::new();
    type Part = fn(&clap_mangen::Man, &mut dyn std::io::Write) -> std::io::Result<()>;
    let head: [Part; 2] = [clap_mangen::Man::render_title, clap_mangen::Man::render_name_section];
    for (i, part) in head.into_iter().enumerate() {
        append(&mut out, &man, part, i == 0)?;
    }
    synopsis(&mut out, &cli);
    out.push_str(DESCRIPTION);
    append(&mut out, &man, clap_mangen::Man::render_options_section, false)?;

    out.push_str(".SH COMMANDS\n");
    for (path, command) in leaves(&cli, "ezdelivery") {
        command_section(&mut out, &path, command);
    }

    out.push_str(SECTIONS);
    append(&mut out, &man, clap_mangen::Man::render_version_section, false)?;
    Ok(out)
}

/// Appends one part clap_mangen renders; each starts with the same two
/// preamble lines, kept only for the first.
fn append(
    out: &mut String,
    man: &clap_mangen::Man,
    part: fn(&clap_mangen::Man, &mut dyn std::io::Write) -> std::io::Result<()>,
    first: bool,
) -> std::io::Result<()> {
    let mut roff = Vec::new();
    part(man, &mut roff)?;
    for line in String::from_utf8_lossy(&roff).lines() {
        if !first && (line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq")) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(())
}

/// Every command that runs something (no groups), with its full name.
fn leaves<'c>(command: &'c Command, path: &str) -> Vec<(String, &'c Command)> {
    let mut all = Vec::new();
    for sub in command.get_subcommands() {
        let name = format!("{path} {}", sub.get_name());
        // `breaker` runs on its own (status) and has subcommands too.
        if sub.get_subcommands().next().is_none() || !sub.is_subcommand_required_set() {
            all.push((name.clone(), sub));
        }
        all.extend(leaves(sub, &name));
    }
    all
}

fn command_section(out: &mut String, path: &str, command: &Command) {
    let _ = writeln!(out, ".SS \"{}\"", escape(path));
    if let Some(about) = command.get_about() {
        let _ = writeln!(out, "{}", text(&about.to_string()));
    }
    let _ = writeln!(out, ".PP\n\\fB{}\\fR{}", escape(path), escape(&usage_args(command)));
    let args: Vec<&Arg> = command.get_arguments().filter(|a| !a.is_hide_set() && !a.is_global_set()).collect();
    let args: Vec<&Arg> = args.into_iter().filter(|a| !matches!(a.get_id().as_str(), "help" | "version")).collect();
    if !args.is_empty() {
        out.push_str(".RS\n");
        for arg in args {
            let _ = writeln!(out, ".TP\n{}", arg_label(arg));
            if let Some(help) = arg.get_help() {
                let help = help.to_string();
                let stop = if help.ends_with('.') { "" } else { "." };
                let _ = writeln!(out, "{}{stop}", text(&help));
            }
            let values: Vec<String> =
                arg.get_possible_values().iter().filter(|v| !v.is_hide_set()).map(|v| v.get_name().into()).collect();
            if !values.is_empty() && arg.get_long().is_some() {
                let _ = writeln!(out, "One of: {}.", escape(&values.join(", ")));
            }
        }
        out.push_str(".RE\n");
    }
    if let Some(after) = command.get_after_help() {
        out.push_str(".PP\n.nf\n.RS\n");
        for line in after.to_string().lines() {
            let _ = writeln!(out, "{}", text(line));
        }
        out.push_str(".RE\n.fi\n");
    }
}

/// `ezdelivery [--db PATH] [--config PATH] … COMMAND [ARGS]`, each option
/// with its value's placeholder (clap_mangen's synopsis has none).
fn synopsis(out: &mut String, cli: &Command) {
    let mut parts = Vec::new();
    for arg in cli.get_arguments().filter(|a| !a.is_hide_set() && !a.is_positional()) {
        if matches!(arg.get_id().as_str(), "help" | "version") {
            continue;
        }
        let mut flags = Vec::new();
        if let Some(s) = arg.get_short() {
            flags.push(format!("\\fB\\-{}\\fR", escape(&s.to_string())));
        }
        if let Some(l) = arg.get_long() {
            flags.push(format!("\\fB\\-\\-{}\\fR", escape(l)));
        }
        let mut part = flags.join("|");
        if takes_value(arg) {
            let _ = write!(part, " \\fI{}\\fR", escape(&value_name(arg)));
        }
        let repeated = matches!(arg.get_action(), clap::ArgAction::Count);
        parts.push(format!("[{part}]{}", if repeated { "..." } else { "" }));
    }
    let _ = writeln!(
        out,
        ".SH SYNOPSIS\n\\fBezdelivery\\fR {} \\fICOMMAND\\fR [\\fIARGS\\fR]\n.br\n\\fBezdelivery\\fR \\fICOMMAND\\fR \\fB\\-\\-help\\fR\n.br\n\\fBezdelivery\\fR \\fB\\-\\-version\\fR",
        parts.join(" ")
    );
}

/// The usage after the command's name: `[--card NUMBER] ORDER`.
fn usage_args(command: &Command) -> String {
    let mut parts = Vec::new();
    for arg in command.get_arguments().filter(|a| !a.is_hide_set() && !a.is_global_set()) {
        if matches!(arg.get_id().as_str(), "help" | "version") {
            continue;
        }
        let required = arg.is_required_set();
        let value = value_name(arg);
        let part = if arg.is_positional() {
            if arg.get_possible_values().is_empty() {
                value
            } else {
                arg.get_possible_values().iter().map(|v| v.get_name().to_string()).collect::<Vec<_>>().join("|")
            }
        } else {
            let flag =
                arg.get_long().map_or_else(|| format!("-{}", arg.get_short().unwrap_or('?')), |l| format!("--{l}"));
            if takes_value(arg) {
                format!("{flag} {value}")
            } else {
                flag
            }
        };
        parts.push(if required { part } else { format!("[{part}]") });
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" {}", parts.join(" "))
    }
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

fn value_name(arg: &Arg) -> String {
    arg.get_value_names()
        .and_then(|n| n.first())
        .map_or_else(|| arg.get_id().as_str().to_uppercase(), |n| n.to_string())
}

/// `\fB\-\-card\fR \fINUMBER\fR`, or `\fIORDER\fR` for a positional.
fn arg_label(arg: &Arg) -> String {
    if arg.is_positional() {
        return format!("\\fI{}\\fR", escape(&value_name(arg)));
    }
    let mut flags = Vec::new();
    if let Some(s) = arg.get_short() {
        flags.push(format!("\\fB\\-{}\\fR", escape(&s.to_string())));
    }
    if let Some(l) = arg.get_long() {
        flags.push(format!("\\fB\\-\\-{}\\fR", escape(l)));
    }
    let mut label = flags.join(", ");
    if takes_value(arg) {
        let _ = write!(label, " \\fI{}\\fR", escape(&value_name(arg)));
    }
    label
}

/// Escapes text for roff: backslashes and hyphens.
fn escape(s: &str) -> String {
    s.replace('\\', "\\e").replace('-', "\\-")
}

/// One line of running text: escaped, and never read as a request.
fn text(line: &str) -> String {
    let escaped = escape(line);
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// What the program is, for people who open the page.
const DESCRIPTION: &str = r#".SH DESCRIPTION
\fBezdelivery\fR takes a food order from a customer's menu pick to the rider's door: stores and menus, orders, payment, the store owner's inbox, cooking, delivery with the rider's delivery charge, cancellation with refunds, reviews, and a "mypage" view of every order, with a message to the customer on every status change.
.PP
Everything is kept in one SQLite file, by default in the platform data folder (see \fBFILES\fR), or in a PostgreSQL database when \fB\-\-db\fR is a postgres:// URL. Ids are the integers the commands print. Output is for people (tables; colour only on a terminal, never with \fBNO_COLOR\fR); \fB\-\-json\fR prints exactly one JSON object instead. Messages to customers and owners go to standard error as [알림 → NAME] lines, so standard output stays the command's result.
.PP
Run \fBezdelivery demo\fR to see one whole order, step by step.
"#;

/// The sections after the commands.
const SECTIONS: &str = r#".SH ENVIRONMENT
.TP
\fBEZDELIVERY_DB\fR
The database, as \fB\-\-db\fR: a file, or a postgres:// (postgresql://) URL for PostgreSQL; its password is never printed.
.TP
\fBEZDELIVERY_CONFIG\fR
The config file, as \fB\-\-config\fR.
.TP
\fBEZDELIVERY_TOKENS\fR
The tokens file of \fBserve\fR, as its \fB\-\-tokens\fR.
.TP
\fBXDG_DATA_HOME\fR
On Linux, the data folder that holds the default database.
.TP
\fBNO_COLOR\fR
When set and not empty, human output has no colour (see https://no\-color.org). Output that is not a terminal never has colour.
.TP
\fBEZDELIVERY_KAKAO_TOKEN\fR
The KakaoTalk notifier's token; never read from arguments, never printed.
.SH FILES
.TP
\fI$XDG_DATA_HOME/ezdelivery/ezdelivery.db\fR
The default database (\fI~/.local/share/ezdelivery/ezdelivery.db\fR when XDG_DATA_HOME is unset; \fI~/Library/Application Support/ezdelivery/\fR on macOS, \fI%APPDATA%\eezdelivery\e\fR on Windows), created on first use.
.TP
\fI$XDG_DATA_HOME/ezdelivery/ezdelivery\-demo.db\fR
The database of \fBezdelivery demo\fR, replaced on each run.
.SH SIGNALS
\fBrelay \-\-watch\fR stops cleanly on SIGTERM or SIGINT: the gateway call in flight is finished and recorded, nothing new is started, and it exits 0 with its summary. A second signal ends it at once (exit 143 or 130). \fBserve\fR stops cleanly on SIGTERM or SIGINT too: it stops accepting, ends live event streams, lets the requests in flight finish (at most \fBtimeout_ms\fR) and exits 0. Other commands do not handle signals.
.SH EXIT STATUS
.TP
\fB0\fR
Done.
.TP
\fB1\fR
internal: storage or unexpected failure; a \fBdb copy\fR that did not verify (nothing committed).
.TP
\fB2\fR
invalid_input: bad arguments or values; a \fBdb copy\fR target that holds rows or is the source itself (left untouched).
.TP
\fB3\fR
not_found: no such store, menu, order or rider.
.TP
\fB4\fR
invalid_state: the state machine refuses (cancel after departure, cook an unpaid order, order from a closed store).
.TP
\fB5\fR
declined: the payment was declined; the order stays pending_payment.
.TP
\fB6\fR
unavailable: a gateway is down, timed out, its answer could not be read, or its breaker is open; the order is kept and the work queued; try again later.
.TP
\fB7\fR
money_moved: the gateway took the money and then the command failed (recording it, or writing the result); do not pay again; the error names the order.
.PP
With \fB\-\-json\fR a failure prints one object {"error":{"kind":...,"message":...}} on standard error, with "order_id" when it is about an order's money (money_moved, declined, and unavailable when the order was kept with its payment or charge queued).
.SH CONFIGURATION
The \fB\-\-config\fR file is TOML; every section and key is optional, and an unknown key is an error.
.TP
\fBlocale\fR = "ko" | "en"
The language of messages.
.TP
\fB[payment]\fR, \fB[charge]\fR: \fBadapter\fR = "sandbox" | "http", \fBurl\fR, \fBtimeout_ms\fR (1 to 60000, default 610), \fBname\fR (http only; default: the url)
The gateways. http speaks JSON with an Idempotency\-Key header: POST {url}/payments, {url}/payments/{id}/cancel, {url}/deliveryCharges, {url}/deliveryCharges/{id}/cancel. Each payment and charge records its gateway's name: a call the gateway may have acted on, and every refund, is only ever made through a gateway of that name (give a moved service its old name).
.TP
\fB[payment.sandbox]\fR, \fB[charge.sandbox]\fR: \fBlatency_ms\fR, \fBunavailable\fR, \fBdecline_cards\fR
The sandbox gateway's behaviour: slowness, an outage, cards to decline.
.TP
\fB[breaker]\fR: \fBfailure_threshold\fR (default 5), \fBopen_ms\fR (default 30000)
The circuit breakers of the gateways and notifier channels.
.TP
\fB[retry]\fR: \fBbase_ms\fR (1000), \fBmax_ms\fR (300000), \fBlease_ms\fR (60000), \fBattention_after\fR (10), \fBmessage_tries\fR (20)
Back\-off of queued calls and messages; how long a claim on a gateway call lasts (more than twice every timeout_ms); answers in a row that settle nothing (5xx, no answer in time, an unreadable 2xx) before a payment or charge needs attention; failed tries before a message is parked as dead.
.TP
\fB[relay]\fR: \fBinterval_ms\fR (1000), \fBretention_days\fR (7)
\fBrelay \-\-watch\fR: the wait after a pass that settled nothing (\fB\-\-interval\fR overrides it); how long delivered messages are kept before the worker purges them (0: purge every delivered message).
.TP
\fB[storage]\fR: \fBsynchronous\fR = "full" | "normal"; \fBpool_size\fR (8)
How hard SQLite works to keep each commit on disk; how many connections to PostgreSQL a process keeps open at most (1 to 64).
.TP
\fB[serve]\fR: \fBbody_limit_bytes\fR (65536), \fBtimeout_ms\fR (30000), \fBmax_requests\fR (256), \fBmax_connections\fR (512), \fBidle_timeout_ms\fR (75000)
\fBserve\fR's limits: the largest request body (413 above); how long a request may take before it is answered 503; requests handled at once and connections open at once (more are answered 503); how long a connection may go without a whole request head, or without taking any of an answer, before it is closed.
.TP
\fB[[notify]]\fR: \fBkind\fR = "console" | "jsonl" (\fBpath\fR) | "webhook" (\fBurl\fR, \fBtimeout_ms\fR) | "kakao" (\fBbase_url\fR, \fBtimeout_ms\fR; token from EZDELIVERY_KAKAO_TOKEN); \fBname\fR
Zero or more notification channels; none: the console.
.SH EXAMPLES
.nf
.RS
ezdelivery demo
ezdelivery store add \-\-name 교촌치킨 \-\-owner park
ezdelivery menu add \-\-store 1 \-\-name 후라이드 \-\-price 18000
ezdelivery order \-\-store 1 \-\-customer kim \-\-item 후라이드:2 \-\-pay
ezdelivery status 1
ezdelivery events \-\-follow \-\-format cloudevents
ezdelivery \-\-db orders.db db copy \-\-to orders\-copy.db
ezdelivery \-\-db orders.db db copy \-\-to postgres://ezdelivery@localhost/ezdelivery
.RE
.fi
"#;
