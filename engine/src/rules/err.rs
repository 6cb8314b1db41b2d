/// A Rhai module that cannot be compiled. Runtime failures are not errors of this type: they become
/// evaluation errors in the decision (fail closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("{path}: {reason}")]
    Compile { path: String, reason: String },
    /// What the compile-time checks refused, one problem a line (each names file, line, column).
    #[error("{}", problems.join("\n"))]
    Checks { problems: Vec<String> },
}
