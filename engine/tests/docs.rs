//! The guides show only examples that work: every ```cedar block of README.md and
//! docs/policy-authoring.md validates against the default bundle's schema (with the annotations a
//! bundle requires), and every ```rhai block compiles as a rule module.

use accord_engine::cedar::{CedarPolicies, CedarSource};
use accord_engine::rules::{RhaiSource, RuleModules};
use accord_engine::Bundle;
use std::path::Path;
use std::sync::Arc;

const DOCUMENTS: [&str; 2] = ["README.md", "docs/policy-authoring.md"];

/// A fenced block: the document, the line of its opening fence, and its text with the fence's
/// indentation removed.
struct Block {
    document: &'static str,
    line: usize,
    text: String,
}

/// The blocks of `language` in `markdown`.
fn blocks(document: &'static str, markdown: &str, language: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(usize, usize, Vec<&str>)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        match &mut open {
            None if trimmed == format!("```{language}") => open = Some((i + 1, indent, Vec::new())),
            Some((start, _, lines)) if trimmed == "```" => {
                out.push(Block {
                    document,
                    line: *start,
                    text: lines.join("\n"),
                });
                open = None;
            }
            Some((_, indent, lines)) => {
                lines.push(line.get(*indent..).unwrap_or(line.trim_start()))
            }
            None => {}
        }
    }
    assert!(
        open.is_none(),
        "{document}: a ```{language} block is not closed"
    );
    out
}

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn all_blocks(language: &str) -> Vec<Block> {
    DOCUMENTS
        .iter()
        .flat_map(|document| {
            let text = std::fs::read_to_string(root().join(document))
                .unwrap_or_else(|e| panic!("{document}: {e}"));
            blocks(document, &text, language)
        })
        .collect()
}

fn default_bundle() -> Bundle {
    Bundle::load(&root().join("policies")).unwrap_or_else(|e| panic!("default bundle loads: {e}"))
}

#[test]
fn every_cedar_example_validates_against_the_default_schema() {
    let bundle = default_bundle();
    let schema_path = &bundle.manifest().schema;
    let schema = std::str::from_utf8(bundle.files().get(schema_path).expect("schema"))
        .expect("schema is UTF-8");
    let regimes: Vec<String> = bundle
        .jurisdictions()
        .iter()
        .flat_map(|j| j.regimes.iter().cloned())
        .collect();
    let blocks = all_blocks("cedar");
    assert!(blocks.len() >= 2, "the guides show Cedar policies");
    for block in &blocks {
        let at = format!("{}:{}", block.document, block.line);
        let source = CedarSource {
            module: "docs/example",
            path: &at,
            text: &block.text,
        };
        if let Err(e) = CedarPolicies::compile(schema_path, schema, &[source], &regimes) {
            panic!(
                "{at}: the ```cedar example does not validate: {e}\n{}",
                block.text
            );
        }
    }
}

#[test]
fn every_rhai_example_compiles_as_a_rule_module() {
    let bundle = default_bundle();
    let blocks = all_blocks("rhai");
    assert!(!blocks.is_empty(), "the guides show a Rhai module");
    let regimes = ["HIPAA".to_owned()];
    for block in &blocks {
        let at = format!("{}:{}", block.document, block.line);
        let source = RhaiSource {
            module: "docs/example",
            path: &at,
            text: &block.text,
            applies_to: &regimes,
            actions: None,
            purposes: None,
            when_attributes: None,
            obligations_only: false,
            on_deny: false,
        };
        // Checked as the default bundle's modules are: against the attributes its manifest declares.
        if let Err(e) = RuleModules::compile(
            Arc::new(bundle.jurisdictions().clone()),
            &[source],
            &bundle.manifest().attributes,
        ) {
            panic!(
                "{at}: the ```rhai example does not compile: {e}\n{}",
                block.text
            );
        }
    }
}

#[test]
fn fences_are_found_indented_or_not() {
    let found = blocks(
        "x.md",
        "text\n```cedar\na\n```\n1. item\n   ```cedar\n   b\n     c\n   ```\n```rhai\nr\n```\n",
        "cedar",
    );
    let texts: Vec<(usize, &str)> = found.iter().map(|b| (b.line, b.text.as_str())).collect();
    assert_eq!(texts, [(2, "a"), (6, "b\n  c")]);
}
