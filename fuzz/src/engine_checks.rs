//! The invariants every engine door must keep on any input, checked on one input at a time:
//! by the AFL targets (`fuzz/src/bin/`), by the corpus replay (`fuzz/src/lib.rs` tests) and by the
//! property tests (`engine/tests/fuzz_properties.rs` includes this file). A violated invariant
//! panics with the input's story; "no panic" is the first invariant of all.
//!
//! Only `accord_engine`, `serde` and `serde_json` are used here, so that the engine's own tests can
//! include the file without depending on anything else.

use accord_engine::consent::ConsentRegistry;
use accord_engine::decision::{Decision, Effect, RuleEffect};
use accord_engine::ledger::{Block, PreparedBlock};
use accord_engine::transaction::TransactionError;
use accord_engine::{AccessRequest, Bundle, BundleFiles, InMemoryConsentRegistry, Transaction};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// What a door made of an input (for statistics: a generator that never gets past the parser
/// tests little).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Refused with a typed error.
    Refused,
    /// Accepted.
    Accepted,
}

/// A refusal must say where and why.
fn check_error(door: &str, e: &TransactionError) {
    assert!(
        !e.field.is_empty(),
        "{door}: an error names no field: {e:?}"
    );
    assert!(
        !e.reason.trim().is_empty(),
        "{door}: an error gives no reason: {e:?}"
    );
}

/// The transaction doors (`AccessRequest::from_json`, `Transaction::from_json`, and
/// `json::from_slice` as the server reads request bodies) on `bytes`:
/// - every door refuses or accepts without panicking, naming the field of a refusal;
/// - the doors agree: an access transaction one accepts, the others accept as the same value;
/// - a parsed transaction re-serializes, and re-parses to the same value (and the same text);
/// - a parsed access transaction gets a decision that is allow or deny, deny whenever it lists
///   errors, sorted, and the same when decided again, alone or in a batch (`bundle`);
/// - a parsed consent transaction applies to a registry or is refused leaving it unchanged.
pub fn transaction(bytes: &[u8], bundle: &Bundle) -> Outcome {
    let from_bytes = accord_engine::json::from_slice::<AccessRequest>(bytes);
    let Ok(text) = std::str::from_utf8(bytes) else {
        // JSON text is UTF-8 (RFC 8259 §8.1): the byte door must refuse the rest.
        assert!(
            from_bytes.is_err(),
            "json::from_slice accepted bytes that are not UTF-8"
        );
        return Outcome::Refused;
    };
    let access = AccessRequest::from_json(text);
    let any = Transaction::from_json(text);
    if let Err(e) = &access {
        check_error("AccessRequest::from_json", e);
    }
    if let Err(e) = &any {
        check_error("Transaction::from_json", e);
    }
    let is_object = text.trim_start().starts_with('{');
    match (&access, &any) {
        (Ok(a), Ok(Transaction::Access(b))) => assert_eq!(
            a, &**b,
            "AccessRequest::from_json and Transaction::from_json read the same text differently"
        ),
        (Ok(a), other) => panic!(
            "AccessRequest::from_json accepted {a:?} but Transaction::from_json gave {other:?}"
        ),
        (Err(e), Ok(Transaction::Access(b))) if is_object => panic!(
            "Transaction::from_json accepted {b:?} but AccessRequest::from_json refused it: {e}"
        ),
        _ => {}
    }
    if let Ok(a) = &access {
        // The byte door reads the same request (the checks of `from_json` aside).
        match &from_bytes {
            Ok(b) => assert_eq!(a, b, "json::from_slice and from_json disagree"),
            Err(e) => panic!("from_json accepted what json::from_slice refused: {e}"),
        }
    }
    match any {
        Ok(Transaction::Access(request)) => {
            access_round_trip(&request);
            let registry = InMemoryConsentRegistry::new();
            decision(bundle, &request, &registry);
            Outcome::Accepted
        }
        Ok(tx) => {
            transaction_round_trip(&tx);
            if !matches!(tx, Transaction::Governance(_)) {
                // Consent, representation and agreement transactions change the state only when
                // accepted.
                let mut registry = InMemoryConsentRegistry::new();
                let before = registry.digest();
                if registry.apply_state(&tx).is_err() {
                    assert_eq!(
                        before,
                        registry.digest(),
                        "a refused {} transaction changed the state",
                        tx.kind()
                    );
                }
            }
            Outcome::Accepted
        }
        Err(_) => Outcome::Refused,
    }
}

/// An access request serializes, and the text reads back, through every door, as the same value;
/// writing it again gives the same text.
pub fn access_round_trip(request: &AccessRequest) {
    let text = serde_json::to_string(request).expect("an access request serializes");
    let again = AccessRequest::from_json(&text)
        .unwrap_or_else(|e| panic!("re-serialized request does not re-parse: {e}\n{text}"));
    assert_eq!(request, &again, "re-parsed request differs\n{text}");
    assert_eq!(
        text,
        serde_json::to_string(&again).expect("serializes"),
        "serialization is not stable"
    );
    match Transaction::from_json(&text) {
        Ok(Transaction::Access(b)) => assert_eq!(request, &*b, "Transaction door differs\n{text}"),
        other => panic!("Transaction::from_json on a re-serialized request: {other:?}\n{text}"),
    }
}

/// A consent, representation, agreement or governance transaction serializes and reads back as the same value.
pub fn transaction_round_trip(tx: &Transaction) {
    let value = match tx {
        Transaction::Access(r) => serde_json::to_value(r),
        Transaction::Consent(c) => serde_json::to_value(c),
        Transaction::Representation(r) => serde_json::to_value(r),
        Transaction::Agreement(a) => serde_json::to_value(a),
        Transaction::Governance(g) => serde_json::to_value(g),
    }
    .expect("a transaction serializes");
    let text = value.to_string();
    let again = Transaction::from_json(&text)
        .unwrap_or_else(|e| panic!("re-serialized transaction does not re-parse: {e}\n{text}"));
    assert_eq!(tx, &again, "re-parsed transaction differs\n{text}");
}

/// The decision of `request`, checked: allow or deny, deny when it lists errors, allow only with
/// a permit and no deny, every list sorted, and the same decision again, alone and in a batch.
pub fn decision(bundle: &Bundle, request: &AccessRequest, registry: &dyn ConsentRegistry) {
    let d = bundle.decide(request, registry, 0);
    check_decision(request, &d);
    let again = bundle.decide(request, registry, 0);
    assert_eq!(d.to_json(), again.to_json(), "deciding twice differs");
    let batch = bundle.decide_all(&[request], registry, 0);
    assert_eq!(batch.len(), 1);
    assert_eq!(
        d.to_json(),
        batch[0].to_json(),
        "a batch of one decides differently"
    );
}

/// The shape every decision has (docs/contract.md §2), and it names `request`.
pub fn check_decision(request: &AccessRequest, d: &Decision) {
    assert_eq!(d.tx, request.id, "the decision names another transaction");
    check_decision_shape(d);
}

/// The shape every decision has (docs/contract.md §2): a deny names the rules that denied (a deny
/// by default names the regimes' own rule, or that no regime applies) or the errors.
pub fn check_decision_shape(d: &Decision) {
    if !d.errors.is_empty() {
        assert_eq!(d.decision, Effect::Deny, "an error did not deny: {d:?}");
    }
    if d.decision == Effect::Allow {
        assert!(
            d.reasons.iter().any(|r| r.effect == RuleEffect::Permit),
            "allowed with no permit: {d:?}"
        );
        assert!(
            d.reasons.iter().all(|r| r.effect == RuleEffect::Permit),
            "allowed despite a deny: {d:?}"
        );
    } else {
        assert!(
            !d.errors.is_empty() || d.reasons.iter().any(|r| r.effect == RuleEffect::Deny),
            "denied with no deny reason and no error: {d:?}"
        );
    }
    assert!(
        d.jurisdictions.windows(2).all(|w| w[0] < w[1]),
        "jurisdictions not sorted and unique: {:?}",
        d.jurisdictions
    );
    assert!(
        d.reasons.windows(2).all(|w| w[0] <= w[1]),
        "reasons not sorted"
    );
    assert!(
        d.errors.windows(2).all(|w| w[0] <= w[1]),
        "errors not sorted"
    );
    for e in &d.errors {
        assert!(!e.message.trim().is_empty(), "an error without a message");
    }
    let text = d.to_json();
    let value = accord_engine::json::value_from_str(&text)
        .unwrap_or_else(|e| panic!("decision JSON does not read back: {e}\n{text}"));
    assert!(
        matches!(value["decision"].as_str(), Some("allow" | "deny")),
        "decision is neither allow nor deny: {text}"
    );
}

/// A block as the server reads it: its transactions left as raw JSON text.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlock<'a> {
    height: u64,
    #[serde(default)]
    previous: Option<String>,
    #[serde(borrow)]
    transactions: Vec<&'a RawValue>,
}

// INVARIANT (json::Strict): a derived struct whose transactions are read later by the engine's
// reader (`PreparedBlock::from_raw`).
impl accord_engine::json::Strict for RawBlock<'_> {}

/// KNOWN DIVERGENCE: `Block::from_json` reads a block's transactions two levels below the top of
/// the document, and the server's door (`PreparedBlock::from_raw`) reads each transaction as a
/// document of its own, so serde_json's nesting limit (128 levels) stops the first two levels
/// sooner: a transaction nested 125 or 126 deep passes the server and is refused by the command
/// line (fuzz/regressions/block/nesting-near-the-limit.json). Until the two doors count depth
/// alike, that one refusal is not held against them.
pub fn nests_near_the_limit(e: &TransactionError) -> bool {
    e.reason.contains("recursion limit exceeded")
}

/// The block doors (`Block::from_json`, as the command line reads blocks, and
/// `PreparedBlock::from_raw`, as the server does) on `bytes`:
/// - neither panics; a refusal names the field;
/// - a block's hash is stable: the same when computed again, after `prepare`, through the raw
///   door, and after the block is re-serialized and read back;
/// - both doors read the same transactions (or refuse the same block).
///
/// Returns the block read, if any.
pub fn block(bytes: &[u8]) -> Option<Block> {
    let text = std::str::from_utf8(bytes).ok()?;
    let raw = accord_engine::json::from_slice::<RawBlock<'_>>(bytes);
    let block = match Block::from_json(text) {
        Ok(block) => block,
        Err(e) => {
            check_error("Block::from_json", &e);
            // The raw door may take a block whose transactions are not values of a block yet
            // (e.g. one repeats a key): then preparing it refuses the block.
            if let Ok(raw) = raw {
                if text.trim_start().starts_with('{') && !nests_near_the_limit(&e) {
                    let prepared =
                        PreparedBlock::from_raw(raw.height, raw.previous, raw.transactions);
                    assert!(
                        prepared.transactions.is_err(),
                        "the server's door accepted a block the command line refuses ({e})"
                    );
                }
            }
            return None;
        }
    };
    let hash = block.hash();
    assert_eq!(hash, block.hash(), "a block's hash changed");
    assert!(
        hash.starts_with("sha256:") && hash.len() == 71,
        "not a hash: {hash}"
    );
    let text_again = serde_json::to_string(&block).expect("a block serializes");
    let again = Block::from_json(&text_again)
        .unwrap_or_else(|e| panic!("re-serialized block does not re-parse: {e}\n{text_again}"));
    assert_eq!(block, again, "re-parsed block differs");
    assert_eq!(hash, again.hash(), "re-serializing changed the hash");
    // Canonical JSON is a fixed point: the block of its transactions' canonical forms hashes alike.
    let canonical = Block {
        height: block.height,
        previous: block.previous.clone(),
        transactions: block
            .transactions
            .iter()
            .map(|t| {
                let text = accord_engine::ledger::canonical_json(t);
                accord_engine::json::value_from_str(&text)
                    .unwrap_or_else(|e| panic!("canonical JSON does not read back: {e}\n{text}"))
            })
            .collect(),
    };
    assert_eq!(
        hash,
        canonical.hash(),
        "canonical JSON is not a fixed point"
    );
    let prepared = block.clone().prepare();
    assert_eq!(prepared.hash, hash, "prepare changed the hash");
    assert_eq!(prepared.height, block.height);
    assert_eq!(prepared.previous, block.previous);
    if let Err(e) = &prepared.transactions {
        check_error("PreparedBlock", e);
        assert!(
            e.field.starts_with("transactions["),
            "a block's transaction error does not name its place: {e:?}"
        );
    }
    let raw = raw.unwrap_or_else(|e| panic!("the server's door refused a valid block: {e}"));
    let from_raw = PreparedBlock::from_raw(raw.height, raw.previous, raw.transactions);
    assert_eq!(from_raw.hash, hash, "the server's door hashes differently");
    assert_eq!(
        from_raw.transactions, prepared.transactions,
        "the server's door reads the transactions differently"
    );
    if let Ok(transactions) = &prepared.transactions {
        for tx in transactions {
            transaction_round_trip(tx);
        }
    }
    Some(block)
}

/// The text of a multi-file bundle input: `=== path` starts a file that replaces (or adds) `path`,
/// `--- path` removes one; the lines up to the next header are the file. When the first line is
/// `#base default`, the files apply over `base`; otherwise over nothing.
pub fn bundle_files(bytes: &[u8], base: &BundleFiles) -> BundleFiles {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut rest = bytes;
    if let Some(after) = rest.strip_prefix(b"#base default\n".as_slice()) {
        files.extend(base.iter().map(|(p, b)| (p.to_owned(), b.to_vec())));
        rest = after;
    }
    // (path, content) of each file in order; `None` content removes the path.
    let mut sections: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    for line in rest.split_inclusive(|b| *b == b'\n') {
        let header = |prefix: &[u8]| {
            line.strip_prefix(prefix)
                .map(|p| String::from_utf8_lossy(p.strip_suffix(b"\n").unwrap_or(p)).into_owned())
        };
        if let Some(path) = header(b"=== ") {
            sections.push((path, Some(Vec::new())));
        } else if let Some(path) = header(b"--- ") {
            sections.push((path, None));
        } else if let Some((_, Some(content))) = sections.last_mut() {
            content.extend_from_slice(line);
        }
    }
    for (path, content) in sections {
        match content {
            Some(content) => {
                files.insert(path, content);
            }
            None => {
                files.remove(&path);
            }
        }
    }
    BundleFiles::new(files)
}

/// The inverse of [`bundle_files`] for seeds: `files` as `=== path` sections, over the default
/// base when `over_default`.
pub fn bundle_input<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    over_default: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    if over_default {
        out.extend_from_slice(b"#base default\n");
    }
    for (path, bytes) in files {
        out.extend_from_slice(format!("=== {path}\n").as_bytes());
        out.extend_from_slice(bytes);
        if !bytes.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    out
}

/// Bundle loading (`Bundle::compile` of in-memory files: manifest, jurisdiction, Cedar and Rhai
/// sources, schema, test cases) on `files`:
/// - compiling returns the bundle or a typed error whose message names a file or field, never a
///   panic;
/// - a compiled bundle's version is the hash of its files, and compiling again gives the same;
/// - its own test cases run: each passes or says why not, and every decision they make has the
///   shape of a decision; a test file that does not parse is a failure naming the file.
pub fn bundle(files: BundleFiles) -> Outcome {
    let version = files.version();
    let compiled = match Bundle::compile(files.clone()) {
        Ok(b) => b,
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.trim().is_empty(),
                "a bundle error without a message"
            );
            return Outcome::Refused;
        }
    };
    assert_eq!(
        compiled.version(),
        version,
        "the version is not the files' hash"
    );
    assert_eq!(compiled.files(), &files);
    for result in accord_engine::cases::run_bundle_tests(&compiled) {
        if let Some(d) = &result.decision {
            check_decision_shape(d);
        }
        if result.passed() {
            assert!(
                result.decision.is_some(),
                "a passing case without a decision"
            );
        } else {
            assert!(
                result.failures.iter().all(|f| !f.trim().is_empty()),
                "a failure without a message"
            );
        }
    }
    Outcome::Accepted
}
