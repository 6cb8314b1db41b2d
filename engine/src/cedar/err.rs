/// A Cedar schema or policy file that cannot be compiled. Each names the file and, where it can,
/// the policy (by its `@id`) and the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CedarError {
    #[error("{path}: schema does not parse: {reason}")]
    Schema { path: String, reason: String },
    #[error("{path}: policy file does not parse: {reason}")]
    Parse { path: String, reason: String },
    #[error("{path}: policy `{policy}`: {reason}")]
    Policy {
        path: String,
        policy: String,
        reason: String,
    },
    #[error("policies fail validation against the schema:\n{}", problems.join("\n"))]
    Validation { problems: Vec<String> },
    #[error("internal error building the policy set: {0}")]
    Internal(String),
}

/// Renders a Cedar diagnostic on one line, with the line and column of its first label.
pub(crate) fn render(diagnostic: &dyn miette::Diagnostic, source: &str) -> String {
    let mut text = diagnostic.to_string();
    let mut related: Vec<String> = diagnostic
        .related()
        .into_iter()
        .flatten()
        .map(|d| d.to_string())
        .filter(|d| *d != text)
        .collect();
    related.dedup();
    if !related.is_empty() {
        text = format!("{text}: {}", related.join("; "));
    }
    let first_label = diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .or_else(|| {
            diagnostic
                .related()
                .and_then(|mut r| r.next())
                .and_then(|d| d.labels().and_then(|mut l| l.next()))
        });
    if let Some(label) = first_label {
        let before = source.get(..label.offset()).unwrap_or(source);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        text = format!("line {line}, column {column}: {text}");
    }
    if let Some(help) = diagnostic.help() {
        text = format!("{text} (help: {help})");
    }
    text.replace('\n', " ")
}

/// Accord's own hint for a diagnostic Cedar gives none for: entity types are declared in the
/// schema's `Accord` namespace, so `Action::"read"` must be written `Accord::Action::"read"`.
pub(crate) fn hint(rendered: &str) -> String {
    let unqualified = ["Action::", "Actor::", "Record::"]
        .iter()
        .find(|t| rendered.contains(&format!("`{t}")) || rendered.contains(&format!(" {t}")));
    match unqualified {
        Some(t) if !rendered.contains("Accord::") => format!(
            " (hint: the schema declares its types in namespace `Accord`: write `Accord::{t}\"…\"`)"
        ),
        _ => String::new(),
    }
}
