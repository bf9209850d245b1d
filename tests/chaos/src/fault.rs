//! The server's `failCommand` fail point, scoped to the service's `appName` so the harness's
//! own client is never hit.
//!
//! ```text
//! fault off
//! fault --command <name>... (--times <n> | --always-on) [--skip <n>]
//!       (--error-code <code> [--label <label>...] | --close-connection | --write-concern-error <code>)
//! ```

use mongodb::bson::{doc, Bson, Document};
use mongodb::Client;

use crate::client::SERVICE_APP_NAME;
use crate::BoxError;

/// Configures (or, with `off`, clears) the fail point described by `args`.
pub(crate) async fn configure(client: &Client, args: &[String]) -> Result<(), BoxError> {
    let command = if args.first().map(String::as_str) == Some("off") {
        doc! { "configureFailPoint": "failCommand", "mode": "off" }
    } else {
        parse(args)?
    };
    client
        .database("admin")
        .run_command(command)
        .await
        .map_err(|e| {
            format!("configureFailPoint failed (the server needs `--enable-test-commands`): {e}")
        })?;
    Ok(())
}

fn parse(args: &[String]) -> Result<Document, BoxError> {
    let mut commands = Vec::new();
    let mut labels = Vec::new();
    let mut times: Option<i32> = None;
    let mut skip = 0;
    let mut always_on = false;
    let mut data = doc! { "appName": SERVICE_APP_NAME };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("fault: `{arg}` needs a value"))
        };
        match arg.as_str() {
            "--command" => commands.push(value()?.clone()),
            "--times" => times = Some(value()?.parse()?),
            "--skip" => skip = value()?.parse()?,
            "--always-on" => always_on = true,
            "--error-code" => {
                data.insert("errorCode", value()?.parse::<i32>()?);
            }
            "--label" => labels.push(value()?.clone()),
            "--close-connection" => {
                data.insert("closeConnection", true);
            }
            "--write-concern-error" => {
                let code: i32 = value()?.parse()?;
                data.insert(
                    "writeConcernError",
                    doc! { "code": code, "errmsg": "injected by migrate-chaos: waiting for replication timed out" },
                );
            }
            other => return Err(format!("fault: unknown option `{other}`").into()),
        }
    }
    if commands.is_empty() {
        return Err("fault: name at least one `--command`".into());
    }
    data.insert("failCommands", commands);
    if !labels.is_empty() {
        data.insert("errorLabels", labels);
    }
    let mode: Bson = match (always_on, times) {
        (true, None) if skip == 0 => "alwaysOn".into(),
        (true, None) => doc! { "skip": skip }.into(),
        (false, Some(times)) if skip == 0 => doc! { "times": times }.into(),
        // SecantusDB honours both. A server that reads only one of them fails another
        // command than the one aimed at, which the harness reports as a miss.
        (false, Some(times)) => doc! { "skip": skip, "times": times }.into(),
        _ => return Err("fault: give exactly one of `--times <n>` and `--always-on`".into()),
    };
    Ok(doc! { "configureFailPoint": "failCommand", "mode": mode, "data": data })
}
