//! What `run --up-to` and `undo --to` name, and the confirmation `undo` asks for.

use std::io::{self, BufRead, IsTerminal, Write};

use super::failure::{Exit, Failure};
use super::human;
use crate::{Error, Runner, UnitState};

/// The id to give the runner for the unit that `run --up-to` or `undo --to` names: `ID`, or
/// `ID/AUTHOR` when several units share the id.
///
/// The runner finds a unit by id alone, taking the first in order: an id that several units
/// share is a usage error that lists their authors, and `ID/AUTHOR` can name only the first
/// of them.
pub(super) async fn resolve_target(runner: &Runner, target: &str) -> Result<String, Failure> {
    let plan = runner.plan().await?;
    let with_id = |id: &str| -> Vec<&str> {
        plan.units()
            .iter()
            .filter(|p| p.unit.id() == id)
            .map(|p| p.author.as_ref())
            .collect()
    };
    let authors = with_id(target);
    let (id, author) = match (authors.len(), target.rsplit_once('/')) {
        (1, _) => return Ok(target.to_owned()),
        (0, Some((id, author))) => (id, author),
        (0, None) => {
            return Err(Error::UnknownChangeUnit {
                id: target.to_owned(),
            }
            .into())
        }
        (_, _) => {
            let authors: Vec<String> = authors.iter().map(|a| format!("`{a}`")).collect();
            let named: Vec<String> = with_id(target)
                .iter()
                .map(|author| format!("`{target}/{author}`"))
                .collect();
            return Err(Failure::usage(format!(
                "`{target}` names {} change units, by {}: say which, as {}",
                authors.len(),
                authors.join(" and "),
                named.join(" or ")
            )));
        }
    };
    let authors = with_id(id);
    match authors.iter().position(|a| *a == author) {
        Some(0) => Ok(id.to_owned()),
        Some(_) => Err(Failure::usage(format!(
            "`{target}` is not the first change unit `{id}` in order (that is `{id}/{}`), and \
             the runner stops only at the first unit of an id",
            authors[0]
        ))),
        None if authors.is_empty() => Err(Error::UnknownChangeUnit {
            id: target.to_owned(),
        }
        .into()),
        None => Err(Failure::usage(format!(
            "no change unit `{id}` by `{author}` in this binary; `{id}` is by {}",
            authors
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The applied units `undo` would undo, newest first: their order and id.
pub(super) async fn undo_targets(
    runner: &Runner,
    to: Option<&str>,
) -> Result<Vec<(String, String)>, Failure> {
    let status = runner.status().await?;
    let start = match to {
        Some(id) => status
            .units
            .iter()
            .position(|u| u.id == id)
            .ok_or_else(|| Error::UnknownChangeUnit { id: id.to_owned() })?,
        None => 0,
    };
    Ok(status.units[start..]
        .iter()
        .rev()
        .filter(|u| matches!(u.state, UnitState::Executed { .. }))
        .map(|u| (u.order.clone(), u.id.clone()))
        .collect())
}

/// Refuses an `undo` without `--yes` when standard input is not a terminal to ask on.
pub(super) fn can_ask() -> Result<(), Failure> {
    if io::stdin().is_terminal() {
        Ok(())
    } else {
        Err(Failure::usage(
            "`undo` changes the database and asks for confirmation, but standard input is \
             not a terminal; pass `--yes` to undo without asking",
        ))
    }
}

/// Lists what `undo` would undo in each database and asks on the terminal.
pub(super) fn confirm_undo(
    listing: &[(&str, Vec<(String, String)>)],
    output: &human::Output,
) -> Result<(), Failure> {
    ask_undo(
        listing,
        output,
        &mut io::stdin().lock(),
        &mut io::stderr().lock(),
    )
}

/// Lists what `undo` would undo on `prompt` and reads the answer from `answers`: anything but
/// yes is a usage error (exit code 2), as scripts test for an unconfirmed undo.
pub(super) fn ask_undo(
    listing: &[(&str, Vec<(String, String)>)],
    output: &human::Output,
    answers: &mut impl BufRead,
    prompt: &mut impl Write,
) -> Result<(), Failure> {
    if listing.iter().all(|(_, targets)| targets.is_empty()) {
        return Ok(());
    }
    for (database, targets) in listing.iter().filter(|(_, t)| !t.is_empty()) {
        let _ = writeln!(
            prompt,
            "{} will be undone in `{database}`, newest first:",
            output.plural(targets.len(), "change unit")
        );
        for (order, id) in targets {
            let _ = writeln!(prompt, "  {order}  {id}");
        }
    }
    let _ = write!(prompt, "undo them? [y/N] ");
    let _ = prompt.flush();
    let mut answer = String::new();
    answers
        .read_line(&mut answer)
        .map_err(|e| Failure::new(Exit::Failed, e))?;
    if matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(Failure::usage("undo cancelled; nothing was undone"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &str) -> Result<(), Failure> {
        let listing = [("app", vec![("002".to_owned(), "price".to_owned())])];
        let mut prompt = Vec::new();
        let asked = ask_undo(
            &listing,
            &human::Output::new(false),
            &mut text.as_bytes(),
            &mut prompt,
        );
        let prompt = String::from_utf8(prompt).unwrap();
        assert!(
            prompt.contains("  002  price\nundo them? [y/N] "),
            "{prompt}"
        );
        asked
    }

    #[test]
    fn an_unconfirmed_undo_is_a_usage_error() {
        for text in ["n\n", "\n", "", "maybe\n"] {
            let refused = answer(text).unwrap_err();
            assert_eq!(refused.exit, Exit::Usage, "{text:?}");
            assert_eq!(
                refused.error.to_string(),
                "undo cancelled; nothing was undone"
            );
        }
        assert!(answer("y\n").is_ok());
        assert!(answer("Yes\n").is_ok());
    }
}
