//! The local client sockets: accepts clients (lltconfig, lltstat, lltmsg on
//! LLT's socket; gabconfig and GAB clients on GAB's), reads their requests
//! and data, and writes back responses, deliveries and events. The framing
//! and the queues are shared; each socket's messages are a [`Protocol`].

use crate::node::{Client, ClientId, Shared, CLIENT_QUEUE};
use llt::core::SendError;
use llt::ctl::{self, ClientMsg, Request, Response};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// Bind the socket, refusing to steal it from a live daemon.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        anyhow::bail!("another clusterd already answers on {}", path.display());
    }
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path).map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    // Root's tools only: the socket configures the cluster transport.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// One kind of local client socket (LLT's, GAB's): its message type and
/// what to do with each message.
pub(crate) trait Protocol: 'static {
    type In: for<'de> serde::Deserialize<'de>;
    /// Which socket, for logs.
    const NAME: &'static str;
    async fn handle(shared: &Shared, id: ClientId, msg: Self::In);
    /// The answer to a message that did not decode.
    fn undecodable(shared: &Shared, id: ClientId, error: String);
}

/// Accepts clients on one socket, for as long as the daemon runs. Client
/// ids come from the node, so they are unique across sockets.
pub async fn accept_loop<P: Protocol>(shared: Shared, listener: UnixListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                // The kernel's word on who connected (heartbeat kills use it).
                let pid = stream.peer_cred().ok().and_then(|c| c.pid()).map(|p| p as u32);
                let id = shared.borrow_mut().next_client_id();
                start_client::<P>(shared.clone(), stream, id, pid);
            }
            Err(e) => {
                warn!(socket = P::NAME, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn start_client<P: Protocol>(shared: Shared, stream: UnixStream, id: ClientId, pid: Option<u32>) {
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
    let writer = tokio::task::spawn_local(write_loop(shared.clone(), id, wr, rx));
    let reader = tokio::task::spawn_local(read_loop::<P>(shared.clone(), rd, id));
    let client = Client { tx, port: None, gab_port: None, pid, last_write: std::time::Instant::now(), tasks: vec![writer.abort_handle(), reader.abort_handle()] };
    shared.borrow_mut().add_client(id, client);
    debug!(client = id, socket = P::NAME, ?pid, "client connected");
}

/// Writes queued frames, coalescing whatever is ready into one write, and
/// tells the node how far behind the client still is.
async fn write_loop(shared: Shared, id: ClientId, mut wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Vec<u8>>) {
    let mut buf = Vec::new();
    while let Some(first) = rx.recv().await {
        buf.clear();
        buf.extend_from_slice(&first);
        while buf.len() < 256 * 1024 {
            match rx.try_recv() {
                Ok(f) => buf.extend_from_slice(&f),
                Err(_) => break,
            }
        }
        if wr.write_all(&buf).await.is_err() {
            return;
        }
        shared.borrow_mut().client_wrote(id, rx.len());
    }
}

async fn read_loop<P: Protocol>(shared: Shared, mut rd: OwnedReadHalf, id: ClientId) {
    let mut rbuf: Vec<u8> = Vec::with_capacity(256 * 1024);
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        let n = match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        rbuf.extend_from_slice(&chunk[..n]);
        let mut off = 0;
        loop {
            let len = match ctl::frame_len(&rbuf[off..]) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(e) => {
                    warn!(client = id, socket = P::NAME, "bad frame from client: {e}; disconnecting");
                    shared.borrow_mut().remove_client(id);
                    return;
                }
            };
            let body = &rbuf[off + 4..off + 4 + len];
            let msg = ctl::decode_body::<P::In>(body);
            off += 4 + len;
            match msg {
                Ok(m) => P::handle(&shared, id, m).await,
                Err(e) => {
                    warn!(client = id, socket = P::NAME, "undecodable message from client: {e}");
                    P::undecodable(&shared, id, format!("undecodable message: {e}"));
                }
            }
        }
        rbuf.drain(..off);
        shared.borrow_mut().flush();
    }
    shared.borrow_mut().remove_client(id);
    debug!(client = id, socket = P::NAME, "client disconnected");
}

/// LLT's control socket.
pub struct Llt;

impl Protocol for Llt {
    type In = ClientMsg;
    const NAME: &'static str = "llt";
    async fn handle(shared: &Shared, id: ClientId, msg: ClientMsg) {
        handle(shared, id, msg).await
    }
    fn undecodable(shared: &Shared, id: ClientId, error: String) {
        shared.borrow_mut().respond(id, Response::Error(error));
    }
}

async fn handle(shared: &Shared, id: ClientId, msg: ClientMsg) {
    match msg {
        ClientMsg::Request(Request::Ping { peer, count, size }) => {
            let r = match crate::node::ping(shared, peer, count.min(100_000), size as usize).await {
                Ok(rtts) => Response::RoundTrips(rtts),
                Err(e) => Response::Error(e),
            };
            shared.borrow_mut().respond(id, r);
        }
        ClientMsg::Request(req) => {
            let r = request(shared, id, req);
            if let Some(r) = r {
                shared.borrow_mut().respond(id, r);
            }
        }
        ClientMsg::Send { dest, data } => loop {
            let result = shared.borrow_mut().send(id, dest, &data);
            match result {
                Ok(()) => return,
                Err(SendError::WouldBlock) => {
                    // Backpressure: stop reading this client until acks
                    // open the window (rechecked at least every 10 ms, in
                    // case the peer went down meanwhile).
                    let opened = shared.borrow().window_opened.clone();
                    shared.borrow_mut().flush();
                    let _ = tokio::time::timeout(Duration::from_millis(10), opened.notified()).await;
                }
                Err(e) => return shared.borrow_mut().send_failed(id, dest, e),
            }
        },
    }
}

/// Answer a request; None when the answer comes later (configure).
fn request(shared: &Shared, id: ClientId, req: Request) -> Option<Response> {
    let mut node = shared.borrow_mut();
    Some(match req {
        Request::Configure => match node.configure(shared, Some(id)) {
            Ok(()) => return None,
            Err(e) => Response::Error(e),
        },
        Request::Unconfigure => match node.unconfigure_llt() {
            Ok(()) => Response::Ok,
            Err(e) => Response::Error(e),
        },
        Request::GetTimers => match node.timers() {
            Some(t) => Response::Timers(t),
            None => Response::Error("LLT is not configured".into()),
        },
        Request::SetTimer { name, value } => match node.set_timer(&name, value) {
            Ok(()) => Response::Timers(node.timers().unwrap_or_default()),
            Err(e) => Response::Error(e),
        },
        Request::Status => Response::Status(Box::new(node.status())),
        // Answered asynchronously by `handle`, which takes it first.
        Request::Ping { .. } => return None,
        Request::Bind { port } => match node.bind(id, port) {
            Ok(()) => {
                info!(client = id, port, "client bound to port");
                Response::Ok
            }
            Err(e) => Response::Error(e),
        },
    })
}
