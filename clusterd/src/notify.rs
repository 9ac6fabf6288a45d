//! systemd readiness notification (`sd_notify(3)`), without libsystemd.
//!
//! Owns: sending one state string ("READY=1", "STOPPING=1", "STATUS=...")
//! as one datagram to the socket systemd named in `NOTIFY_SOCKET`.
//!
//! Never: decides when the daemon is ready (the caller does), unsets
//! `NOTIFY_SOCKET`, or fails the daemon when it runs outside systemd: with
//! no `NOTIFY_SOCKET` it does nothing and says so.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;

/// Sends `state` to the service manager. `Ok(false)` when `NOTIFY_SOCKET`
/// is unset or empty (not started by systemd, or not `Type=notify`),
/// `Ok(true)` once the datagram is sent. A `NOTIFY_SOCKET` starting with
/// '@' names a socket in the abstract namespace (the '@' stands for the
/// leading NUL byte); otherwise it must be an absolute path. Other forms
/// (`vsock:`) are rejected as `InvalidInput`.
pub fn sd_notify(state: &str) -> io::Result<bool> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let bytes = target.as_bytes();
    let addr = match bytes.first() {
        None => return Ok(false),
        Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..])?,
        Some(b'/') => SocketAddr::from_pathname(Path::new(&target))?,
        Some(_) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unsupported NOTIFY_SOCKET address {target:?}"),
            ))
        }
    };
    let sock = UnixDatagram::unbound()?;
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// One test for every case, because NOTIFY_SOCKET is process-wide state:
    /// separate tests would run in parallel threads and race on it.
    #[test]
    fn sends_to_path_and_abstract_sockets() {
        let recv = |sock: &UnixDatagram| {
            sock.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("set timeout");
            let mut buf = [0u8; 64];
            let n = sock.recv(&mut buf).expect("datagram from sd_notify");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };

        // SAFETY (every set_var/remove_var below): environment writes race
        // with other threads reading the environment; nothing else in this
        // test binary reads NOTIFY_SOCKET, and this is the only test that
        // writes it.
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        assert!(!sd_notify("READY=1").expect("no socket is not an error"));

        let dir = std::env::temp_dir().join(format!("sd-notify-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).expect("bind path socket");
        unsafe { std::env::set_var("NOTIFY_SOCKET", &path) };
        assert!(sd_notify("READY=1").expect("send to path socket"));
        assert_eq!(recv(&server), "READY=1");

        let name = format!("sd-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract name");
        let server = UnixDatagram::bind_addr(&addr).expect("bind abstract socket");
        unsafe { std::env::set_var("NOTIFY_SOCKET", format!("@{name}")) };
        assert!(sd_notify("STATUS=LLT up").expect("send to abstract socket"));
        assert_eq!(recv(&server), "STATUS=LLT up");

        unsafe { std::env::set_var("NOTIFY_SOCKET", "vsock:2:1234") };
        assert_eq!(
            sd_notify("READY=1").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );

        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        let _ = std::fs::remove_dir_all(&dir);
    }
}
