//! The listener: TCP connections whose first request line is checked before HTTP parsing starts,
//! so that a request the HTTP layer would refuse with a bare status (a garbage request line, a
//! request target of tens of kilobytes) gets an RFC 9457 problem like every other error.
//!
//! Only the request line of a connection's first request is checked here: it is what a scanner
//! or a confused client sends first. Everything after it, and every later request on the
//! connection, goes to the HTTP layer unchanged.
//!
//! With TLS ([`crate::tls`]) the check applies to the decrypted bytes. The handshake runs on the
//! connection's own task, driven by its first read, never in the accepting loop: a client that
//! stalls its handshake holds up no other connection.

use crate::problem::{Problem, ProblemKind};
use crate::tls::TlsAcceptor;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The longest request target accepted, in bytes. Accord's own URLs are short (the longest
/// carries a proposal id or a patient id and a page cursor); 8 KiB is what common proxies allow.
pub const MAX_TARGET: usize = 8 * 1024;

/// Bytes of the request line read before it is judged too long.
const MAX_LINE: usize = MAX_TARGET + 64;

/// Accepts TCP connections, with TLS or without, and wraps each in a [`CheckedStream`].
pub struct CheckedListener {
    tcp: TcpListener,
    tls: Option<Arc<TlsAcceptor>>,
}

impl CheckedListener {
    /// Plain HTTP.
    pub fn plain(tcp: TcpListener) -> Self {
        CheckedListener { tcp, tls: None }
    }

    /// HTTPS with the acceptor's configuration in force at each connection's start.
    pub fn tls(tcp: TcpListener, acceptor: Arc<TlsAcceptor>) -> Self {
        CheckedListener {
            tcp,
            tls: Some(acceptor),
        }
    }

    /// The TLS acceptor, when the listener speaks TLS.
    pub fn acceptor(&self) -> Option<&Arc<TlsAcceptor>> {
        self.tls.as_ref()
    }
}

impl From<TcpListener> for CheckedListener {
    fn from(tcp: TcpListener) -> Self {
        CheckedListener::plain(tcp)
    }
}

impl axum::serve::Listener for CheckedListener {
    type Io = CheckedStream<Transport>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.tcp).await;
        let transport = match &self.tls {
            None => Transport::Plain(stream),
            Some(acceptor) => Transport::Handshake(Box::new(acceptor.accept(stream)), addr),
        };
        (CheckedStream::new(transport), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A connection's bytes: plain TCP, or TLS (its handshake first).
pub enum Transport {
    Plain(TcpStream),
    Handshake(Box<tokio_rustls::Accept<TcpStream>>, SocketAddr),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// The handshake failed; the connection is over.
    Failed,
}

impl Transport {
    /// Drives the handshake, if one is under way, to its end.
    fn poll_established(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Transport::Handshake(accept, peer) = self {
            let peer = *peer;
            match ready!(Pin::new(accept.as_mut()).poll(cx)) {
                Ok(stream) => *self = Transport::Tls(Box::new(stream)),
                Err(e) => {
                    tracing::info!(%peer, error = %e, "TLS handshake failed");
                    *self = Transport::Failed;
                    return Poll::Ready(Err(e));
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

fn failed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the TLS handshake failed")
}

impl AsyncRead for Transport {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_established(cx))?;
        match &mut *self {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::Handshake(..) | Transport::Failed => Poll::Ready(Err(failed())),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_established(cx))?;
        match &mut *self {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, data),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
            Transport::Handshake(..) | Transport::Failed => Poll::Ready(Err(failed())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut *self {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::Handshake(..) | Transport::Failed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut *self {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::Handshake(..) | Transport::Failed => Poll::Ready(Ok(())),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_established(cx))?;
        match &mut *self {
            Transport::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Transport::Handshake(..) | Transport::Failed => Poll::Ready(Err(failed())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(s) => s.is_write_vectored(),
            Transport::Tls(s) => s.is_write_vectored(),
            Transport::Handshake(..) | Transport::Failed => false,
        }
    }
}

/// The peer address of a connection, as handlers see it through
/// `axum::extract::ConnectInfo<PeerAddr>` ([`crate::extract::ClientAddr`]).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, CheckedListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, CheckedListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// A connection whose first request line is read and checked before the HTTP layer sees it.
pub struct CheckedStream<S> {
    inner: S,
    state: State,
}

enum State {
    /// Reading the first request line.
    Head(Vec<u8>),
    /// The line was fine: hand the bytes read so far to the HTTP layer, then pass through.
    Replay(Vec<u8>, usize),
    Pass,
    /// The line was refused: write this problem response, then end the connection.
    Refuse(Vec<u8>, usize),
    Closed,
}

impl<S> CheckedStream<S> {
    fn new(inner: S) -> Self {
        CheckedStream {
            inner,
            state: State::Head(Vec::new()),
        }
    }
}

/// Judges the start of a connection: `None` while more bytes are needed, `Some(Ok(()))` to pass
/// it on, `Some(Err(problem))` to refuse it.
fn judge(head: &[u8], eof: bool) -> Option<Result<(), Problem>> {
    // RFC 9112 §2.2: a server should ignore empty lines received before the request line.
    let start = head
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .unwrap_or(head.len());
    let rest = &head[start..];
    let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
        if rest.len() > MAX_LINE {
            return Some(Err(too_long(rest)));
        }
        // An incomplete line at the end of input is the HTTP layer's to report (it closes).
        return eof.then_some(Ok(()));
    };
    Some(request_line(&rest[..end]))
}

/// `method SP request-target SP HTTP-version` (RFC 9112 §3).
fn request_line(line: &[u8]) -> Result<(), Problem> {
    let bad = |why: &str| {
        Err(Problem::new(
            ProblemKind::BadRequestLine,
            format!("the request line {why}: expected `METHOD /path HTTP/1.1`"),
        ))
    };
    let mut parts = line.split(|b| *b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return bad("does not have three parts separated by single spaces");
    };
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if method.is_empty() || method.len() > 32 || !method.iter().all(token) {
        return bad("does not start with a method");
    }
    if target.len() > MAX_TARGET {
        return Err(too_long(line));
    }
    if target.is_empty() || !target.iter().all(|b| b.is_ascii_graphic()) {
        return bad("has no valid request target");
    }
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return bad("does not end with HTTP/1.1 or HTTP/1.0");
    }
    Ok(())
}

fn too_long(line: &[u8]) -> Problem {
    Problem::new(
        ProblemKind::UriTooLong,
        format!(
            "the request target is longer than {MAX_TARGET} bytes ({}+ received)",
            line.len()
        ),
    )
}

/// The whole HTTP/1.1 response of a refusal; the connection closes after it.
fn response(problem: &Problem) -> Vec<u8> {
    let body = problem.body().to_string();
    let status = problem.kind.status();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes()
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for CheckedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Pass => return Pin::new(&mut this.inner).poll_read(cx, buf),
                State::Closed => return Poll::Ready(Ok(())),
                State::Replay(bytes, at) => {
                    let n = (bytes.len() - *at).min(buf.remaining());
                    buf.put_slice(&bytes[*at..*at + n]);
                    *at += n;
                    if *at == bytes.len() {
                        this.state = State::Pass;
                    }
                    return Poll::Ready(Ok(()));
                }
                State::Refuse(out, at) => {
                    while *at < out.len() {
                        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &out[*at..]))?;
                        if n == 0 {
                            break;
                        }
                        *at += n;
                    }
                    ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
                    // The HTTP layer sees a connection that closed before any request.
                    this.state = State::Closed;
                    return Poll::Ready(Ok(()));
                }
                State::Head(head) => {
                    let mut chunk = [0u8; 2048];
                    let mut read = ReadBuf::new(&mut chunk);
                    ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
                    let eof = read.filled().is_empty();
                    head.extend_from_slice(read.filled());
                    match judge(head, eof) {
                        None => continue,
                        Some(Ok(())) => {
                            let bytes = std::mem::take(head);
                            this.state = if bytes.is_empty() {
                                State::Closed
                            } else {
                                State::Replay(bytes, 0)
                            };
                        }
                        Some(Err(problem)) => {
                            tracing::info!(problem = %problem, "refused before HTTP parsing");
                            this.state = State::Refuse(response(&problem), 0);
                        }
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for CheckedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(head: &str) -> Option<Result<(), ProblemKind>> {
        judge(head.as_bytes(), false).map(|r| r.map_err(|p| p.kind))
    }

    #[test]
    fn a_valid_request_line_passes_and_an_incomplete_one_waits() {
        assert_eq!(
            verdict("GET /v1/decisions?limit=10 HTTP/1.1\r\nHost: x\r\n"),
            Some(Ok(()))
        );
        assert_eq!(verdict("\r\nPOST /v1/evaluate HTTP/1.0\r\n"), Some(Ok(())));
        assert_eq!(verdict("GET /v1/deci"), None);
        assert_eq!(judge(b"GET /v1/deci", true).map(|r| r.is_ok()), Some(true));
    }

    #[test]
    fn garbage_is_a_bad_request_line() {
        for head in [
            "hello\r\n",
            "GET\r\n",
            "GET /  HTTP/1.1\r\n",
            "GET / HTTP/2.0\r\n",
            "G\x01T / HTTP/1.1\r\n",
            "GET /a\tb HTTP/1.1\r\n",
        ] {
            assert_eq!(
                verdict(head),
                Some(Err(ProblemKind::BadRequestLine)),
                "{head:?}"
            );
        }
    }

    #[test]
    fn a_long_target_is_uri_too_long_even_before_its_line_ends() {
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_TARGET));
        assert_eq!(verdict(&long), Some(Err(ProblemKind::UriTooLong)));
        let unfinished = format!("GET /{}", "a".repeat(MAX_LINE + 1));
        assert_eq!(verdict(&unfinished), Some(Err(ProblemKind::UriTooLong)));
        let at_limit = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_TARGET - 1));
        assert_eq!(verdict(&at_limit), Some(Ok(())));
    }

    #[test]
    fn a_refusal_is_a_complete_problem_response() {
        let p = Problem::new(ProblemKind::UriTooLong, "too long");
        let text = String::from_utf8(response(&p)).expect("utf-8");
        assert!(text.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{text}");
        assert!(text.contains("content-type: application/problem+json\r\n"));
        assert!(text.contains("connection: close\r\n"));
        let body = text.split("\r\n\r\n").nth(1).expect("body");
        assert!(text.contains(&format!("content-length: {}\r\n", body.len())));
        let json = accord_engine::json::value_from_str(body).expect("json");
        assert_eq!(json["type"], "https://accord.dev/problems/uri-too-long");
    }
}
