//! The application: ABCI 2.0's methods over the server's state — the same state machine, store
//! and decision log `accord serve` runs — for the four connections CometBFT opens (consensus,
//! mempool, info, snapshot), as the `tower` services `tower-abci` serves.

use crate::events::{block_events, exec_result, fault_result};
use crate::tx::{decode, ChainBlock, TxFault, CODESPACE};
use crate::{committed, genesis, query, sidecar};
use accord_engine::ledger::{Block, PreparedBlock};
use accord_engine::Transaction;
use accord_governance::{BlockAnswer, BlockError, TxResult};
use accord_server::routes::blocks::apply_and_log;
use accord_server::AppState;
use axum::Router;
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tendermint::abci::{request, response};
use tendermint::v0_38::abci::{
    ConsensusRequest, ConsensusResponse, InfoRequest, InfoResponse, MempoolRequest,
    MempoolResponse, SnapshotRequest, SnapshotResponse,
};
use tendermint::AppHash;
use tower::Service;
use tower_abci::BoxError;

/// The application, cloned into every connection and request.
#[derive(Clone)]
pub struct App {
    state: AppState,
    /// The HTTP sidecar's routes; queries are answered by its read endpoints.
    http: Router,
}

/// What an ABCI call answers, or why the connection must stop (CometBFT halts on it: a block
/// that cannot be applied or stored leaves no answer it could go on with).
type Answer<T> = Result<T, BoxError>;

fn fail(why: impl std::fmt::Display) -> BoxError {
    why.to_string().into()
}

impl App {
    pub fn new(state: AppState) -> Self {
        let http = sidecar::router(state.clone());
        App { state, http }
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The HTTP sidecar's routes (those of `accord serve`, less the ones that write state).
    pub fn http(&self) -> Router {
        self.http.clone()
    }

    /// Checks the chain's genesis against this node's and answers the genesis state root.
    pub async fn init_chain(&self, req: request::InitChain) -> Answer<response::InitChain> {
        let opener = &self.state.opener;
        let digest = opener.genesis.digest(opener.bundle.version());
        genesis::check_app_state(&req.app_state_bytes, &digest).map_err(fail)?;
        let initial = req.initial_height.value();
        if initial != opener.genesis.initial_height {
            return Err(fail(format!(
                "the chain starts at height {initial}, the Accord genesis at {}",
                opener.genesis.initial_height
            )));
        }
        let (height, root) = self
            .state
            .node()
            .map_err(fail)?
            .read(|_, machine| (machine.height(), machine.state_root()));
        if let Some(height) = height {
            return Err(fail(format!(
                "the data directory already holds blocks up to height {height}: a new chain needs a fresh one"
            )));
        }
        Ok(response::InitChain {
            consensus_params: None,
            validators: Vec::new(),
            app_hash: app_hash(&root)?,
        })
    }

    /// The last committed height and its state root: CometBFT replays the blocks after it.
    pub async fn info(&self) -> Answer<response::Info> {
        let storage = self.state.storage().map_err(fail)?;
        let committed = committed::read(&storage.db).map_err(fail)?;
        let (height, hash) = match committed {
            None => (0, AppHash::default()),
            Some(height) => {
                let answer = storage
                    .node
                    .lock()
                    .answer(height)
                    .map_err(fail)?
                    .ok_or_else(|| {
                        fail(format!("committed height {height} has no stored block"))
                    })?;
                (height, app_hash(&answer.state_root)?)
            }
        };
        Ok(response::Info {
            data: "accord".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            app_version: APP_VERSION,
            last_block_height: height.try_into().map_err(fail)?,
            last_block_app_hash: hash,
        })
    }

    /// Refuses what the state machine would refuse: a transaction that does not decode, or a
    /// consent, representation, agreement or governance transaction the current state refuses
    /// (a bad signature, not a member, …). An access transaction that decodes is always
    /// admitted: a deny is a decision, not a refusal.
    pub async fn check_tx(&self, req: request::CheckTx) -> response::CheckTx {
        match self.check(&req.tx).await {
            Ok(()) => response::CheckTx::default(),
            Err(fault) => response::CheckTx {
                code: fault.code.into(),
                log: fault.log,
                codespace: CODESPACE.to_owned(),
                ..Default::default()
            },
        }
    }

    async fn check(&self, tx: &[u8]) -> Result<(), TxFault> {
        let decoded = decode(tx)?;
        if matches!(decoded.transaction, Transaction::Access(_)) {
            return Ok(());
        }
        let value = decoded.value;
        let trial = self
            .state
            .on_node(move |node| {
                let mut machine = node.lock();
                let block = Block {
                    height: machine.next_height(),
                    previous: None,
                    transactions: vec![value],
                };
                machine.dry_run(block.prepare())
            })
            .await
            .map_err(|p| TxFault::unavailable(p.detail))?
            .map_err(TxFault::unavailable)?;
        match trial.results.first() {
            Some(TxResult::Refused { refused, .. }) => Err(TxFault::refused(refused)),
            _ => Ok(()),
        }
    }

    /// The proposer's block: the mempool's transactions less those that do not decode or that
    /// the state would refuse where they stand, within `max_tx_bytes`.
    pub async fn prepare_proposal(
        &self,
        req: request::PrepareProposal,
    ) -> Answer<response::PrepareProposal> {
        let chain = ChainBlock::new(req.height.value(), &req.txs);
        let trial = self.trial(chain.block).await?.map_err(fail)?;
        let mut txs = Vec::with_capacity(req.txs.len());
        let mut size: i64 = 0;
        for (tx, slot) in req.txs.into_iter().zip(&chain.slots) {
            if !counts(slot, &trial) {
                tracing::debug!(
                    height = trial.height,
                    "proposal: dropped a transaction the state refuses"
                );
                continue;
            }
            let len = i64::try_from(tx.len()).unwrap_or(i64::MAX);
            // Dropping the tail keeps every earlier transaction's outcome.
            if size.saturating_add(len) > req.max_tx_bytes {
                break;
            }
            size += len;
            txs.push(tx);
        }
        Ok(response::PrepareProposal { txs })
    }

    /// Accepts a proposal only if every transaction decodes and the state accepts each where it
    /// stands in the block.
    pub async fn process_proposal(
        &self,
        req: request::ProcessProposal,
    ) -> Answer<response::ProcessProposal> {
        let chain = ChainBlock::new(req.height.value(), &req.txs);
        if !chain.all_decoded() {
            return Ok(response::ProcessProposal::Reject);
        }
        let trial = match self.trial(chain.block).await? {
            Ok(trial) => trial,
            Err(BlockError::OutOfOrder { expected, got }) => {
                tracing::warn!(expected, got, "proposal: not the next height");
                return Ok(response::ProcessProposal::Reject);
            }
            Err(e) => return Err(fail(e)),
        };
        Ok(if chain.slots.iter().all(|slot| counts(slot, &trial)) {
            response::ProcessProposal::Accept
        } else {
            response::ProcessProposal::Reject
        })
    }

    /// Applies the block through the path `POST /v1/blocks` takes (decisions in the decision
    /// log before the answer), and answers one result per transaction, the block's events and the
    /// state root as the app hash. A block already applied (a replay after a restart) answers as
    /// it did.
    pub async fn finalize_block(
        &self,
        req: request::FinalizeBlock,
    ) -> Answer<response::FinalizeBlock> {
        self.state.writable().map_err(fail)?;
        let chain = ChainBlock::new(req.height.value(), &req.txs);
        let log = Arc::clone(&self.state.storage().map_err(fail)?.log);
        let block = chain.block;
        let logged = self
            .state
            .on_node(move |node| apply_and_log(node, &log, block))
            .await
            .map_err(fail)?
            .map_err(|refusal| fail(refusal.error))?;
        let answer = logged.answer;
        logged
            .logging
            .done(&self.state, answer.height)
            .await
            .map_err(fail)?;
        // The advisory analysis of the proposals it accepted, off the consensus path.
        self.state
            .analyse_later(accord_server::routes::governance::accepted_proposals(
                &answer,
            ));
        let tx_results = chain
            .slots
            .iter()
            .map(|slot| match slot {
                Ok(i) => match answer.results.get(*i) {
                    Some(result) => exec_result(result),
                    None => fault_result(&TxFault::unavailable("the block has no result for it")),
                },
                Err(fault) => fault_result(fault),
            })
            .collect();
        Ok(response::FinalizeBlock {
            events: block_events(&answer),
            tx_results,
            validator_updates: Vec::new(),
            consensus_param_updates: None,
            app_hash: app_hash(&answer.state_root)?,
        })
    }

    /// Records the last applied block as committed, durably: [`App::info`] reports it after a
    /// restart. (The block itself was stored when it was applied.)
    pub async fn commit(&self) -> Answer<response::Commit> {
        let storage = self.state.storage().map_err(fail)?;
        if let Some(height) = storage.node.applied_height() {
            let db = storage.db.clone();
            tokio::task::spawn_blocking(move || committed::write(&db, height))
                .await
                .map_err(fail)?
                .map_err(fail)?;
        }
        Ok(response::Commit {
            data: Bytes::new(),
            retain_height: 0u32.into(),
        })
    }

    /// `abci_query`: the read paths (docs/contract.md §7).
    pub async fn query(&self, req: request::Query) -> response::Query {
        query::answer(self, req).await
    }

    /// The last committed height (0 before the first block).
    pub(crate) fn committed_height(&self) -> u64 {
        self.state
            .storage()
            .ok()
            .and_then(|s| committed::read(&s.db).ok().flatten())
            .unwrap_or(0)
    }

    /// What applying `block` next would answer, on the blocking pool.
    async fn trial(&self, block: PreparedBlock) -> Answer<Result<BlockAnswer, BlockError>> {
        self.state
            .on_node(move |node| node.lock().dry_run(block))
            .await
            .map_err(fail)
    }
}

/// The ABCI application version reported by `Info`.
pub const APP_VERSION: u64 = 1;

/// Whether a transaction counts in a block: it decodes, and the state does not refuse it.
fn counts(slot: &Result<usize, TxFault>, trial: &BlockAnswer) -> bool {
    match slot {
        Ok(i) => matches!(
            trial.results.get(*i),
            Some(TxResult::Decided(_) | TxResult::Applied { .. })
        ),
        Err(_) => false,
    }
}

/// The app hash of a state root: the 32 bytes of its `sha256:` hex digest.
pub fn app_hash(state_root: &str) -> Answer<AppHash> {
    let digest = state_root
        .strip_prefix("sha256:")
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| fail(format!("state root `{state_root}` is not sha256:<hex>")))?;
    AppHash::try_from(digest).map_err(fail)
}

type Reply<T> = Pin<Box<dyn Future<Output = Answer<T>> + Send + 'static>>;

impl Service<ConsensusRequest> for App {
    type Response = ConsensusResponse;
    type Error = BoxError;
    type Future = Reply<ConsensusResponse>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Answer<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: ConsensusRequest) -> Self::Future {
        let app = self.clone();
        Box::pin(async move {
            let answer = app.consensus(req).await;
            if let Err(error) = &answer {
                tracing::error!(%error, "consensus call failed: the connection closes and CometBFT halts; a restart resumes from the last committed block");
            }
            answer
        })
    }
}

impl App {
    async fn consensus(&self, req: ConsensusRequest) -> Answer<ConsensusResponse> {
        let app = self;
        {
            Ok(match req {
                ConsensusRequest::InitChain(r) => {
                    ConsensusResponse::InitChain(app.init_chain(r).await?)
                }
                ConsensusRequest::PrepareProposal(r) => {
                    ConsensusResponse::PrepareProposal(app.prepare_proposal(r).await?)
                }
                ConsensusRequest::ProcessProposal(r) => {
                    ConsensusResponse::ProcessProposal(app.process_proposal(r).await?)
                }
                ConsensusRequest::FinalizeBlock(r) => {
                    ConsensusResponse::FinalizeBlock(app.finalize_block(r).await?)
                }
                ConsensusRequest::Commit => ConsensusResponse::Commit(app.commit().await?),
                // Accord does not extend votes.
                ConsensusRequest::ExtendVote(_) => {
                    ConsensusResponse::ExtendVote(response::ExtendVote {
                        vote_extension: Bytes::new(),
                    })
                }
                ConsensusRequest::VerifyVoteExtension(_) => {
                    ConsensusResponse::VerifyVoteExtension(response::VerifyVoteExtension::Accept)
                }
            })
        }
    }
}

impl Service<MempoolRequest> for App {
    type Response = MempoolResponse;
    type Error = BoxError;
    type Future = Reply<MempoolResponse>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Answer<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: MempoolRequest) -> Self::Future {
        let app = self.clone();
        Box::pin(async move {
            Ok(match req {
                MempoolRequest::CheckTx(r) => MempoolResponse::CheckTx(app.check_tx(r).await),
            })
        })
    }
}

impl Service<InfoRequest> for App {
    type Response = InfoResponse;
    type Error = BoxError;
    type Future = Reply<InfoResponse>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Answer<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: InfoRequest) -> Self::Future {
        let app = self.clone();
        Box::pin(async move {
            Ok(match req {
                InfoRequest::Info(_) => InfoResponse::Info(app.info().await?),
                InfoRequest::Query(r) => InfoResponse::Query(app.query(r).await),
                InfoRequest::Echo(r) => InfoResponse::Echo(response::Echo { message: r.message }),
            })
        })
    }
}

/// State sync is not offered: no snapshots are listed, and none is taken from peers (a node
/// joins by replaying blocks, which also fills its decision log).
impl Service<SnapshotRequest> for App {
    type Response = SnapshotResponse;
    type Error = BoxError;
    type Future = Reply<SnapshotResponse>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Answer<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: SnapshotRequest) -> Self::Future {
        Box::pin(async move {
            Ok(match req {
                SnapshotRequest::ListSnapshots => {
                    SnapshotResponse::ListSnapshots(Default::default())
                }
                SnapshotRequest::OfferSnapshot(_) => {
                    SnapshotResponse::OfferSnapshot(response::OfferSnapshot::Reject)
                }
                SnapshotRequest::LoadSnapshotChunk(_) => {
                    SnapshotResponse::LoadSnapshotChunk(Default::default())
                }
                SnapshotRequest::ApplySnapshotChunk(_) => {
                    SnapshotResponse::ApplySnapshotChunk(response::ApplySnapshotChunk {
                        result: response::ApplySnapshotChunkResult::Abort,
                        refetch_chunks: Vec::new(),
                        reject_senders: Vec::new(),
                    })
                }
            })
        })
    }
}
