//! The node: LLT's core, its link sockets and its local clients, shared by
//! the tasks of one current-thread runtime. Every task does the same
//! thing: borrow the node, feed the core one input, `flush` the outputs.
//! No borrow is ever held across an `.await`.

mod fence;

pub use fence::FenceHost;
use crate::echo::{Echo, Incoming, ECHO_PORT};
use crate::gab_host::{GabHost, Punish};
use crate::links::{self, Link, ReadOutcome};
use gab::Port;
use llt::config::{self, LltConfig};
use llt::core::{Core, CoreConfig, Dest, Event, LinkState, SendError};
use llt::ctl::{self, Response, ServerMsg, StatusReport};
use llt::time::Time;
use llt::{paths, NodeId};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

pub type Shared = Rc<RefCell<Node>>;
pub type ClientId = u64;

/// Messages queued for one client, at most this many: a client that falls
/// further behind is disconnected (never silently skipped).
pub const CLIENT_QUEUE: usize = 16 * 1024;

pub struct Client {
    pub tx: mpsc::Sender<Vec<u8>>,
    /// LLT port bound on LLT's socket.
    pub port: Option<u8>,
    /// GAB port registered on GAB's socket.
    pub gab_port: Option<Port>,
    /// From the socket's peer credentials.
    pub pid: Option<u32>,
    /// When the writer last got a batch out to the client.
    pub last_write: Instant,
    pub tasks: Vec<tokio::task::AbortHandle>,
}

impl Client {
    fn queued(&self) -> usize {
        CLIENT_QUEUE - self.tx.capacity()
    }
}

/// A GAB client with more deliveries than this queued makes GAB hold its
/// acks (cluster-wide backpressure); below the low mark they flow again.
const BUSY_HIGH: usize = 1024;
const BUSY_LOW: usize = 256;
/// A client behind by more than `BUSY_HIGH` whose writer got nothing out
/// for this long is not slow but stuck: disconnected, so one dead reader
/// does not hold the whole cluster forever.
const STUCK_CLIENT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Node {
    start: Instant,
    cfg: Option<LltConfig>,
    core: Option<Core>,
    links: Rc<Vec<Link>>,
    link_tasks: Vec<JoinHandle<()>>,
    clients: BTreeMap<ClientId, Client>,
    ports: BTreeMap<u8, ClientId>,
    /// Clients waiting for `lltconfig -c` to finish.
    pending_configure: Vec<ClientId>,
    /// The deadline the timer task sleeps towards.
    timer_target: Option<Time>,
    pub timer_changed: Rc<Notify>,
    /// Signalled when acknowledgements may have opened a window.
    pub window_opened: Rc<Notify>,
    io_errors: u64,
    dropped_no_port: u64,
    pub echo: Echo,
    pub gab: Option<GabHost>,
    next_client: ClientId,
    /// Some GAB client is behind: GAB holds acks; checked every second
    /// for a stuck client.
    gab_busy: bool,
    busy_check: Option<Time>,
    /// Fencing (`vxfenconfig -c`), on GAB port b.
    pub fence: Option<FenceHost>,
    /// Why this node lost a fencing race: GAB and fencing stay down until
    /// clusterd restarts.
    fence_halted: Option<String>,
}

impl Node {
    pub fn new() -> Node {
        Node {
            start: Instant::now(),
            cfg: None,
            core: None,
            links: Rc::new(Vec::new()),
            link_tasks: Vec::new(),
            clients: BTreeMap::new(),
            ports: BTreeMap::new(),
            pending_configure: Vec::new(),
            timer_target: None,
            timer_changed: Rc::new(Notify::new()),
            window_opened: Rc::new(Notify::new()),
            io_errors: 0,
            dropped_no_port: 0,
            echo: Echo::default(),
            gab: None,
            next_client: 1,
            gab_busy: false,
            busy_check: None,
            fence: None,
            fence_halted: None,
        }
    }

    pub fn now(&self) -> Time {
        Time(self.start.elapsed().as_micros() as u64)
    }

    pub fn instant_of(&self, t: Time) -> Instant {
        self.start + t.as_dur().to_std()
    }

    pub fn poll_timeout(&mut self) -> Option<Time> {
        let t = self.next_deadline();
        self.timer_target = t;
        t
    }

    fn next_deadline(&self) -> Option<Time> {
        let llt = self.core.as_ref().and_then(|c| c.poll_timeout());
        let gab = match (&self.gab, &self.core) {
            (Some(g), Some(core)) => g.poll_timeout(core),
            _ => None,
        };
        [llt, gab, self.busy_check, self.fence_deadline()].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self) {
        let now = self.now();
        if let Some(c) = self.core.as_mut() {
            c.handle_timeout(now);
        }
        if let Some(g) = self.gab.as_mut() {
            // The glue's own deadline (jeopardy grace) is served by the
            // pump in `flush`.
            g.core.handle_timeout(now);
            for p in g.check_heartbeats(now) {
                self.punish(p);
            }
        }
        if self.busy_check.is_some_and(|t| now >= t) {
            self.busy_check = None;
            self.disconnect_stuck_clients();
        }
        self.fence_timeout(now);
        self.flush();
    }

    /// The writer of client `id` got a batch out; `queued` remain.
    pub fn client_wrote(&mut self, id: ClientId, queued: usize) {
        if let Some(c) = self.clients.get_mut(&id) {
            c.last_write = Instant::now();
        }
        if self.gab_busy && queued < BUSY_LOW {
            self.update_gab_pressure();
            if !self.gab_busy {
                self.flush();
            }
        }
    }

    /// Hold GAB's acks while any of its clients is far behind.
    fn update_gab_pressure(&mut self) {
        let Some(g) = self.gab.as_mut() else { return };
        let gab_clients = self.clients.values().filter(|c| c.gab_port.is_some());
        let busy = if self.gab_busy {
            gab_clients.clone().any(|c| c.queued() >= BUSY_LOW)
        } else {
            gab_clients.clone().any(|c| c.queued() > BUSY_HIGH)
        };
        if busy != self.gab_busy {
            self.gab_busy = busy;
            let behind: Vec<(char, usize)> = gab_clients.filter_map(|c| Some((char::from(c.gab_port?), c.queued()))).collect();
            if busy {
                info!(node = self.cfg.as_ref().map_or(0, |c| c.node_id), ?behind, "a GAB client is behind on its deliveries: holding acks (the cluster slows down to its pace)");
            } else {
                info!(node = self.cfg.as_ref().map_or(0, |c| c.node_id), "GAB clients caught up: acks flow again");
            }
            g.core.set_receiver_busy(busy);
        }
        if self.gab_busy && self.busy_check.is_none() {
            self.busy_check = Some(self.now() + llt::time::Dur::from_millis(1000));
        }
    }

    fn disconnect_stuck_clients(&mut self) {
        let stuck: Vec<(ClientId, usize)> = self
            .clients
            .iter()
            .filter(|(_, c)| c.gab_port.is_some() && c.queued() > BUSY_HIGH && c.last_write.elapsed() >= STUCK_CLIENT)
            .map(|(&id, c)| (id, c.queued()))
            .collect();
        for (id, queued) in stuck {
            let c = &self.clients[&id];
            warn!(
                client = id, gab_port = ?c.gab_port.map(char::from), pid = ?c.pid, queued,
                "client cannot keep up: {queued} deliveries queued and none read for {} s; disconnected so the cluster can go on",
                STUCK_CLIENT.as_secs()
            );
            if let Some(g) = self.gab.as_mut() {
                g.counters.clients_disconnected_slow += 1;
            }
            self.remove_client(id);
        }
        self.update_gab_pressure();
    }

    pub fn next_client_id(&mut self) -> ClientId {
        let id = self.next_client;
        self.next_client += 1;
        id
    }

    pub fn add_client(&mut self, id: ClientId, client: Client) {
        self.clients.insert(id, client);
    }

    pub fn remove_client(&mut self, id: ClientId) {
        let now = self.now();
        if let Some(c) = self.clients.remove(&id) {
            if let Some(p) = c.port {
                self.ports.remove(&p);
            }
            if let (Some(p), Some(g)) = (c.gab_port, self.gab.as_mut()) {
                g.client_gone(now, p);
                self.update_gab_pressure();
            }
            for t in c.tasks {
                t.abort();
            }
        }
        self.pending_configure.retain(|&c| c != id);
    }

    fn node_name(&self, id: NodeId) -> String {
        self.cfg.as_ref().and_then(|c| c.hosts.get(&id).cloned()).unwrap_or_else(|| id.to_string())
    }

    fn link_tag(&self, id: u8) -> String {
        self.links.get(id as usize).map_or_else(|| id.to_string(), |l| l.cfg.tag.clone())
    }

    fn my_id(&self) -> NodeId {
        self.cfg.as_ref().map_or(0, |c| c.node_id)
    }

    /// Put a message in a client's queue; a full queue disconnects it.
    fn queue_to_client<T: serde::Serialize>(&mut self, id: ClientId, msg: &T) {
        let Some(c) = self.clients.get(&id) else { return };
        let frame = match ctl::encode_frame(msg) {
            Ok(f) => f,
            Err(e) => return error!(client = id, "cannot encode a message for a client: {e}"),
        };
        if c.tx.try_send(frame).is_err() {
            let gab_port = c.gab_port.map(char::from);
            warn!(client = id, llt_port = ?c.port, ?gab_port, pid = ?c.pid, "client cannot keep up ({CLIENT_QUEUE} messages queued): disconnected");
            if let Some(g) = self.gab.as_mut().filter(|_| gab_port.is_some()) {
                g.counters.clients_disconnected_slow += 1;
            }
            self.remove_client(id);
        }
    }

    pub fn respond(&mut self, id: ClientId, r: Response) {
        self.queue_to_client(id, &ServerMsg::Response(r));
    }

    fn broadcast_bound(&mut self, msg: ServerMsg) {
        let ids: Vec<ClientId> = self.ports.values().copied().collect();
        for id in ids {
            self.queue_to_client(id, &msg);
        }
    }

    /// Drain the core: frames to the links, events to logs and clients.
    /// Wakes the timer task if the next deadline moved earlier.
    pub fn flush(&mut self) {
        let mut sent = false;
        let mut window = false;
        // Handling an event can queue more output (the echo service
        // answers at once): drain until the core is quiet.
        loop {
            let now = self.now();
            let Some(core) = self.core.as_mut() else { return };
            // With GAB running, the glue takes LLT's events first (GAB's
            // deliveries and peer changes) and hands back the rest.
            let (transmits, events, to_clients) = match self.gab.as_mut() {
                Some(g) => {
                    let p = g.pump(now, core);
                    (p.transmits, p.events, g.client_messages())
                }
                None => {
                    let transmits: Vec<_> = std::iter::from_fn(|| core.poll_transmit()).collect();
                    let events: Vec<_> = std::iter::from_fn(|| core.poll_event()).collect();
                    (transmits, events, Vec::new())
                }
            };
            let delivered = !to_clients.is_empty();
            for (id, m) in to_clients {
                // In GAB's order: port b first decides whether what
                // follows for the other ports must wait for fencing.
                if id == fence::FENCE_CLIENT {
                    self.fence_from_gab(m);
                } else if !self.fence_hold(id, &m) {
                    self.queue_to_client(id, &m);
                }
            }
            if delivered {
                self.update_gab_pressure();
            }
            if transmits.is_empty() && events.is_empty() {
                break;
            }
            for t in &transmits {
                if let Some(l) = self.links.get(t.link as usize) {
                    if l.transmit(t).is_err() {
                        self.io_errors += 1;
                    }
                }
            }
            sent |= !transmits.is_empty();
            for e in events {
                window |= matches!(e, Event::PeerDown { .. });
                self.on_event(e);
            }
        }
        if sent || window {
            // Acks arrive with frames; waiting senders retry on any progress.
            self.window_opened.notify_waiters();
        }
        let next = self.next_deadline();
        if let Some(n) = next {
            if self.timer_target.is_none_or(|t| n < t) {
                self.timer_target = Some(n);
                self.timer_changed.notify_one();
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        let node = self.my_id();
        match e {
            Event::Configured => {
                info!(node, "LLT running: no duplicate of node id {node} answered; links open");
                for id in std::mem::take(&mut self.pending_configure) {
                    self.respond(id, Response::Ok);
                }
            }
            Event::DuplicateRefused { link, from } => {
                let msg = format!(
                    "node id {node} is already used by another node ({from} on link {}): LLT refuses to start; fix set-node in llttab",
                    self.link_tag(link)
                );
                error!(node, link = %self.link_tag(link), %from, "{msg}");
                for id in std::mem::take(&mut self.pending_configure) {
                    self.respond(id, Response::Error(msg.clone()));
                }
                self.unconfigure();
            }
            Event::DuplicateNode { link, from, nonce } => {
                error!(
                    node, link = %self.link_tag(link), %from, nonce,
                    "DUPLICATE NODE ID: another node claims id {node}; its frames are ignored and it will never be merged"
                );
            }
            Event::LinkState { peer, link, state } => {
                let (peer_name, tag) = (self.node_name(peer), self.link_tag(link));
                match state {
                    LinkState::Up => info!(node, peer, %peer_name, link = %tag, "link to {peer_name} on {tag} is UP"),
                    LinkState::Trouble => warn!(node, peer, %peer_name, link = %tag, "link to {peer_name} on {tag} in trouble: nothing heard for peertrouble"),
                    LinkState::Down => warn!(node, peer, %peer_name, link = %tag, "link to {peer_name} on {tag} is DOWN: nothing heard for peerinact"),
                }
                self.broadcast_bound(ServerMsg::LinkState { peer, link, state });
            }
            Event::PeerUp { peer } => {
                let peer_name = self.node_name(peer);
                info!(node, peer, %peer_name, "peer {peer_name} is OPEN");
                self.broadcast_bound(ServerMsg::PeerUp { peer });
            }
            Event::PeerDown { peer, reason } => {
                let peer_name = self.node_name(peer);
                warn!(node, peer, %peer_name, ?reason, "peer {peer_name} is DOWN ({reason:?})");
                self.broadcast_bound(ServerMsg::PeerDown { peer, reason });
            }
            Event::Deliver { peer, port: ECHO_PORT, data } => {
                if let Incoming::Answer(to, reply) = self.echo.incoming(peer, data) {
                    let now = self.now();
                    if let Some(core) = self.core.as_mut() {
                        // A full window drops the answer: the pinger times out.
                        let _ = core.send(now, Dest::Node(to), ECHO_PORT, &reply);
                    }
                }
            }
            // GAB's port while GAB is not configured (the glue takes it
            // otherwise): nobody to deliver to.
            Event::Deliver { port: gab::LLT_PORT, .. } => self.dropped_no_port += 1,
            Event::Deliver { peer, port, data } => match self.ports.get(&port) {
                Some(&id) => self.queue_to_client(id, &ServerMsg::Deliver { peer, data }),
                None => self.dropped_no_port += 1,
            },
        }
    }

    /// `lltconfig -c`. Ok(()) means "started": the answer comes with the
    /// Configured or DuplicateRefused event.
    pub fn configure(&mut self, shared: &Shared, client: Option<ClientId>) -> Result<(), String> {
        if self.core.is_some() {
            return Err("LLT is already configured (run lltconfig -U first)".into());
        }
        let cfg = config::load(&paths::llttab(), &paths::llthosts(), &config::system_iface_exists).map_err(|e| e.to_string())?;
        let opened = links::open_all(&cfg.links)?;
        let setups = opened.iter().map(Link::setup).collect();
        // Nonces and sessions must differ between starts of the daemon.
        let seed = (self.start.elapsed().as_nanos() as u64) ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64) ^ ((std::process::id() as u64) << 32);
        let mut cc = CoreConfig::new(cfg.node_id, cfg.cluster_id, setups, seed);
        cc.timers = cfg.timers;
        cc.excluded = cfg.excluded.clone();
        let now = self.now();
        info!(
            node = cfg.node_id, node_name = %cfg.node_name, cluster = cfg.cluster_id, links = cfg.links.len(),
            "LLT configuring: listening {} s for a duplicate node id", cfg.timers.dupwait as f64 / 100.0
        );
        self.core = Some(Core::new(cc, now));
        self.links = Rc::new(opened);
        self.cfg = Some(cfg);
        self.pending_configure.extend(client);
        for id in 0..self.links.len() {
            self.link_tasks.push(tokio::task::spawn_local(link_reader(shared.clone(), self.links.clone(), id as u8)));
        }
        self.flush();
        Ok(())
    }

    /// `lltconfig -U` from an administrator: refused while GAB runs on top
    /// (VCS's LLT refuses too; `gabconfig -U` first).
    pub fn unconfigure_llt(&mut self) -> Result<(), String> {
        if self.gab.is_some() {
            return Err("LLT is in use by GAB: run gabconfig -U first".into());
        }
        self.unconfigure();
        Ok(())
    }

    /// Close links, forget peers (GAB goes too). Bound clients stay
    /// connected and see nothing more until the next configure.
    pub fn unconfigure(&mut self) {
        if self.fence.take().is_some() {
            warn!(node = self.my_id(), "fencing stopped: GAB is going down under it (keys stay on the disks)");
        }
        if self.gab.take().is_some() {
            warn!(node = self.my_id(), "GAB stopped: LLT is going down under it");
            self.drop_gab_clients();
        }
        for t in self.link_tasks.drain(..) {
            t.abort();
        }
        if self.core.take().is_some() {
            info!(node = self.my_id(), "LLT unconfigured: links closed");
        }
        self.links = Rc::new(Vec::new());
        self.cfg = None;
        self.timer_target = None;
    }

    pub fn set_timer(&mut self, name: &str, value: u32) -> Result<(), String> {
        let core = self.core.as_mut().ok_or("LLT is not configured")?;
        let mut t = core.timers();
        t.set(name, value)?;
        core.set_timers(t)?;
        info!(node = core.node_id(), timer = name, value, "timer changed");
        self.timer_changed.notify_one();
        Ok(())
    }

    pub fn timers(&self) -> Option<llt::config::Timers> {
        self.core.as_ref().map(|c| c.timers())
    }

    pub fn status(&self) -> StatusReport {
        let (node_id, node_name, cluster_id, hosts) = match &self.cfg {
            Some(c) => (c.node_id, c.node_name.clone(), c.cluster_id, c.hosts.clone()),
            None => (0, String::new(), 0, BTreeMap::new()),
        };
        let mut stats = self.core.as_ref().map(|c| c.stats().clone()).unwrap_or_default();
        stats.dropped_no_port = self.dropped_no_port;
        StatusReport {
            phase: self.core.as_ref().map(|c| c.phase()),
            node_id,
            node_name,
            cluster_id,
            links: self.links.iter().map(Link::report).collect(),
            hosts,
            peers: self.core.as_ref().map(|c| c.peer_status()).unwrap_or_default(),
            stats,
            timers: self.core.as_ref().map(|c| c.timers()).unwrap_or_default(),
            io_errors: self.io_errors,
        }
    }

    pub fn bind(&mut self, id: ClientId, port: u8) -> Result<(), String> {
        if port == ECHO_PORT {
            return Err(format!("port {ECHO_PORT} is reserved for LLT's echo service"));
        }
        if port == gab::LLT_PORT {
            return Err(format!("port {} is reserved for GAB", gab::LLT_PORT));
        }
        if let Some(&owner) = self.ports.get(&port) {
            if owner != id {
                return Err(format!("port {port} is already bound by another client"));
            }
        }
        let c = self.clients.get_mut(&id).ok_or("unknown client")?;
        if let Some(old) = c.port.replace(port) {
            self.ports.remove(&old);
        }
        self.ports.insert(port, id);
        Ok(())
    }

    /// Offer a message to the core. WouldBlock is handed back to the caller,
    /// which waits for the window to open.
    pub fn send(&mut self, id: ClientId, dest: Dest, data: &[u8]) -> Result<(), SendError> {
        let port = self.clients.get(&id).and_then(|c| c.port).unwrap_or(0);
        let now = self.now();
        let core = self.core.as_mut().ok_or(SendError::NotRunning)?;
        core.send(now, dest, port, data).map(|_| ())
    }

    pub fn send_failed(&mut self, id: ClientId, dest: Dest, e: SendError) {
        self.queue_to_client(id, &ServerMsg::SendFailed { dest, error: e.to_string() });
    }

    /// Read up to 256 frames from a link into the core, then flush.
    fn read_link(&mut self, links: &[Link], id: u8, buf: &mut [u8]) {
        let Some(link) = links.get(id as usize) else { return };
        for _ in 0..256 {
            let now = self.now();
            let Some(core) = self.core.as_mut() else { return };
            match link.try_read(buf) {
                Ok(ReadOutcome::Frame(r)) => core.handle_frame(now, id, r.from, &buf[..r.len]),
                Ok(ReadOutcome::NotForUs) => core.count_not_for_us(),
                Ok(ReadOutcome::Malformed) => core.count_malformed(),
                Ok(ReadOutcome::Empty) => break,
                Err(_) => {
                    self.io_errors += 1;
                    break;
                }
            }
        }
        self.flush();
    }
}

/// Reads one link until the node is unconfigured (the task is aborted).
async fn link_reader(shared: Shared, links: Rc<Vec<Link>>, id: u8) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Some(link) = links.get(id as usize) else { return };
        if let Err(e) = link.readable().await {
            warn!(link = %link.cfg.tag, "waiting for frames failed: {e}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        }
        shared.borrow_mut().read_link(&links, id, &mut buf);
    }
}

/// Sleeps until the core's next deadline (or until it moves earlier) and
/// runs `handle_timeout`.
pub async fn timer_task(shared: Shared) {
    loop {
        let (deadline, changed) = {
            let mut n = shared.borrow_mut();
            let d = n.poll_timeout().map(|t| n.instant_of(t));
            (d, n.timer_changed.clone())
        };
        match deadline {
            Some(d) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(d.into()) => shared.borrow_mut().handle_timeout(),
                    _ = changed.notified() => {}
                }
            }
            None => changed.notified().await,
        }
    }
}

/// Round trips of `count` echo requests of `size` bytes to `peer`, one at
/// a time, daemon to daemon. Each waits at most a second for its answer.
pub async fn ping(shared: &Shared, peer: NodeId, count: u32, size: usize) -> Result<Vec<u32>, String> {
    let mut rtts = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let (msg, rx) = shared.borrow_mut().echo.request(size);
        let t0 = Instant::now();
        {
            let mut n = shared.borrow_mut();
            let now = n.now();
            let core = n.core.as_mut().ok_or("LLT is not configured")?;
            core.send(now, Dest::Node(peer), ECHO_PORT, &msg).map_err(|e| e.to_string())?;
            n.flush();
        }
        match tokio::time::timeout(std::time::Duration::from_secs(1), rx).await {
            Ok(Ok(t1)) => rtts.push(t1.duration_since(t0).as_nanos().min(u32::MAX as u128) as u32),
            _ => {
                shared.borrow_mut().echo.abandon(&msg);
                return Err(format!("no echo from node {peer} within 1 s after {} round trips", rtts.len()));
            }
        }
    }
    Ok(rtts)
}

// ----- GAB ------------------------------------------------------------------

impl Node {
    /// `gabconfig -c -n N`.
    pub fn gab_configure(&mut self, seed_n: u32) -> Result<(), String> {
        if self.gab.is_some() {
            return Err("GAB is already configured (run gabconfig -U first)".into());
        }
        if let Some(why) = &self.fence_halted {
            return Err(format!("this node was fenced out ({why}): it may not rejoin before clusterd restarts"));
        }
        if seed_n == 0 {
            return Err("seed count -n must be at least 1".into());
        }
        let now = self.now();
        let core = self.core.as_ref().ok_or("LLT is not configured: run lltconfig -c first")?;
        let incarnation = crate::incarnation::next();
        let g = GabHost::new(now, core, seed_n, incarnation);
        info!(node = core.node_id(), seed_n, incarnation, "GAB configured: no membership until {seed_n} nodes see each other (or gabconfig -x)");
        self.gab = Some(g);
        self.gab_busy = false;
        self.flush();
        Ok(())
    }

    /// `gabconfig -U`: refused while clients hold ports.
    pub fn gab_unconfigure(&mut self) -> Result<(), String> {
        let g = self.gab.as_ref().ok_or("GAB is not configured")?;
        let ports = g.open_ports();
        if ports.contains('b') {
            return Err(format!("ports in use ({ports}): stop fencing first (vxfenconfig -U)"));
        }
        if !ports.is_empty() {
            return Err(format!("ports in use ({ports}): stop their clients first"));
        }
        if let Some(g) = self.gab.as_mut() {
            g.core.leave();
        }
        // Hand the Leave messages to LLT before GAB goes.
        self.flush();
        self.gab = None;
        info!(node = self.my_id(), "GAB unconfigured: this node left the cluster membership");
        Ok(())
    }

    fn gab_mut(&mut self) -> Result<&mut GabHost, String> {
        self.gab.as_mut().ok_or_else(|| "GAB is not configured (gabconfig -c -n N)".to_string())
    }

    /// `gabconfig -x`.
    pub fn gab_seed(&mut self) -> Result<(), String> {
        let now = self.now();
        let node = self.my_id();
        self.gab_mut()?.core.seed(now);
        warn!(node, "GAB seeded by hand (gabconfig -x)");
        self.flush();
        Ok(())
    }

    /// `gabconfig -t MS`.
    pub fn gab_set_stable_timeout(&mut self, ms: u32) -> Result<(), String> {
        let now = self.now();
        let node = self.my_id();
        self.gab_mut()?.set_stable_timeout(now, ms);
        info!(node, stable_timeout_ms = ms, "GAB stable timeout changed");
        self.flush();
        Ok(())
    }

    pub fn gab_status(&self) -> gab::ctl::GabStatus {
        match &self.gab {
            Some(g) => g.status(self.now(), |id| self.clients.get(&id).map_or(0, Client::queued)),
            None => gab::ctl::GabStatus {
                configured: false,
                node: self.my_id(),
                seed_n: 0,
                seeded: false,
                stable_timeout_ms: 0,
                ports: Vec::new(),
                clients: Vec::new(),
                counters: Default::default(),
                core_state: String::new(),
            },
        }
    }

    pub fn gab_register(&mut self, id: ClientId, port: Port, heartbeat: Option<gab::ctl::Heartbeat>) -> Result<(), String> {
        let now = self.now();
        let c = self.clients.get(&id).ok_or("unknown client")?;
        if let Some(p) = c.gab_port {
            return Err(format!("this connection already holds port {}", p as char));
        }
        let pid = c.pid;
        self.gab_mut()?.register(now, id, pid, port, heartbeat)?;
        if let Some(c) = self.clients.get_mut(&id) {
            c.gab_port = Some(port);
        }
        self.flush();
        Ok(())
    }

    fn client_gab_port(&self, id: ClientId) -> Result<Port, String> {
        self.clients.get(&id).and_then(|c| c.gab_port).ok_or_else(|| "register a port first".to_string())
    }

    /// Broadcast or unicast for a client. WouldBlock goes back to the
    /// caller, which waits for GAB to order what is pending.
    pub fn gab_send(&mut self, id: ClientId, dest: Option<NodeId>, data: Vec<u8>) -> Result<(), gab::core::GabError> {
        let now = self.now();
        let Ok(port) = self.client_gab_port(id) else { return Err(gab::core::GabError::NotRegistered(b'?')) };
        let Some(g) = self.gab.as_mut() else { return Err(gab::core::GabError::NotRegistered(port)) };
        match dest {
            None => g.broadcast(now, port, data),
            Some(d) => g.unicast(now, port, d, data),
        }
    }

    pub fn gab_heartbeat(&mut self, id: ClientId) {
        let now = self.now();
        if let Ok(port) = self.client_gab_port(id) {
            if let Some(g) = self.gab.as_mut() {
                g.heartbeat(now, port);
            }
        }
    }

    pub fn gab_send_failed(&mut self, id: ClientId, msg: gab::ctl::GabServerMsg) {
        self.queue_to_client(id, &msg);
    }

    pub fn gab_respond(&mut self, id: ClientId, r: gab::ctl::GabResponse) {
        self.queue_to_client(id, &gab::ctl::GabServerMsg::Response(r));
    }

    /// GAB went away under its clients: close their connections so they
    /// notice (HAD restarts itself and waits for GAB).
    fn drop_gab_clients(&mut self) {
        let ids: Vec<ClientId> = self.clients.iter().filter(|(_, c)| c.gab_port.is_some()).map(|(&id, _)| id).collect();
        for id in ids {
            self.remove_client(id);
        }
    }

    /// Signal a hung client (pid from its socket's credentials).
    fn punish(&mut self, p: Punish) {
        let (id, pid, sig, kill) = match p {
            Punish::Abort { id, pid, .. } => (id, pid, libc::SIGABRT, false),
            Punish::Kill { id, pid, .. } => (id, pid, libc::SIGKILL, true),
        };
        match pid {
            // SAFETY: kill(2) has no memory effects; the pid came from
            // SO_PEERCRED of a connection that is still open.
            Some(pid) if pid > 1 => unsafe {
                libc::kill(pid as libc::pid_t, sig);
            },
            _ => warn!(client = id, "hung client has no known pid: only its connection is closed"),
        }
        if kill || pid.is_none() {
            if let Some(c) = self.clients.get_mut(&id) {
                // Its port is already closed in GAB: do not close it twice.
                c.gab_port = None;
            }
            self.remove_client(id);
        }
    }
}
