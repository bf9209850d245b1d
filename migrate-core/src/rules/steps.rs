//! The four steps of a change unit and the attributes that mark them: the macros read a
//! marker's name from here, and the runner names the step it runs or reports from here.
//!
//! This file is compiled into both migrate-core (where `Step` is public, re-exported from the
//! crate root) and migrate-macros (`#[path]`), so it must stay std-only.

/// The four steps a change unit can define.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// `#[before_execution]`: runs first, outside any transaction.
    BeforeExecution,
    /// `#[execution]`: the change itself.
    Execution,
    /// `#[rollback_execution]`: undoes [`Step::Execution`].
    RollbackExecution,
    /// `#[rollback_before_execution]`: undoes [`Step::BeforeExecution`].
    RollbackBeforeExecution,
}

impl Step {
    /// Every step, in declaration order, which is also the order of a unit's step functions.
    pub(crate) const ALL: [Step; 4] = [
        Step::BeforeExecution,
        Step::Execution,
        Step::RollbackExecution,
        Step::RollbackBeforeExecution,
    ];

    /// The step that the attribute `name` marks (`"execution"`, ...).
    // Only stores read step names back; the macros never do.
    #[allow(dead_code)]
    pub fn from_attribute(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|step| step.attribute() == name)
    }

    /// The attribute that marks this step's method.
    pub fn attribute(self) -> &'static str {
        match self {
            Step::BeforeExecution => "before_execution",
            Step::Execution => "execution",
            Step::RollbackExecution => "rollback_execution",
            Step::RollbackBeforeExecution => "rollback_before_execution",
        }
    }
}

// Pure and fast, so running once in each crate that compiles this file is harmless.
#[cfg(test)]
mod tests {
    use super::Step;

    // Users read the attribute and the runner's messages print the variant.
    #[test]
    fn each_attribute_is_its_variant_in_snake_case() {
        for step in Step::ALL {
            let mut snake = String::new();
            for c in format!("{step:?}").chars() {
                if c.is_ascii_uppercase() && !snake.is_empty() {
                    snake.push('_');
                }
                snake.push(c.to_ascii_lowercase());
            }
            assert_eq!(step.attribute(), snake);
        }
    }

    #[test]
    fn a_step_is_read_back_from_its_attribute() {
        for step in Step::ALL {
            assert_eq!(Step::from_attribute(step.attribute()), Some(step));
        }
        assert_eq!(Step::from_attribute("executions"), None);
    }

    // Generated code lists a unit's step functions in this order, indexed by `step as usize`.
    #[test]
    fn all_is_in_declaration_order() {
        for (index, step) in Step::ALL.into_iter().enumerate() {
            assert_eq!(step as usize, index);
        }
    }

    #[test]
    fn all_lists_every_step_once() {
        let mut attributes: Vec<&str> = Step::ALL.map(Step::attribute).to_vec();
        attributes.sort_unstable();
        attributes.dedup();
        assert_eq!(attributes.len(), 4);
    }
}
