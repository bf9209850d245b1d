//! The client service's `migrate` command: status, plan, run, undo, unlock and more over the
//! service's change units, configured as the service configures them.
//!
//! `cargo run -p client_service --bin migrate -- --uri mongodb://localhost:27017/client_service status`
//!
//! The closure builds the runner of one database; with `--databases 'client_*'` it builds one
//! for each matching database.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let version = match client_service::version() {
        Ok(version) => version,
        Err(error) => {
            eprintln!("error: invalid CLIENT_SERVICE_VERSION\n  caused by: {error}");
            return ExitCode::from(2);
        }
    };
    migrate::cli::main(|db| client_service::runner(db, version)).await
}
