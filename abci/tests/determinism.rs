//! Determinism under a BFT engine: every node that finalizes the same blocks answers the same app
//! hashes and results, whatever its core count and whatever it evaluates meanwhile.

use super::*;
use accord_engine::ledger::Block;
use accord_governance::StateMachine;

/// A workload of mixed blocks: long runs of access transactions (decided on every core),
/// consents, a refusal, junk, and a governance round.
fn workload() -> Vec<Vec<Value>> {
    let grant = json!({ "id": "c-1", "kind": "consent", "timestamp": "2026-02-01T09:00:00Z",
        "consent": { "id": "consent/c-1", "status": "active", "patient": "patient/d-4",
                     "grantee": "org/uni-lab", "purposes": ["HRESCH"], "actions": ["read"],
                     "data_categories": ["general"],
                     "period": { "start": "2026-02-01T00:00:00Z", "end": "2027-02-01T00:00:00Z" } } });
    let accesses = |block: u32| -> Vec<Value> {
        (0..120)
            .map(|i| match i % 3 {
                0 => allow_tx(&format!("a-{block}-{i}")),
                1 => deny_tx(&format!("a-{block}-{i}")),
                _ => share_to_uruguay(&format!("a-{block}-{i}")),
            })
            .collect()
    };
    let mut first = accesses(1);
    first.insert(40, grant);
    first.insert(80, revoke_unknown("c-x"));
    let mut second = accesses(2);
    second.insert(0, signed("g-1", tightening(), "st-marys"));
    vec![first, second, accesses(3)]
}

#[tokio::test]
async fn two_nodes_fed_the_same_blocks_answer_the_same_app_hashes_and_results() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a = app(a_dir.path()).await;
    let b = app(b_dir.path()).await;
    let blocks = workload();
    let a_answers = run_blocks(&a, &blocks).await;

    // Node b evaluates and checks transactions concurrently with its blocks.
    let busy = {
        let b = b.clone();
        tokio::spawn(async move {
            let router = b.http();
            for i in 0..40 {
                let tx = if i % 2 == 0 {
                    allow_tx(&format!("e-{i}"))
                } else {
                    deny_tx(&format!("e-{i}"))
                };
                let (status, _) = super::finalize::http(
                    router.clone(),
                    axum::http::Method::POST,
                    "/v1/evaluate",
                    Some(&tx),
                )
                .await;
                assert!(status.is_success());
                let checked = b
                    .check_tx(request::CheckTx {
                        tx: super::tx(&signed(&format!("g-{i}"), tightening(), "st-marys")),
                        kind: request::CheckTxKind::New,
                    })
                    .await;
                assert!(
                    checked.code.is_ok() || checked.code.value() == accord_abci::tx::code::REFUSED
                );
            }
        })
    };
    let b_answers = run_blocks(&b, &blocks).await;
    busy.await.unwrap();

    assert_eq!(a_answers.len(), 3);
    for (h, (x, y)) in a_answers.iter().zip(&b_answers).enumerate() {
        assert_eq!(x.app_hash, y.app_hash, "height {}", h + 1);
        assert_eq!(x, y, "height {}: the same results and events", h + 1);
    }
    assert_eq!(a.info().await.unwrap(), b.info().await.unwrap());
}

/// The state machine behind `FinalizeBlock` splits a block's decisions over rayon's threads: the
/// answers and state roots do not depend on how many there are.
#[test]
fn a_block_answers_the_same_on_one_core_as_on_many() {
    let genesis =
        accord_governance::Genesis::load(&root().join("governance/genesis.dev.yaml")).unwrap();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut machine = StateMachine::new(&genesis, bundle());
            workload()
                .into_iter()
                .enumerate()
                .map(|(i, transactions)| {
                    let block = Block {
                        height: i as u64 + 1,
                        previous: None,
                        transactions,
                    };
                    machine.apply_block(block).unwrap().to_json().to_owned()
                })
                .collect::<Vec<_>>()
        })
    };
    let one = run(1);
    assert_eq!(one, run(4));
    assert_eq!(one, run(7));
}
