//! Fencing's command socket ($HA_ROOT/run/ha/vxfen.sock): `vxfenconfig`
//! and `vxfenadm -d`. The protocol is in `fencing::ctl`.

use crate::control::Protocol;
use crate::node::{ClientId, Shared};
use fencing::ctl::{FenRequest, FenResponse};

pub struct FenSocket;

impl Protocol for FenSocket {
    type In = FenRequest;
    const NAME: &'static str = "vxfen";

    async fn handle(shared: &Shared, id: ClientId, req: FenRequest) {
        let mut node = shared.borrow_mut();
        let answer = match req {
            FenRequest::Configure => node.fence_configure(shared, id),
            FenRequest::Unconfigure => node.fence_unconfigure(id),
            FenRequest::Status => Some(FenResponse::Status(Box::new(node.fence_status()))),
        };
        if let Some(a) = answer {
            node.fence_respond(id, a);
        }
    }

    fn undecodable(shared: &Shared, id: ClientId, error: String) {
        shared.borrow_mut().fence_respond(id, FenResponse::Error(error));
    }
}
