//! The `fixture-migrate` command (`migrate::cli` over the fixture's four units) run as a
//! process against a real server, in both modes: what it prints, its JSON, its exit codes.

#[path = "../../support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use mongodb::bson::{doc, DateTime, Document};
use serde_json::Value;
use support::{test_db, Mode, TestDb};

/// What one invocation did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Standard output as the one JSON object `--json` prints.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {self:?}"))
    }

    fn expect(self, code: i32) -> Self {
        assert_eq!(self.code, code, "exit code of {self:#?}");
        self
    }
}

/// The fixture command, its knobs cleared.
fn fixture() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fixture-migrate"));
    command
        .env_remove("FIXTURE_FAIL")
        .env_remove("FIXTURE_FAIL_IN")
        .env_remove("FIXTURE_STRICT")
        .env_remove("FIXTURE_BATCH")
        .env_remove("FIXTURE_ALWAYS")
        .env_remove("FIXTURE_TOLERANT")
        .env_remove("FIXTURE_SHARED")
        .env_remove("FIXTURE_FAIL_UNDO");
    command
}

/// Runs `command` with an empty stdin that is not a terminal.
fn output_of(command: &mut Command) -> Run {
    let output = command
        .stdin(Stdio::null())
        .output()
        .expect("running fixture-migrate");
    Run {
        code: output.status.code().expect("an exit code"),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

/// Runs the fixture against the test's database with `args` and `env`.
fn migrate_with(t: &TestDb, args: &[&str], env: &[(&str, &str)]) -> Run {
    output_of(
        fixture()
            .args(["--uri", &t.uri, "--database", t.db.name()])
            .args(args)
            .envs(env.iter().copied()),
    )
}

fn migrate(t: &TestDb, args: &[&str]) -> Run {
    migrate_with(t, args, &[])
}

/// Runs the fixture against the test's database with its standard output a pipe that is
/// closed before the command writes to it, as `migrate run | head -0` leaves it.
fn migrate_into_closed_pipe(t: &TestDb, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut child = fixture()
        .args(["--uri", &t.uri, "--database", t.db.name()])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running fixture-migrate");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("fixture-migrate ends");
    Run {
        code: output.status.code().expect("an exit code"),
        stdout: String::new(),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

/// The `state` of every unit in `status --json`, in order.
fn states(t: &TestDb) -> Vec<String> {
    let status = migrate(t, &["--json", "status"]).expect(0).json();
    status["units"]
        .as_array()
        .expect("units")
        .iter()
        .map(|u| {
            format!(
                "{} {}",
                u["id"].as_str().unwrap(),
                u["state"].as_str().unwrap()
            )
        })
        .collect()
}

/// `id outcome` of every unit in the `units` of a `run` or `undo` JSON object.
fn outcomes(value: &Value) -> Vec<String> {
    value["units"]
        .as_array()
        .unwrap_or_else(|| panic!("units in {value}"))
        .iter()
        .map(|u| {
            format!(
                "{} {}",
                u["id"].as_str().unwrap(),
                u["outcome"].as_str().unwrap()
            )
        })
        .collect()
}

/// Holds the lock of `t`'s database as `another-host-runner`, for ten minutes.
async fn hold_lock(t: &TestDb) {
    let expires = SystemTime::now() + Duration::from_secs(600);
    t.collection("mongockLock")
        .insert_one(doc! {
            "key": "DEFAULT_KEY",
            "status": "LOCK_HELD",
            "owner": "another-host-runner",
            "expiresAt": DateTime::from_system_time(expires),
        })
        .await
        .unwrap();
}

async fn widget(t: &TestDb, id: i32) -> Option<Document> {
    t.collection("widgets")
        .find_one(doc! { "_id": id })
        .await
        .expect("find")
}

/// Declares each test once per server mode.
macro_rules! both_modes {
    ($($test:ident),* $(,)?) => {
        mod replica_set {
            $(#[tokio::test]
            async fn $test() {
                super::$test(super::Mode::ReplicaSet).await
            })*
        }
        mod standalone {
            $(#[tokio::test]
            async fn $test() {
                super::$test(super::Mode::Standalone).await
            })*
        }
    };
}

both_modes!(
    status_check_fails_until_run_applies_everything,
    json_objects_have_their_documented_shape,
    run_up_to_stops_and_undo_to_makes_units_pending_again,
    undo_refuses_without_yes_when_stdin_is_not_a_terminal,
    unlock_releases_a_live_foreign_lock_only_with_force,
    a_failing_unit_exits_1_with_its_cause,
    drift_fails_the_check_and_a_strict_run_until_accepted,
    usage_errors_exit_2,
    profiles_select_units,
    databases_selects_by_glob_and_reports_each,
    one_failing_database_sets_the_exit_code,
    databases_usage_errors_exit_2,
    a_batch_unit_runs_to_its_summary_and_leaves_json_alone,
    status_lists_the_batch_checkpoints_left_in_the_database,
    status_marks_the_complete_checkpoint_of_a_unit_that_runs_again_left_over,
    a_closed_stdout_neither_panics_nor_stops_the_command,
    a_unit_failing_without_fail_fast_is_named_once,
    a_failed_undo_shows_what_it_undid_and_where_it_stopped,
    unlock_force_deletes_a_corrupt_lock_document,
    an_id_shared_by_two_authors_needs_the_author,
    fields_a_history_row_leaves_out_stay_absent,
    status_check_fails_on_history_a_run_refuses,
);

async fn status_check_fails_until_run_applies_everything(mode: Mode) {
    let t = test_db(mode, "cli_status_check").await;
    let before = migrate(&t, &["status", "--check"]).expect(4);
    assert!(
        before.stdout.contains("not up to date: 3 pending"),
        "{before:?}"
    );
    assert!(before
        .stdout
        .lines()
        .any(|l| l.starts_with("001") && l.contains("create-widgets") && l.contains("pending")));

    let run = migrate(&t, &["run"]).expect(0);
    let applied: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("applied    0"))
        .collect();
    assert_eq!(applied.len(), 3, "{run:?}");
    assert!(applied[0].contains("001  create-widgets"), "{applied:?}");
    assert!(applied[2].contains("003  audit-widgets"), "{applied:?}");
    assert!(run.stdout.contains("applied 3 change units in"), "{run:?}");
    assert_eq!(widget(&t, 1).await.unwrap().get_i32("price"), Ok(10));

    let after = migrate(&t, &["status", "--check"]).expect(0);
    assert!(after.stdout.contains("up to date"), "{after:?}");
    let again = migrate(&t, &["run"]).expect(0);
    assert!(
        again
            .stdout
            .contains("nothing to apply: the database is up to date"),
        "{again:?}"
    );
    t.finish().await;
}

async fn json_objects_have_their_documented_shape(mode: Mode) {
    let t = test_db(mode, "cli_json").await;
    let plan = migrate(&t, &["--json", "plan"]).expect(0).json();
    assert_eq!(plan["command"], "plan");
    assert_eq!(plan["pending"], 3);
    assert_eq!(plan["units"][0]["action"], "run");
    assert_eq!(plan["units"][3]["skip_reason"]["reason"], "profile");

    let run = migrate(&t, &["--json", "run"]).expect(0);
    assert!(
        !run.stdout.contains('✓'),
        "no progress lines with --json: {run:?}"
    );
    let run = run.json();
    assert_eq!(run["command"], "run");
    assert_eq!(run["dry_run"], false);
    assert_eq!(run["status"], "completed");
    let outcomes: Vec<&str> = run["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["executed", "executed", "executed", "skipped"]);
    assert!(run["units"][0]["elapsed_ms"].is_u64());
    assert!(run["execution_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));

    let status = migrate(&t, &["--json", "status"]).expect(0).json();
    assert_eq!(status["up_to_date"], true);
    let unit = &status["units"][0];
    assert_eq!(unit["state"], "executed");
    assert!(
        unit["at"].as_str().is_some_and(|at| at.ends_with('Z')),
        "{unit}"
    );
    assert!(
        unit["millis"].is_i64() && unit["host"].is_string(),
        "{unit}"
    );
    assert_eq!(unit["drift"], Value::Null);
    assert_eq!(status["units"][3]["state"], "skipped");
    assert_eq!(status["unknown"], serde_json::json!([]));
    assert_eq!(status["checkpoints"], serde_json::json!([]));

    let history = migrate(&t, &["--json", "history", "--limit", "2"])
        .expect(0)
        .json();
    let entries = history["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["changeId"], "audit-widgets", "newest first");
    assert_eq!(entries[0]["state"], "EXECUTED");
    assert_eq!(entries[0]["type"], "EXECUTION");

    let unlock = migrate(&t, &["--json", "unlock"]).expect(0).json();
    assert_eq!(unlock["lock"], "free");
    let validate = migrate(&t, &["--json", "validate"]).expect(0).json();
    assert_eq!(validate["valid"], true);
    assert_eq!(validate["units"], 4);
    let accepted = migrate(&t, &["--json", "accept-checksums"])
        .expect(0)
        .json();
    assert_eq!(accepted["accepted"], serde_json::json!([]));

    let failed = migrate(&t, &["--json", "undo", "--to", "nope", "--yes"]).expect(2);
    let failed = failed.json();
    assert_eq!(failed["command"], "undo");
    assert_eq!(failed["exit_code"], 2);
    assert_eq!(failed["error"]["kind"], "usage");
    assert_eq!(
        failed["error"]["message"],
        "no change unit `nope` in this binary"
    );
    t.finish().await;
}

async fn run_up_to_stops_and_undo_to_makes_units_pending_again(mode: Mode) {
    let t = test_db(mode, "cli_up_to_undo").await;
    let dry = migrate(
        &t,
        &["--json", "run", "--up-to", "price-widgets", "--dry-run"],
    )
    .expect(0)
    .json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["pending"], 2);
    assert_eq!(dry["units"][2]["skip_reason"]["target"], "price-widgets");
    assert!(t.history().await.is_empty(), "a dry run writes nothing");

    let run = migrate(&t, &["run", "--up-to", "price-widgets"]).expect(0);
    assert!(
        run.stdout
            .contains("1 ordered after `price-widgets` left for later"),
        "{run:?}"
    );
    assert_eq!(
        states(&t),
        [
            "create-widgets executed",
            "price-widgets executed",
            "audit-widgets pending",
            "dev-widgets skipped"
        ]
    );
    migrate(&t, &["run"]).expect(0);

    let undo = migrate(&t, &["undo", "--to", "price-widgets", "--yes"]).expect(0);
    let undone: Vec<&str> = undo
        .stdout
        .lines()
        .filter(|l| l.contains("undone"))
        .collect();
    assert_eq!(undone.len(), 2, "{undo:?}");
    assert!(
        undone[0].contains("audit-widgets"),
        "newest first: {undone:?}"
    );
    assert!(undo.stdout.contains("undid 2 change units"), "{undo:?}");
    assert_eq!(
        states(&t),
        [
            "create-widgets executed",
            "price-widgets rolled_back",
            "audit-widgets rolled_back",
            "dev-widgets skipped"
        ]
    );
    let bolt = widget(&t, 1).await.expect("create-widgets stays applied");
    assert!(!bolt.contains_key("price"), "price-widgets undone: {bolt}");
    migrate(&t, &["status", "--check"]).expect(4);

    let all = migrate(&t, &["--json", "undo", "--all", "--yes"])
        .expect(0)
        .json();
    assert_eq!(all["command"], "undo");
    assert_eq!(all["units"][0]["id"], "create-widgets");
    assert_eq!(all["units"][0]["outcome"], "rolled_back");
    assert!(widget(&t, 1).await.is_none());
    t.finish().await;
}

async fn undo_refuses_without_yes_when_stdin_is_not_a_terminal(mode: Mode) {
    let t = test_db(mode, "cli_undo_refuses").await;
    migrate(&t, &["run"]).expect(0);
    let refused = migrate(&t, &["undo", "--all"]).expect(2);
    assert!(
        refused
            .stderr
            .starts_with("error: `undo` changes the database")
            && refused.stderr.contains("pass `--yes`"),
        "{refused:?}"
    );
    assert!(refused.stdout.is_empty(), "{refused:?}");
    assert!(states(&t).iter().take(3).all(|s| s.ends_with(" executed")));
    assert!(widget(&t, 1).await.is_some());
    t.finish().await;
}

async fn unlock_releases_a_live_foreign_lock_only_with_force(mode: Mode) {
    let t = test_db(mode, "cli_unlock").await;
    hold_lock(&t).await;

    let locked = migrate(&t, &["run"]).expect(3);
    assert!(
        locked
            .stderr
            .starts_with("error: the migration lock is held by"),
        "{locked:?}"
    );
    assert!(t.history().await.is_empty(), "nothing ran");
    let json = migrate(&t, &["--json", "run"]).expect(3).json();
    assert_eq!(json["error"]["kind"], "locked");

    let held = migrate(&t, &["unlock"]).expect(3);
    assert!(
        held.stdout
            .contains("the migration lock is held by `another-host-runner`"),
        "{held:?}"
    );
    assert_eq!(t.documents("mongockLock").await.len(), 1, "left in place");

    let forced = migrate(&t, &["--json", "unlock", "--force"])
        .expect(0)
        .json();
    assert_eq!(forced["lock"], "released");
    assert_eq!(forced["owner"], "another-host-runner");
    assert_eq!(forced["reason"], "forced");
    assert!(t.documents("mongockLock").await.is_empty());
    migrate(&t, &["run"]).expect(0);
    t.finish().await;
}

async fn a_failing_unit_exits_1_with_its_cause(mode: Mode) {
    let t = test_db(mode, "cli_failing_unit").await;
    let fail = [("FIXTURE_FAIL", "price-widgets")];
    let failed = migrate_with(&t, &["run"], &fail).expect(1);
    assert_eq!(
        failed.stderr,
        "error: change unit `price-widgets` failed in `#[execution]`\n  \
         caused by: the price list is unavailable\n",
    );
    assert!(
        failed.stdout.contains("applied    001  create-widgets")
            && failed.stdout.contains("failed     002  price-widgets"),
        "{failed:?}"
    );
    let json = migrate_with(&t, &["--json", "run"], &fail).expect(1).json();
    assert_eq!(json["error"]["kind"], "failed");
    assert_eq!(
        json["error"]["causes"],
        serde_json::json!(["the price list is unavailable"])
    );
    // The second run has nothing to apply before it fails again.
    assert_eq!(outcomes(&json), ["price-widgets failed"], "{json}");
    assert_eq!(
        json["units"][0]["error"],
        "change unit `price-widgets` failed in `#[execution]`: the price list is unavailable"
    );
    assert_eq!(
        states(&t)[..2],
        ["create-widgets executed", "price-widgets failed"]
    );
    t.finish().await;
}

async fn drift_fails_the_check_and_a_strict_run_until_accepted(mode: Mode) {
    let t = test_db(mode, "cli_drift").await;
    migrate(&t, &["run", "--up-to", "price-widgets"]).expect(0);
    // As if `create-widgets` had been edited since it ran.
    t.collection("mongockChangeLog")
        .update_one(
            doc! { "changeId": "create-widgets" },
            doc! { "$set": { "checksum": "0000000000000000" } },
        )
        .await
        .unwrap();

    let check = migrate(&t, &["status", "--check"]).expect(4);
    assert!(
        check
            .stdout
            .contains("code changed since it ran (checksum 0000000000000000 ->"),
        "{check:?}"
    );
    let strict = [("FIXTURE_STRICT", "1")];
    let stopped = migrate_with(&t, &["run"], &strict).expect(4);
    assert_eq!(
        stopped.stderr,
        "error: change units changed since they ran: `create-widgets`; revert the edits, or \
         record the new code with `accept-checksums` once it is reviewed\n",
    );
    assert_eq!(states(&t)[2], "audit-widgets pending", "nothing ran");

    // Under the default policy the run goes on, and says what drifted.
    let warned = migrate(&t, &["run"]).expect(0);
    assert!(
        warned.stderr.starts_with(
            "warning: change unit `create-widgets` changed since it ran; review the edit, then \
             accept it with `accept-checksums` (recorded: 0000000000000000, current: "
        ),
        "{warned:?}"
    );

    let accepted = migrate(&t, &["accept-checksums"]).expect(0);
    assert!(
        accepted.stdout.contains(
            "recorded the new checksum of `create-widgets` by `fixture` (0000000000000000 ->"
        ),
        "{accepted:?}"
    );
    migrate_with(&t, &["run"], &strict).expect(0);
    migrate(&t, &["status", "--check"]).expect(0);
    t.finish().await;
}

async fn usage_errors_exit_2(mode: Mode) {
    let t = test_db(mode, "cli_usage").await;
    // Without `--uri`/`--database`, `MONGODB_URI` set to `uri` or unset.
    let bare = |args: &[&str], uri: Option<&str>| {
        let mut command = fixture();
        command.args(args).env_remove("MONGODB_URI");
        if let Some(uri) = uri {
            command.env("MONGODB_URI", uri);
        }
        output_of(&mut command)
    };

    let no_command = bare(&[], None).expect(2);
    assert!(no_command.stderr.contains("Usage:"), "{no_command:?}");
    let no_target = bare(&["undo", "--yes"], None).expect(2);
    assert!(
        no_target.stderr.contains("--to <ID>|--all"),
        "{no_target:?}"
    );
    let no_uri = bare(&["status"], None).expect(2);
    assert_eq!(
        no_uri.stderr,
        "error: no MongoDB connection string: pass `--uri` or set `MONGODB_URI`\n"
    );
    let no_database = bare(&["status"], Some(&t.uri)).expect(2);
    assert!(
        no_database
            .stderr
            .starts_with("error: no database: pass `--database`"),
        "{no_database:?}"
    );
    let bad_uri = bare(&["status", "--uri", "postgres://x"], None).expect(2);
    assert!(
        bad_uri
            .stderr
            .starts_with("error: invalid MongoDB connection string\n  caused by: "),
        "{bad_uri:?}"
    );
    // `validate` reads no database, so it needs neither.
    bare(&["validate"], None).expect(0);

    let unknown = migrate(&t, &["run", "--up-to", "nope"]).expect(2);
    assert_eq!(
        unknown.stderr,
        "error: no change unit `nope` in this binary\n"
    );
    t.finish().await;
}

async fn profiles_select_units(mode: Mode) {
    let t = test_db(mode, "cli_profiles").await;
    let plan = migrate(&t, &["--json", "plan", "--profile", "dev"])
        .expect(0)
        .json();
    assert_eq!(plan["pending"], 4);
    migrate(&t, &["run", "--profile", "default", "--profile", "dev"]).expect(0);
    assert!(widget(&t, 99).await.is_some(), "dev-widgets ran");
    t.finish().await;
}

/// Three databases on the server for `mode`, each holding a document so that
/// `listDatabases` lists it: two whose names match the returned pattern, in name order, and
/// one that does not.
async fn three_databases(mode: Mode, test: &str) -> ([TestDb; 2], TestDb, String) {
    let prefix = format!("{test}_{mode:?}");
    let mut picked = [
        test_db(mode, &format!("{prefix}_in")).await,
        test_db(mode, &format!("{prefix}_in")).await,
    ];
    picked.sort_by(|a, b| a.db.name().cmp(b.db.name()));
    let other = test_db(mode, &format!("{prefix}_out")).await;
    for t in picked.iter().chain([&other]) {
        t.collection("seed")
            .insert_one(doc! { "seeded": true })
            .await
            .unwrap();
    }
    // `mt_<test>_<mode>_in_<pid>_<n>`: `?` stands for the `i` of `in`.
    let pid = std::process::id();
    let glob = format!("mt_{prefix}_?n_{pid}_*");
    (picked, other, glob)
}

/// Runs the fixture with `--databases glob` on the server of `t`.
fn across(t: &TestDb, glob: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    output_of(
        fixture()
            .args(["--uri", &t.uri, "--databases", glob])
            .args(args)
            .envs(env.iter().copied()),
    )
}

/// The per-database entries of a `--databases --json` object, with their names.
fn entries(value: &Value) -> Vec<(String, Value)> {
    value["databases"]
        .as_array()
        .expect("databases")
        .iter()
        .map(|e| {
            (
                e["database"].as_str().expect("database").to_owned(),
                e.clone(),
            )
        })
        .collect()
}

async fn databases_selects_by_glob_and_reports_each(mode: Mode) {
    let (picked, other, glob) = three_databases(mode, "cli_glob").await;
    let names = picked.each_ref().map(|t| t.db.name().to_owned());

    let run = across(&picked[0], &glob, &["run", "--concurrency", "2"], &[]).expect(0);
    for name in &names {
        let applied = run
            .stdout
            .lines()
            .filter(|l| l.starts_with(name.as_str()) && l.contains("✓ applied"))
            .count();
        assert_eq!(applied, 3, "three unit lines for `{name}`: {run:?}");
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with(name.as_str()) && l.contains("completed  3")),
            "a table row for `{name}`: {run:?}"
        );
    }
    assert!(
        run.stdout.contains("DATABASE") && run.stdout.contains("2 databases: 2 completed"),
        "{run:?}"
    );
    assert!(!run.stdout.contains(other.db.name()), "{run:?}");
    assert!(
        other.history().await.is_empty(),
        "the third database is left alone"
    );
    for t in &picked {
        assert_eq!(t.history().await.len(), 3);
    }

    let status = across(&picked[0], &glob, &["--json", "status", "--check"], &[])
        .expect(0)
        .json();
    assert_eq!(status["command"], "status");
    assert_eq!(status["exit_code"], 0);
    let each = entries(&status);
    assert_eq!(
        each.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        names
    );
    for (_, entry) in &each {
        assert_eq!(entry["command"], "status");
        assert_eq!(entry["exit_code"], 0);
        assert_eq!(entry["up_to_date"], true);
        assert_eq!(entry["units"][0]["state"], "executed");
    }

    let again = across(&picked[0], &glob, &["--json", "run"], &[])
        .expect(0)
        .json();
    for (_, entry) in entries(&again) {
        assert_eq!(entry["command"], "run");
        assert_eq!(entry["status"], "completed");
        assert_eq!(entry["units"][0]["outcome"], "skipped");
    }

    let human = across(&picked[0], &glob, &["history", "--limit", "1"], &[]).expect(0);
    for name in &names {
        assert!(
            human.stdout.contains(&format!("database `{name}`\n")),
            "a section per database: {human:?}"
        );
    }
    let undo = across(&picked[0], &glob, &["undo", "--all", "--yes"], &[]).expect(0);
    assert!(undo.stdout.contains("2 databases: 2 completed"), "{undo:?}");
    for t in &picked {
        assert!(widget(t, 1).await.is_none(), "undone in {}", t.db.name());
    }
    for t in picked.into_iter().chain([other]) {
        t.finish().await;
    }
}

async fn one_failing_database_sets_the_exit_code(mode: Mode) {
    let (picked, other, glob) = three_databases(mode, "cli_one_fails").await;
    let [first, second] = picked.each_ref().map(|t| t.db.name().to_owned());
    let fail = [
        ("FIXTURE_FAIL", "price-widgets"),
        ("FIXTURE_FAIL_IN", first.as_str()),
    ];

    // Fail-fast, one at a time: the first database fails, the second does not start.
    let stopped = across(
        &picked[0],
        &glob,
        &["--json", "run", "--fail-fast", "--concurrency", "1"],
        &fail,
    )
    .expect(1)
    .json();
    assert_eq!(stopped["exit_code"], 1);
    let each = entries(&stopped);
    assert_eq!(each[0].1["error"]["kind"], "failed");
    assert_eq!(each[1].1["error"]["kind"], "not_run");
    assert!(picked[1].history().await.is_empty(), "{stopped}");

    let run = across(&picked[0], &glob, &["run"], &fail).expect(1);
    assert_eq!(
        run.stderr,
        format!(
            "error: in `{first}`: change unit `price-widgets` failed in `#[execution]`\n  \
             caused by: the price list is unavailable\n"
        )
    );
    let row = |name: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(name) && !l.contains('✓') && !l.contains('✗'))
            .unwrap_or_else(|| panic!("a row for `{name}`: {run:?}"))
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        row(&first).starts_with("failed 0 2 change unit `price-widgets` failed"),
        "{run:?}"
    );
    assert_eq!(row(&second), "completed 3 0", "{run:?}");
    assert_eq!(picked[1].history().await.len(), 3, "the other database ran");

    let json = across(&picked[0], &glob, &["--json", "run"], &fail)
        .expect(1)
        .json();
    let each = entries(&json);
    assert_eq!(each[0].1["exit_code"], 1);
    assert_eq!(
        each[0].1["error"]["causes"],
        serde_json::json!(["the price list is unavailable"])
    );
    assert_eq!(each[1].1["exit_code"], 0);
    assert_eq!(each[1].1["status"], "completed");

    // Not up to date (4) in one database, up to date in the other: 4.
    across(&picked[0], &glob, &["status", "--check"], &[]).expect(4);

    // A held lock (3) in the second database and a failure (1) in the first: 1; the lock
    // alone: 3. The second database has a unit to run again, so that the run takes the lock.
    migrate(&picked[1], &["undo", "--to", "audit-widgets", "--yes"]).expect(0);
    hold_lock(&picked[1]).await;
    let both = across(&picked[0], &glob, &["--json", "run"], &fail)
        .expect(1)
        .json();
    assert_eq!(entries(&both)[1].1["error"]["kind"], "locked");
    assert_eq!(entries(&both)[1].1["exit_code"], 3);
    across(&picked[0], &glob, &["run"], &[]).expect(3);
    assert_eq!(
        states(&picked[0])[..2],
        ["create-widgets executed", "price-widgets executed"]
    );
    for t in picked.into_iter().chain([other]) {
        t.finish().await;
    }
}

async fn databases_usage_errors_exit_2(mode: Mode) {
    let t = test_db(mode, "cli_databases_usage").await;
    let glob = format!("{}_nothing_*", t.db.name());
    let none = across(&t, &glob, &["status"], &[]).expect(2);
    assert!(
        none.stderr
            .starts_with(&format!("error: no database matches `{glob}`")),
        "{none:?}"
    );
    let json = across(&t, &glob, &["--json", "run"], &[]).expect(2).json();
    assert_eq!(json["command"], "run");
    assert_eq!(json["error"]["kind"], "usage");

    let both = migrate(&t, &["--databases", "mt_*", "status"]).expect(2);
    assert!(
        both.stderr
            .starts_with("error: `--database` and `--databases` exclude each other"),
        "{both:?}"
    );
    let alone = migrate(&t, &["run", "--fail-fast"]).expect(2);
    assert!(
        alone
            .stderr
            .contains("`--concurrency` and `--fail-fast` apply only with `--databases`"),
        "{alone:?}"
    );
    across(&t, "mt_*", &["run", "--concurrency", "0"], &[]).expect(2);
    t.finish().await;
}

async fn a_batch_unit_runs_to_its_summary_and_leaves_json_alone(mode: Mode) {
    // The spinner and its batch progress appear only on a terminal; piped, the unit's line
    // and the summary are all there is.
    let t = test_db(mode, "cli_batch").await;
    let batch = [("FIXTURE_BATCH", "95")];
    let run = migrate_with(&t, &["run"], &batch).expect(0);
    assert!(
        run.stdout.contains("applied    005  batch-gadgets"),
        "{run:?}"
    );
    assert!(run.stdout.contains("applied 4 change units in"), "{run:?}");
    assert!(
        !run.stdout.contains("/s"),
        "no progress text when piped: {run:?}"
    );
    let marked = t
        .collection("gadgets")
        .count_documents(doc! { "marked": true })
        .await
        .unwrap();
    assert_eq!(marked, 95);

    migrate_with(&t, &["undo", "--to", "batch-gadgets", "--yes"], &batch).expect(0);
    let json = migrate_with(&t, &["--json", "run"], &batch).expect(0);
    let json = json.json();
    assert_eq!(json["units"][4]["id"], "batch-gadgets");
    assert_eq!(json["units"][4]["outcome"], "executed");
    t.finish().await;
}

async fn status_lists_the_batch_checkpoints_left_in_the_database(mode: Mode) {
    let t = test_db(mode, "cli_checkpoints").await;
    migrate(&t, &["run"]).expect(0);
    let applied_by = t
        .history()
        .await
        .into_iter()
        .find(|e| e.get_str("changeId") == Ok("create-widgets"))
        .and_then(|e| e.get_str("executionId").ok().map(str::to_owned))
        .unwrap();
    let checkpoints = t.collection("migrateBatchCheckpoints");
    checkpoints
        .insert_many([
            // A step in progress: its run recorded nothing.
            doc! {
                "_id": "widgets-backfill:app.widgets",
                "namespace": "app.widgets",
                "lastId": 499_i64,
                "done": 500_i64,
                "executionId": "run-1",
                "changeId": "audit-widgets",
                "step": "rollback_execution",
            },
            // Complete, from before checkpoints named their unit and step.
            doc! {
                "_id": "a-complete-one",
                "lastId": 9_i64,
                "done": 10_i64,
                "complete": true,
                "executionId": "run-2",
            },
            // Outlived its cleanup: the run that completed it recorded the unit.
            doc! {
                "_id": "create-widgets:app.widgets",
                "namespace": "app.widgets",
                "lastId": 3_i64,
                "done": 3_i64,
                "complete": true,
                "executionId": &applied_by,
                "changeId": "create-widgets",
                "step": "execution",
            },
        ])
        .await
        .unwrap();

    let status = migrate(&t, &["--json", "status"]).expect(0).json();
    assert_eq!(
        status["checkpoints"],
        serde_json::json!([
            {
                "name": "a-complete-one", "namespace": null, "last_id": 9, "done": 10,
                "complete": true, "execution_id": "run-2", "change_id": null, "step": null,
                "left_over": false,
            },
            {
                "name": "create-widgets:app.widgets", "namespace": "app.widgets",
                "last_id": 3, "done": 3, "complete": true, "execution_id": applied_by,
                "change_id": "create-widgets", "step": "execution", "left_over": true,
            },
            {
                "name": "widgets-backfill:app.widgets", "namespace": "app.widgets",
                "last_id": 499, "done": 500, "complete": false, "execution_id": "run-1",
                "change_id": "audit-widgets", "step": "rollback_execution", "left_over": false,
            },
        ])
    );

    let human = migrate(&t, &["status"]).expect(0);
    for line in [
        "batch checkpoints in `migrateBatchCheckpoints`:".to_owned(),
        "`a-complete-one`: 10 documents done up to _id 9, complete (removed once its unit is \
         recorded), last moved by run run-2"
            .to_owned(),
        format!(
            "`create-widgets:app.widgets` on `app.widgets`: 3 documents done up to _id 3, left \
             over (its run recorded the step; safe to delete), last moved by `#[execution]` of \
             `create-widgets` in run {applied_by}"
        ),
        "`widgets-backfill:app.widgets` on `app.widgets`: 500 documents done up to _id 499, \
         last moved by `#[rollback_execution]` of `audit-widgets` in run run-1"
            .to_owned(),
    ] {
        assert!(human.stdout.contains(&line), "{line:?} in {}", human.stdout);
    }
    t.finish().await;
}

async fn status_marks_the_complete_checkpoint_of_a_unit_that_runs_again_left_over(mode: Mode) {
    let t = test_db(mode, "cli_checkpoints_again").await;
    let always = [("FIXTURE_ALWAYS", "1")];
    migrate_with(&t, &["run"], &always).expect(0);
    // A rerun is not recorded: one that completed its walk and stopped before its cleanup
    // leaves a complete checkpoint that no history entry explains; one stopped mid-walk
    // leaves a checkpoint the next rerun resumes from.
    t.collection("migrateBatchCheckpoints")
        .insert_many([
            doc! {
                "_id": "count-runs:app.done",
                "namespace": "app.done",
                "lastId": 9_i64,
                "done": 10_i64,
                "complete": true,
                "executionId": "rerun-1",
                "changeId": "count-runs",
                "step": "execution",
            },
            doc! {
                "_id": "count-runs:app.halfway",
                "namespace": "app.halfway",
                "lastId": 4_i64,
                "done": 5_i64,
                "executionId": "rerun-2",
                "changeId": "count-runs",
                "step": "execution",
            },
        ])
        .await
        .unwrap();

    let status = migrate_with(&t, &["--json", "status"], &always)
        .expect(0)
        .json();
    let unit = &status["units"][4];
    assert_eq!(unit["id"], "count-runs");
    assert_eq!(unit["state"], "executed");
    assert_eq!(
        (&unit["pending"], &unit["run_always"], &unit["runs_again"]),
        (&false.into(), &true.into(), &true.into())
    );
    assert_eq!(status["units"][0]["runs_again"], false);
    let left_over: Vec<_> = status["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["left_over"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        left_over,
        [
            ("count-runs:app.done", true),
            ("count-runs:app.halfway", false)
        ]
    );

    let human = migrate_with(&t, &["status"], &always).expect(0);
    let line = "`count-runs:app.done` on `app.done`: 10 documents done up to _id 9, left over \
                (its unit runs again and starts over; safe to delete), last moved by \
                `#[execution]` of `count-runs` in run rerun-1";
    assert!(human.stdout.contains(line), "{line:?} in {}", human.stdout);

    // Without the unit in the binary nothing says it runs again.
    let status = migrate(&t, &["--json", "status"]).expect(0).json();
    assert_eq!(status["checkpoints"][0]["left_over"], false);
    t.finish().await;
}

async fn a_closed_stdout_neither_panics_nor_stops_the_command(mode: Mode) {
    let t = test_db(mode, "cli_closed_stdout").await;
    let run = migrate_into_closed_pipe(&t, &["run"], &[]).expect(0);
    assert!(run.stderr.is_empty(), "{run:?}");
    assert_eq!(
        states(&t)[..3],
        [
            "create-widgets executed",
            "price-widgets executed",
            "audit-widgets executed"
        ],
        "the run went on after its first line could not be written"
    );
    for args in [
        &["status"][..],
        &["status", "--check"],
        &["history"],
        &["--json", "history"],
        &["--json", "run"],
    ] {
        let run = migrate_into_closed_pipe(&t, args, &[]);
        assert!(!run.stderr.contains("panicked"), "{args:?}: {run:?}");
        run.expect(0);
    }
    // The command's own code stays: a failure is still 1, and said on standard error.
    migrate(&t, &["undo", "--all", "--yes"]).expect(0);
    let fail = [("FIXTURE_FAIL", "price-widgets")];
    let failed = migrate_into_closed_pipe(&t, &["run"], &fail).expect(1);
    assert!(
        failed
            .stderr
            .starts_with("error: change unit `price-widgets` failed"),
        "{failed:?}"
    );
    t.finish().await;
}

async fn a_unit_failing_without_fail_fast_is_named_once(mode: Mode) {
    let t = test_db(mode, "cli_tolerant").await;
    let env = [
        ("FIXTURE_TOLERANT", "1"),
        ("FIXTURE_FAIL", "tolerant-widgets"),
    ];
    let run = migrate_with(&t, &["run"], &env).expect(1);
    assert_eq!(
        run.stderr,
        "warning: change unit `tolerant-widgets` failed in `#[execution]`: the widgets are \
         tolerated; fail_fast is off, continuing\n",
    );
    assert!(
        run.stdout.ends_with(
            "; 1 failed\n  change unit `tolerant-widgets` failed in `#[execution]`: the widgets \
             are tolerated\n"
        ),
        "{run:?}"
    );
    t.finish().await;
}

async fn a_failed_undo_shows_what_it_undid_and_where_it_stopped(mode: Mode) {
    let t = test_db(mode, "cli_failed_undo").await;
    let fail = [("FIXTURE_FAIL_UNDO", "price-widgets")];
    migrate(&t, &["run"]).expect(0);
    let undo = migrate_with(&t, &["undo", "--all", "--yes"], &fail).expect(1);
    let lines: Vec<&str> = undo.stdout.lines().collect();
    assert!(
        lines.len() == 2
            && lines[0].starts_with("✓ undone     003  audit-widgets")
            && lines[1] == "✗ failed     002  price-widgets",
        "{undo:?}"
    );
    assert!(
        undo.stderr
            .starts_with("error: change unit `price-widgets` failed in `#[rollback_execution]`"),
        "{undo:?}"
    );

    migrate(&t, &["run"]).expect(0);
    let json = migrate_with(&t, &["--json", "undo", "--all", "--yes"], &fail)
        .expect(1)
        .json();
    assert_eq!(json["error"]["kind"], "failed");
    assert_eq!(
        outcomes(&json),
        ["audit-widgets rolled_back", "price-widgets failed"],
        "{json}"
    );
    assert_eq!(
        json["units"][1]["error"],
        "change unit `price-widgets` failed in `#[rollback_execution]`: the old prices are gone"
    );
    assert!(json["units"][0]["elapsed_ms"].is_u64(), "{json}");

    // A run that fails partway lists the units it applied first.
    migrate(&t, &["undo", "--all", "--yes"]).expect(0);
    let run = migrate_with(&t, &["--json", "run"], &[("FIXTURE_FAIL", "price-widgets")])
        .expect(1)
        .json();
    assert_eq!(
        outcomes(&run),
        ["create-widgets executed", "price-widgets failed"],
        "{run}"
    );
    t.finish().await;
}

async fn unlock_force_deletes_a_corrupt_lock_document(mode: Mode) {
    let t = test_db(mode, "cli_corrupt_lock").await;
    let locks = t.collection("mongockLock");
    let later = DateTime::from_system_time(SystemTime::now() + Duration::from_secs(600));
    let corrupt = [
        (
            doc! { "_id": 1, "key": "DEFAULT_KEY", "owner": "gone", "expiresAt": "tomorrow" },
            "field `expiresAt` is a string, expected a date",
        ),
        (
            doc! { "_id": 2, "key": "DEFAULT_KEY", "expiresAt": later },
            "field `owner`",
        ),
        (
            doc! { "_id": 3, "key": "DEFAULT_KEY", "owner": 5, "expiresAt": later },
            "field `owner` is an int32, expected a string",
        ),
        (
            doc! { "_id": 4, "key": "DEFAULT_KEY", "owner": "gone" },
            "field `expiresAt`",
        ),
    ];
    for (n, (lock, problem)) in corrupt.into_iter().enumerate() {
        locks.insert_one(lock).await.unwrap();
        let refused = migrate(&t, &["unlock"]).expect(1);
        assert!(
            refused.stderr.starts_with(
                "error: reading the lock failed; `unlock --force` deletes the corrupt lock \
                 document\n  caused by: lock document `_id: "
            ) && refused.stderr.contains(problem),
            "{refused:?}"
        );
        let run = migrate(&t, &["--json", "run"]).expect(1).json();
        assert!(
            run["error"]["message"].as_str().is_some_and(
                |m| m.ends_with("; `unlock --force` deletes the corrupt lock document")
            ),
            "{run}"
        );
        assert_eq!(t.documents("mongockLock").await.len(), 1, "left in place");

        let id = n + 1;
        if n % 2 == 0 {
            let forced = migrate(&t, &["unlock", "--force"]).expect(0);
            assert!(
                forced.stdout.starts_with(&format!(
                    "deleted the corrupt lock document `_id: {id}` in `{}.mongockLock` (",
                    t.db.name()
                )) && forced.stdout.contains(problem),
                "{forced:?}"
            );
        } else {
            let forced = migrate(&t, &["--json", "unlock", "--force"])
                .expect(0)
                .json();
            assert_eq!(forced["lock"], "released");
            assert_eq!(forced["reason"], "corrupt");
            assert_eq!(forced["owner"], Value::Null);
            assert_eq!(forced["corrupt"]["id"], id.to_string());
            assert!(
                forced["corrupt"]["problem"]
                    .as_str()
                    .is_some_and(|p| p.contains(problem)),
                "{forced}"
            );
        }
        assert!(t.documents("mongockLock").await.is_empty());
    }
    migrate(&t, &["run"]).expect(0);
    let free = migrate(&t, &["--json", "unlock", "--force"])
        .expect(0)
        .json();
    assert_eq!(free["lock"], "free");
    assert_eq!(free["corrupt"], Value::Null);
    t.finish().await;
}

async fn an_id_shared_by_two_authors_needs_the_author(mode: Mode) {
    let t = test_db(mode, "cli_shared_id").await;
    let shared = [("FIXTURE_SHARED", "1")];
    let ambiguous = "error: `shared` names 2 change units, by `alice` and `bob`: say which, as \
                     `shared/alice` or `shared/bob`\n";
    for args in [
        &["run", "--up-to", "shared"][..],
        &["run", "--up-to", "shared", "--dry-run"],
        &["undo", "--to", "shared", "--yes"],
    ] {
        let refused = migrate_with(&t, args, &shared).expect(2);
        assert_eq!(refused.stderr, ambiguous, "{args:?}");
    }
    assert!(t.history().await.is_empty(), "nothing ran");
    let json = migrate_with(&t, &["--json", "run", "--up-to", "shared"], &shared)
        .expect(2)
        .json();
    assert_eq!(json["error"]["kind"], "usage");

    let run = migrate_with(&t, &["run", "--up-to", "shared/alice"], &shared).expect(0);
    assert!(
        run.stdout.contains("applied 4 change units in")
            && run
                .stdout
                .contains("1 ordered after `shared` left for later"),
        "{run:?}"
    );
    let unknown = migrate_with(&t, &["run", "--up-to", "shared/carol"], &shared).expect(2);
    assert_eq!(
        unknown.stderr,
        "error: no change unit `shared` by `carol` in this binary; `shared` is by `alice`, `bob`\n"
    );
    migrate_with(&t, &["run"], &shared).expect(0);
    let undo = migrate_with(&t, &["undo", "--to", "shared/alice", "--yes"], &shared).expect(0);
    assert!(undo.stdout.contains("undid 2 change units"), "{undo:?}");
    t.finish().await;
}

async fn fields_a_history_row_leaves_out_stay_absent(mode: Mode) {
    let t = test_db(mode, "cli_absent_fields").await;
    migrate_with(&t, &["run"], &[("FIXTURE_FAIL", "price-widgets")]).expect(1);
    // As a hand-written or foreign row may be: no timestamp, a null executionId.
    t.collection("mongockChangeLog")
        .update_one(
            doc! { "changeId": "create-widgets" },
            doc! { "$unset": { "timestamp": "" }, "$set": { "executionId": null } },
        )
        .await
        .unwrap();

    let status = migrate(&t, &["--json", "status"]).expect(0).json();
    let created = &status["units"][0];
    assert_eq!(created["state"], "executed");
    assert_eq!(created["at"], Value::Null, "{created}");
    let failed = &status["units"][1];
    assert_eq!(failed["state"], "failed");
    assert!(failed["host"].is_string(), "{failed}");
    assert_eq!(failed["error"], "the price list is unavailable", "{failed}");

    let history = migrate(&t, &["--json", "history"]).expect(0).json();
    let created = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["changeId"] == "create-widgets")
        .unwrap();
    assert_eq!(created["timestamp"], Value::Null, "{created}");
    assert_eq!(created["executionId"], Value::Null, "{created}");
    let human = migrate(&t, &["history"]).expect(0);
    let row = human
        .stdout
        .lines()
        .find(|l| l.contains("create-widgets"))
        .unwrap();
    assert!(row.starts_with("- ") && row.ends_with(" -"), "{human:?}");

    let none = migrate(&t, &["history", "--limit", "0"]).expect(0);
    assert_eq!(none.stdout, "2 history entries, none shown\n");
    t.finish().await;
}

async fn status_check_fails_on_history_a_run_refuses(mode: Mode) {
    let t = test_db(mode, "cli_blocking_history").await;
    // `count-runs` is applied, then left out of the binary.
    migrate_with(&t, &["run"], &[("FIXTURE_ALWAYS", "1")]).expect(0);

    let check = migrate(&t, &["status", "--check"]).expect(4);
    assert!(
        check.stdout.contains(
            "not up to date: 0 pending, 0 changed since they ran, 1 applied in the history but \
             not in this binary (a run refuses to start)"
        ),
        "{check:?}"
    );
    let status = migrate(&t, &["--json", "status"]).expect(0).json();
    assert_eq!(status["up_to_date"], false);
    assert_eq!(status["unknown"][0]["id"], "count-runs");
    assert_eq!(status["unknown"][0]["blocks_run"], true);
    migrate(&t, &["run"]).expect(1);
    t.finish().await;
}
