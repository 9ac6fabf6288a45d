//! GAB's client socket ($HA_ROOT/run/ha/gab.sock): gabconfig's requests,
//! and port clients' registrations, broadcasts, unicasts and heartbeats.
//! The protocol is in `gab::ctl`.

use crate::control::Protocol;
use crate::node::{ClientId, Shared};
use gab::core::GabError;
use gab::ctl::{GabClientMsg, GabRequest, GabResponse, GabServerMsg};
use llt::NodeId;
use std::time::Duration;

pub struct GabSocket;

impl Protocol for GabSocket {
    type In = GabClientMsg;
    const NAME: &'static str = "gab";

    async fn handle(shared: &Shared, id: ClientId, msg: GabClientMsg) {
        match msg {
            GabClientMsg::Request(req) => {
                let r = request(shared, id, req);
                shared.borrow_mut().gab_respond(id, r);
            }
            GabClientMsg::Heartbeat => shared.borrow_mut().gab_heartbeat(id),
            GabClientMsg::Broadcast { data } => send(shared, id, None, data).await,
            GabClientMsg::Unicast { dest, data } => send(shared, id, Some(dest), data).await,
        }
    }

    fn undecodable(shared: &Shared, id: ClientId, error: String) {
        shared.borrow_mut().gab_respond(id, GabResponse::Error(error));
    }
}

/// Submit, waiting while GAB has too many of this node's messages not yet
/// ordered: the client's writes block meanwhile (backpressure).
async fn send(shared: &Shared, id: ClientId, dest: Option<NodeId>, data: Vec<u8>) {
    loop {
        let blocked = shared.borrow().gab.as_ref().is_some_and(|g| g.core.would_block());
        if !blocked {
            break;
        }
        // Ordering progresses as frames come and go; recheck at least
        // every 10 ms in case the view is changing meanwhile.
        let opened = shared.borrow().window_opened.clone();
        shared.borrow_mut().flush();
        let _ = tokio::time::timeout(Duration::from_millis(10), opened.notified()).await;
    }
    let result = shared.borrow_mut().gab_send(id, dest, data);
    if let Err(e) = result {
        let error = match e {
            GabError::NotRegistered(_) => "register a port before sending".to_string(),
            e => e.to_string(),
        };
        shared.borrow_mut().gab_send_failed(id, GabServerMsg::SendFailed { error });
    }
}

fn request(shared: &Shared, id: ClientId, req: GabRequest) -> GabResponse {
    let mut node = shared.borrow_mut();
    let done = |r: Result<(), String>| match r {
        Ok(()) => GabResponse::Ok,
        Err(e) => GabResponse::Error(e),
    };
    match req {
        GabRequest::Configure { seed_n } => done(node.gab_configure(seed_n)),
        GabRequest::Seed => done(node.gab_seed()),
        GabRequest::Unconfigure => done(node.gab_unconfigure()),
        GabRequest::SetStableTimeout { ms } => done(node.gab_set_stable_timeout(ms)),
        GabRequest::Status => GabResponse::Status(Box::new(node.gab_status())),
        GabRequest::Register { port, heartbeat } => done(node.gab_register(id, port, heartbeat)),
    }
}
