//! The two kinds of client: the service's, which fault scenarios target by its `appName`, and
//! the harness's own, which faults never reach.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::error::ErrorKind;
use mongodb::event::command::CommandEvent;
use mongodb::event::EventHandler;
use mongodb::options::ClientOptions;
use mongodb::Client;

use crate::BoxError;

/// The `appName` of the service's client; `failCommand` fail points are scoped to it.
pub(crate) const SERVICE_APP_NAME: &str = "migrate-chaos";
/// The `appName` of the harness's own client (checks, fail point configuration).
const ADMIN_APP_NAME: &str = "migrate-chaos-admin";

/// The service's client. Every command the server fails, and every reply that carries a
/// `writeConcernError`, is reported on stderr as `chaos: command failed: <command> on
/// <collection>: <error>`, so the harness can see which command a fault hit; with
/// `CHAOS_TRACE_COMMANDS=1`, every command it sends as `chaos: command started: <command> on
/// <collection>`, so the harness can aim a fault.
pub(crate) async fn service(uri: &str) -> Result<Client, BoxError> {
    let mut options = options(uri, SERVICE_APP_NAME).await?;
    let targets: Arc<Mutex<HashMap<i32, String>>> = Arc::default();
    let trace = std::env::var_os("CHAOS_TRACE_COMMANDS").is_some_and(|v| v == "1");
    options.command_event_handler = Some(EventHandler::callback(move |event| match event {
        CommandEvent::Started(started) => {
            let target = target(&started.command_name, &started.command);
            if trace {
                eprintln!("chaos: command started: {target}");
            }
            targets.lock().unwrap().insert(started.request_id, target);
        }
        CommandEvent::Succeeded(succeeded) => {
            let target = targets.lock().unwrap().remove(&succeeded.request_id);
            if let Ok(concern) = succeeded.reply.get_document("writeConcernError") {
                eprintln!(
                    "chaos: command failed: {}: writeConcernError {concern}",
                    target.unwrap_or(succeeded.command_name)
                );
            }
        }
        CommandEvent::Failed(failed) => {
            let target = targets.lock().unwrap().remove(&failed.request_id);
            eprintln!(
                "chaos: command failed: {}: {}",
                target.unwrap_or(failed.command_name),
                brief(&failed.failure)
            );
        }
        _ => {}
    }));
    Ok(Client::with_options(options)?)
}

/// The harness's client.
pub(crate) async fn admin(uri: &str) -> Result<Client, BoxError> {
    Ok(Client::with_options(options(uri, ADMIN_APP_NAME).await?)?)
}

async fn options(uri: &str, app_name: &str) -> Result<ClientOptions, BoxError> {
    let mut options = ClientOptions::parse(uri).await?;
    options.app_name = Some(app_name.to_owned());
    options.server_selection_timeout = Some(Duration::from_secs(10));
    Ok(options)
}

/// The error's code, name and labels, or its first 200 characters: the driver's full
/// message carries the raw server reply.
fn brief(error: &mongodb::error::Error) -> String {
    match &*error.kind {
        ErrorKind::Command(command) => format!(
            "error {} ({}), labels {:?}",
            command.code,
            command.code_name,
            error.labels()
        ),
        _ => error.to_string().chars().take(200).collect(),
    }
}

/// `update on mongockChangeLog`, or the bare command name when it names no collection.
fn target(name: &str, command: &Document) -> String {
    match command.get_str(name) {
        Ok(collection) => format!("{name} on {collection}"),
        Err(_) => name.to_owned(),
    }
}

/// `replica-set` when the server runs transactions (a replica set member or a mongos),
/// `standalone` otherwise.
pub(crate) async fn topology(client: &Client) -> Result<&'static str, BoxError> {
    let hello = client
        .database("admin")
        .run_command(doc! { "hello": 1 })
        .await?;
    let transactions = hello.get_str("setName").is_ok() || hello.get_str("msg") == Ok("isdbgrid");
    Ok(if transactions {
        "replica-set"
    } else {
        "standalone"
    })
}
