//! The same migration over many databases (one per customer, say): each database keeps its
//! own lock and history, and a bounded number run at once.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use mongodb::{Client, Database};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::__private::Chain;
use crate::{Error, Report, Runner};

/// The default number of databases migrated at once.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Databases that `*` never matches: the server's own.
const SYSTEM_DATABASES: [&str; 3] = ["admin", "config", "local"];

/// Runs a migration over a list of databases; see [`run`](Self::run).
///
/// ```no_run
/// # async fn demo(client: mongodb::Client) -> Result<(), Box<dyn std::error::Error>> {
/// let reports = migrate::Tenants::matching(&client, "tenant_*")
///     .await?
///     .concurrency(4)
///     .run(|db| migrate::Runner::new(db))
///     .await?;
/// for (database, report) in reports {
///     println!("{database}: {} applied", report.executed().len());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "nothing runs until `.run(..).await`"]
pub struct Tenants {
    databases: Vec<Database>,
    concurrency: usize,
    fail_fast: bool,
}

/// What happened in one database.
#[derive(Debug)]
pub struct TenantOutcome<T> {
    /// The database's name.
    pub database: String,
    /// The operation's result.
    pub result: TenantResult<T>,
}

/// The result of an operation in one database.
#[derive(Debug)]
pub enum TenantResult<T> {
    /// It succeeded.
    Done(T),
    /// It failed.
    Failed(Error),
    /// It did not start: another database failed first and the run was fail-fast.
    NotRun,
}

/// Some databases failed (or did not run after a failure, when fail-fast). Holds the outcome
/// of every database, successes included.
///
/// Its message names the databases that failed; its [`source`](std::error::Error::source) is
/// the first failure, and [`failures`](TenantsError::failures) gives each one.
#[derive(Debug)]
pub struct TenantsError {
    /// Every database's outcome, in the order the databases were given.
    pub outcomes: Vec<TenantOutcome<Report>>,
}

impl Tenants {
    /// The databases to migrate, in order.
    pub fn new(databases: impl IntoIterator<Item = Database>) -> Self {
        Tenants {
            databases: databases.into_iter().collect(),
            concurrency: DEFAULT_CONCURRENCY,
            fail_fast: false,
        }
    }

    /// The databases of `client` whose names match `pattern` (`*` any run of characters, `?`
    /// one character), in name order. `admin`, `config` and `local` match only when named
    /// exactly.
    ///
    /// A pattern that matches no database is not an error (a service may start before its
    /// first tenant exists): the set is empty and [`run`](Self::run) does nothing. Check
    /// [`names`](Self::names) to treat it as one, as `migrate --databases` does.
    pub async fn matching(client: &Client, pattern: &str) -> Result<Self, Error> {
        let names = client
            .list_database_names()
            .await
            .map_err(|e| Error::store("listing the databases", driver_error(e)))?;
        let mut names: Vec<String> = names
            .into_iter()
            .filter(|name| {
                name == pattern
                    || (!SYSTEM_DATABASES.contains(&name.as_str()) && glob_match(pattern, name))
            })
            .collect();
        names.sort();
        Ok(Tenants::new(names.iter().map(|name| client.database(name))))
    }

    /// How many databases run at once. Default: [`DEFAULT_CONCURRENCY`]; at least 1.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Whether the first failure keeps databases that have not started from starting (those
    /// already running finish). Default: `false`, every database runs.
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// The names of the databases, in order.
    pub fn names(&self) -> Vec<String> {
        self.databases
            .iter()
            .map(|db| db.name().to_owned())
            .collect()
    }

    /// Runs the runner `configure` builds for each database, at most
    /// [`concurrency`](Self::concurrency) at once. Each run takes its database's own lock, so
    /// two overlapping calls never migrate one database at the same time.
    ///
    /// Returns every database's report, in the order given, or, when any failed, a
    /// [`TenantsError`] that says which and why.
    pub async fn run<F>(self, configure: F) -> Result<Vec<(String, Report)>, TenantsError>
    where
        F: Fn(&Database) -> Runner + Send + Sync + 'static,
    {
        let outcomes = self
            .each(move |db| {
                let runner = configure(&db);
                async move { runner.run().await }
            })
            .await;
        if outcomes
            .iter()
            .all(|o| matches!(o.result, TenantResult::Done(_)))
        {
            Ok(outcomes
                .into_iter()
                .filter_map(|o| match o.result {
                    TenantResult::Done(report) => Some((o.database, report)),
                    _ => None,
                })
                .collect())
        } else {
            Err(TenantsError { outcomes })
        }
    }

    /// Runs `operation` on each database, at most [`concurrency`](Self::concurrency) at once,
    /// and returns each outcome in the order the databases were given: the building block of
    /// [`run`](Self::run), for the other operations (`status`, `undo_all`, ...).
    pub async fn each<F, Fut, T>(self, operation: F) -> Vec<TenantOutcome<T>>
    where
        F: Fn(Database) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        let names = self.names();
        let mut results: Vec<TenantResult<T>> =
            names.iter().map(|_| TenantResult::NotRun).collect();
        let operation = Arc::new(operation);
        let mut queue = self.databases.into_iter().enumerate();
        let mut running = JoinSet::new();
        let mut stopped = false;
        loop {
            while !stopped && running.len() < self.concurrency {
                let Some((index, db)) = queue.next() else {
                    break;
                };
                let operation = Arc::clone(&operation);
                // Runs of several databases interleave in the log: each says its own.
                let span = tracing::info_span!("tenant", database = db.name());
                running.spawn(async move { (index, operation(db).instrument(span).await) });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (index, result) = match joined {
                Ok(done) => done,
                // The runner turns a unit's panic into an error; anything else is a bug.
                Err(error) => std::panic::resume_unwind(error.into_panic()),
            };
            results[index] = match result {
                Ok(value) => TenantResult::Done(value),
                Err(error) => {
                    tracing::error!(database = %names[index], error = %Chain(&error), "migration failed in this database");
                    stopped |= self.fail_fast;
                    TenantResult::Failed(error)
                }
            };
        }
        names
            .into_iter()
            .zip(results)
            .map(|(database, result)| TenantOutcome { database, result })
            .collect()
    }
}

impl TenantsError {
    /// The databases that failed, with their errors.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &Error)> {
        self.outcomes.iter().filter_map(|o| match &o.result {
            TenantResult::Failed(error) => Some((o.database.as_str(), error)),
            _ => None,
        })
    }

    /// The databases that did not run because the run was fail-fast.
    pub fn not_run(&self) -> impl Iterator<Item = &str> {
        self.outcomes
            .iter()
            .filter(|o| matches!(o.result, TenantResult::NotRun))
            .map(|o| o.database.as_str())
    }
}

impl fmt::Display for TenantsError {
    /// Names the failed databases and ends with the one whose error is the
    /// [`source`](std::error::Error::source), so that an error chain reads as that database's
    /// cause: "the migration failed in 2 of 6 databases (`a`, `b`), first in `a`: ...".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed: Vec<&str> = self.failures().map(|(db, _)| db).collect();
        let total = self.outcomes.len();
        let not_run = match self.not_run().count() {
            0 => String::new(),
            n => format!("{n} did not start"),
        };
        match failed.as_slice() {
            [only] => {
                write!(
                    f,
                    "the migration failed in 1 of {total} databases, `{only}`"
                )?;
                if !not_run.is_empty() {
                    write!(f, " ({not_run})")?;
                }
                Ok(())
            }
            [first, ..] => {
                let names: Vec<String> = failed.iter().map(|db| format!("`{db}`")).collect();
                write!(
                    f,
                    "the migration failed in {} of {total} databases ({}",
                    failed.len(),
                    names.join(", ")
                )?;
                if !not_run.is_empty() {
                    write!(f, "; {not_run}")?;
                }
                write!(f, "), first in `{first}`")
            }
            [] => write!(f, "the migration did not complete in {total} databases"),
        }
    }
}

impl std::error::Error for TenantsError {
    /// The first failure.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.failures()
            .next()
            .map(|(_, error)| error as &(dyn std::error::Error + 'static))
    }
}

fn driver_error(error: mongodb::error::Error) -> migrate_mongodb::DriverError {
    migrate_mongodb::DriverError::from(error)
}

/// Whether `name` matches `pattern`: `*` any run of characters, `?` exactly one.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Classic two-pointer match with backtracking to the last `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((star_p, star_n)) => {
                    pi = star_p + 1;
                    ni = star_n + 1;
                    star = Some((star_p, star_n + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::{glob_match, Error, TenantOutcome, TenantResult, TenantsError};

    #[test]
    fn a_tenants_error_ends_with_the_database_its_source_belongs_to() {
        let outcome = |database: &str, result| TenantOutcome {
            database: database.to_owned(),
            result,
        };
        let failed =
            |id: &str| TenantResult::Failed(Error::UnknownChangeUnit { id: id.to_owned() });
        let error = TenantsError {
            outcomes: vec![
                outcome("a", failed("x")),
                outcome("b", failed("y")),
                outcome("c", TenantResult::NotRun),
            ],
        };
        assert_eq!(
            error.to_string(),
            "the migration failed in 2 of 3 databases (`a`, `b`; 1 did not start), first in `a`"
        );
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert!(source.is_some_and(|s| s.contains("`x`")));
    }

    #[test]
    fn globs() {
        assert!(glob_match("tenant_*", "tenant_acme"));
        assert!(glob_match("tenant_*", "tenant_"));
        assert!(!glob_match("tenant_*", "tenants"));
        assert!(glob_match("t?nant_*x", "tenant_abcx"));
        assert!(!glob_match("t?nant_*x", "tenant_abcy"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "aXbY"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }
}
