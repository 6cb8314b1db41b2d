//! The application over a real Unix socket, as CometBFT speaks to it: protobuf messages, each
//! prefixed with its length as a varint, through `tower-abci`'s server. The client here is a raw
//! codec over `prost`, independent of the server's.

use super::*;
use bytes::{Buf, BytesMut};
use prost::Message;
use tendermint::v0_38::abci::{Request, Response};
use tendermint_proto::v0_38::abci as pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

struct Client {
    stream: UnixStream,
    buffer: BytesMut,
}

impl Client {
    async fn connect(path: &Path) -> Self {
        for _ in 0..100 {
            if let Ok(stream) = UnixStream::connect(path).await {
                return Client {
                    stream,
                    buffer: BytesMut::new(),
                };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the ABCI socket does not accept");
    }

    async fn send(&mut self, request: Request) {
        let message = pb::Request::from(request);
        self.stream
            .write_all(&message.encode_length_delimited_to_vec())
            .await
            .unwrap();
    }

    async fn receive(&mut self) -> Response {
        loop {
            let mut peek = &self.buffer[..];
            if let Ok(len) = prost::encoding::decode_varint(&mut peek) {
                let head = self.buffer.len() - peek.len();
                if peek.len() >= len as usize {
                    self.buffer.advance(head);
                    let body = self.buffer.split_to(len as usize);
                    let message = pb::Response::decode(body).unwrap();
                    return Response::try_from(message).unwrap();
                }
            }
            let read = self.stream.read_buf(&mut self.buffer).await.unwrap();
            assert!(read > 0, "the server closed the connection");
        }
    }

    async fn call(&mut self, request: Request) -> Response {
        self.send(request).await;
        self.receive().await
    }
}

#[tokio::test]
async fn a_chain_runs_over_the_abci_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("abci.sock");
    // A socket file left by an earlier run is replaced.
    std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let app = app(&dir.path().join("data")).await;
    let server = accord_abci::abci_server(app.clone()).unwrap();
    let serving = tokio::spawn(accord_abci::listen(
        server,
        accord_abci::AbciAddr::Unix(socket.clone()),
    ));
    let mut client = Client::connect(&socket).await;

    let Response::Echo(echo) = client
        .call(Request::Echo(request::Echo {
            message: "hi".into(),
        }))
        .await
    else {
        panic!("echo");
    };
    assert_eq!(echo.message, "hi");
    let Response::Info(info) = client
        .call(Request::Info(request::Info {
            version: "0.38.17".into(),
            block_version: 11,
            p2p_version: 8,
            abci_version: "2.0.0".into(),
        }))
        .await
    else {
        panic!("info");
    };
    assert_eq!(info.last_block_height.value(), 0);
    let Response::InitChain(init) = client.call(Request::InitChain(init_chain(b"{}", 1))).await
    else {
        panic!("init chain");
    };
    assert_eq!(init.app_hash.as_bytes().len(), 32);

    let Response::CheckTx(junk) = client
        .call(Request::CheckTx(request::CheckTx {
            tx: Bytes::from_static(b"junk"),
            kind: request::CheckTxKind::New,
        }))
        .await
    else {
        panic!("check tx");
    };
    assert_eq!(junk.code.value(), accord_abci::tx::code::MALFORMED);

    let offered = vec![
        tx(&allow_tx("a-1")),
        tx(&forged("g-forged")),
        tx(&deny_tx("a-2")),
    ];
    let Response::PrepareProposal(prepared) = client
        .call(Request::PrepareProposal(prepare(
            1,
            offered.clone(),
            1 << 20,
        )))
        .await
    else {
        panic!("prepare");
    };
    assert_eq!(prepared.txs, vec![offered[0].clone(), offered[2].clone()]);
    let Response::ProcessProposal(verdict) = client
        .call(Request::ProcessProposal(process(1, prepared.txs.clone())))
        .await
    else {
        panic!("process");
    };
    assert_eq!(verdict, response::ProcessProposal::Accept);
    let Response::FinalizeBlock(finalized) = client
        .call(Request::FinalizeBlock(finalize(1, prepared.txs)))
        .await
    else {
        panic!("finalize");
    };
    assert_eq!(finalized.tx_results.len(), 2);
    assert_eq!(json_of(&finalized.tx_results[1].data)["decision"], "deny");
    let Response::Commit(_) = client.call(Request::Commit).await else {
        panic!("commit");
    };
    let Response::Info(info) = client
        .call(Request::Info(request::Info {
            version: String::new(),
            block_version: 0,
            p2p_version: 0,
            abci_version: String::new(),
        }))
        .await
    else {
        panic!("info");
    };
    assert_eq!(info.last_block_height.value(), 1);
    assert_eq!(info.last_block_app_hash, finalized.app_hash);
    let Response::Query(block) = client.call(Request::Query(query("/block/1"))).await else {
        panic!("query");
    };
    assert_eq!(json_of(&block.value)["results"][0]["decision"], "allow");
    let Response::Flush = client.call(Request::Flush).await else {
        panic!("flush");
    };
    serving.abort();
}
