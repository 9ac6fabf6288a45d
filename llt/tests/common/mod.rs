//! Test helpers: two network namespaces joined by a veth pair, and threads
//! that run inside one of them. Needs root (`ip netns`, `setns`).

#![allow(dead_code)] // each test binary uses a different subset

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Two namespaces `ns_a`/`ns_b`, with veth ends `if_a` (in `ns_a`) and
/// `if_b` (in `ns_b`) up and IPv6 off. Dropping it deletes both namespaces
/// (and so the veth pair), also when the test panics.
pub struct NetnsPair {
    pub ns_a: String,
    pub ns_b: String,
    pub if_a: String,
    pub if_b: String,
}

/// Runs `ip ARGS`, panicking with its stderr if it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl NetnsPair {
    /// Creates the pair. `tag` keeps concurrent tests of one binary (same
    /// pid) apart; names stay within the 15-byte interface name limit.
    pub fn new(tag: &str) -> NetnsPair {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "{}{}{}",
            std::process::id(),
            tag,
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        // The guard exists before the first command, so a failure half-way
        // still deletes whatever was created.
        let pair = NetnsPair {
            ns_a: format!("iot{id}a"),
            ns_b: format!("iot{id}b"),
            if_a: format!("v{id}a"),
            if_b: format!("v{id}b"),
        };
        assert!(
            pair.if_a.len() < 16,
            "interface name {} too long",
            pair.if_a
        );
        for ns in [&pair.ns_a, &pair.ns_b] {
            ip(&["netns", "add", ns]);
            // No IPv6: no router solicitations, MLD or DAD chatter.
            ip(&[
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "link", "add", &pair.if_a, "netns", &pair.ns_a, "type", "veth", "peer", "name",
            &pair.if_b, "netns", &pair.ns_b,
        ]);
        ip(&["-n", &pair.ns_a, "link", "set", "dev", &pair.if_a, "up"]);
        ip(&["-n", &pair.ns_b, "link", "set", "dev", &pair.if_b, "up"]);
        wait_oper_up(&pair.ns_a, &pair.if_a);
        wait_oper_up(&pair.ns_b, &pair.if_b);
        pair
    }

    /// Gives both ends an IPv4 address in `10.<x>.<y>.0/24` (`.1` for a,
    /// `.2` for b) and returns them.
    pub fn add_ipv4(&self, x: u8, y: u8) -> (std::net::Ipv4Addr, std::net::Ipv4Addr) {
        let a = std::net::Ipv4Addr::new(10, x, y, 1);
        let b = std::net::Ipv4Addr::new(10, x, y, 2);
        ip(&[
            "-n",
            &self.ns_a,
            "addr",
            "add",
            &format!("{a}/24"),
            "dev",
            &self.if_a,
        ]);
        ip(&[
            "-n",
            &self.ns_b,
            "addr",
            "add",
            &format!("{b}/24"),
            "dev",
            &self.if_b,
        ]);
        (a, b)
    }

    pub fn set_up_a(&self, up: bool) {
        set_link(&self.ns_a, &self.if_a, up);
    }

    pub fn set_up_b(&self, up: bool) {
        set_link(&self.ns_b, &self.if_b, up);
    }
}

/// Sets `ifname` in `ns` administratively up or down; when up, waits until
/// it is operationally up (carrier seen, queue attached: frames sent before
/// that are silently dropped).
pub fn set_link(ns: &str, ifname: &str, up: bool) {
    ip(&[
        "-n",
        ns,
        "link",
        "set",
        "dev",
        ifname,
        if up { "up" } else { "down" },
    ]);
    if up {
        wait_oper_up(ns, ifname);
    }
}

/// Waits until `ifname` in `ns` reports operstate UP. The kernel sets the
/// state and attaches the device's queue in the same step; the short sleep
/// after covers `ip` seeing the state a moment before the queue is there.
pub fn wait_oper_up(ns: &str, ifname: &str) {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let out = Command::new("ip")
            .args(["-n", ns, "-o", "link", "show", "dev", ifname])
            .output()
            .expect("run ip");
        if String::from_utf8_lossy(&out.stdout).contains(" state UP ") {
            std::thread::sleep(Duration::from_millis(20));
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{ns}/{ifname} not up");
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        // Never panic here (we may already be unwinding): ignore failures,
        // e.g. a namespace that was never created.
        for ns in [&self.ns_a, &self.ns_b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Runs `f` on a new thread that has entered network namespace `ns`, inside
/// a current-thread Tokio runtime of its own. The namespace switch is per
/// thread, so the test's other threads are unaffected.
pub fn spawn_in_netns<F, Fut, T>(ns: &str, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
    T: Send + 'static,
{
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns only reads the fd, which `file` keeps open for the
        // call; CLONE_NEWNET moves just this thread into the namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(f())
    })
}

/// Joins both threads, then re-raises the first panic, so the namespaces
/// are deleted (by the caller's guard) only after both threads are done.
pub fn join_both<A, B>(a: JoinHandle<A>, b: JoinHandle<B>) -> (A, B) {
    let ra = a.join();
    let rb = b.join();
    match (ra, rb) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(p), _) | (_, Err(p)) => std::panic::resume_unwind(p),
    }
}

/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(5);
