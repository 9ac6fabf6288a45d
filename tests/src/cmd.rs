//! Running helper commands with a deadline, waiting for conditions, and
//! finding the workspace binaries.
//!
//! Every external command the harness runs goes through [`run`]: it is
//! killed when its deadline passes, so a wedged `ip` or `nft` can fail a
//! test but never hang it.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Deadline for the harness's own plumbing commands (`ip`, `nft`, `bridge`).
pub(crate) const PLUMBING_TIMEOUT: Duration = Duration::from_secs(10);

/// A pidfd: a handle on one process that cannot be confused with a later
/// process reusing the same pid. Lets us wait for exit with a timeout (poll)
/// and signal without the pid-reuse race of kill(2).
#[derive(Debug)]
pub(crate) struct PidFd(OwnedFd);

impl PidFd {
    /// Must be called while the process is still our unreaped child (or
    /// otherwise known to be alive), which is what makes the pid unambiguous.
    pub(crate) fn open(pid: u32) -> io::Result<PidFd> {
        // SAFETY: plain syscall with integer arguments.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just handed us this fd; nobody else owns it.
        Ok(PidFd(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
    }

    /// Waits until the process has exited (it may still need reaping).
    /// Returns false if `timeout` passed first.
    pub(crate) fn wait_exited(&self, timeout: Duration) -> io::Result<bool> {
        poll_readable(self.0.as_raw_fd(), timeout)
    }

    /// Sends `sig`; fails with ESRCH once the process has been reaped,
    /// never hitting an unrelated process.
    pub(crate) fn signal(&self, sig: libc::c_int) -> io::Result<()> {
        // SAFETY: plain syscall; a null siginfo is allowed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// poll(2) one fd for POLLIN, retrying on EINTR, for at most `timeout`.
pub(crate) fn poll_readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let end = Instant::now() + timeout;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        // Round up so a sub-millisecond remainder still waits instead of spinning.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n > 0 {
            return Ok(true);
        }
        if Instant::now() >= end {
            return Ok(false);
        }
    }
}

/// poll(2) several fds for POLLIN for at most `timeout`; which are ready
/// (readable or in error). All false means the timeout passed.
pub(crate) fn poll_many(fds: &[RawFd], timeout: Duration) -> io::Result<Vec<bool>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let end = Instant::now() + timeout;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: `p` is a valid array of p.len() pollfds.
        let n = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(p.iter().map(|x| x.revents != 0).collect());
    }
}

/// An anonymous in-memory file for a child's stdout/stderr. Unlike a pipe it
/// needs no reader thread and cannot block the child, nor block us when a
/// grandchild keeps the descriptor open after the child exits.
fn memfd(name: &std::ffi::CStr) -> io::Result<File> {
    // SAFETY: valid NUL-terminated name; flags are constants.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fd owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn read_all(mut f: File) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    f.seek(SeekFrom::Start(0))?;
    f.read_to_end(&mut v)?;
    Ok(v)
}

/// `prog arg1 arg2 ...` for error messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
            s.push_str(&format!("{a:?}"));
        } else {
            s.push_str(&a);
        }
    }
    s
}

/// Runs `cmd` to completion with captured output; kills it (its whole process
/// group) if it outlives `timeout`. A non-zero exit is NOT an error here: see
/// [`run_ok`] / [`check`].
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let what = describe(cmd);
    let out = memfd(c"ha-test-out")?;
    let err = memfd(c"ha-test-err")?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?)
        // Own process group, so a timeout kill also reaches whatever the
        // command forked (e.g. `ip netns exec sh -c '...'`).
        .process_group(0);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{what}`"))?;
    let pidfd = PidFd::open(child.id());
    let exited = match &pidfd {
        Ok(p) => p.wait_exited(timeout)?,
        // No pidfd (should not happen on this kernel): fall back to blocking.
        Err(_) => true,
    };
    if !exited {
        // The child is unreaped, so its pid (= its pgid) cannot have been reused.
        // SAFETY: plain kill(2).
        unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
        let _ = child.wait();
        let stderr = String::from_utf8_lossy(&read_all(err)?).into_owned();
        bail!(
            "`{what}` did not finish within {timeout:?} and was killed; stderr: {}",
            stderr.trim()
        );
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for `{what}`"))?;
    Ok(Output {
        status,
        stdout: read_all(out)?,
        stderr: read_all(err)?,
    })
}

/// Turns a finished command's output into an error unless it exited 0; the
/// error names the command and carries its stderr.
pub fn check(what: &str, out: Output) -> Result<Output> {
    if out.status.success() {
        return Ok(out);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut msg = format!("`{what}` failed ({})", out.status);
    if !stderr.trim().is_empty() {
        msg.push_str(&format!(": {}", stderr.trim()));
    }
    if !stdout.trim().is_empty() {
        msg.push_str(&format!("\nstdout: {}", stdout.trim()));
    }
    Err(anyhow::Error::msg(msg))
}

/// [`run`] + [`check`]; returns stdout as text.
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> Result<String> {
    let what = describe(cmd);
    let out = check(&what, run(cmd, timeout)?)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Shorthand for plumbing: `prog args...` with [`PLUMBING_TIMEOUT`].
pub(crate) fn sh<S: AsRef<OsStr>>(prog: &str, args: &[S]) -> Result<String> {
    run_ok(Command::new(prog).args(args), PLUMBING_TIMEOUT)
}

/// Polls `f` until it returns `Some`, or fails once `deadline` has passed.
/// The first polls come quickly (1 ms) and back off to 20 ms, so fast events
/// are seen fast without burning a core on slow ones. `f` is always called
/// once more at the deadline.
pub fn wait_until<T>(
    what: &str,
    deadline: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        let elapsed = start.elapsed();
        if elapsed >= deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(pause.min(deadline - elapsed));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Path of a workspace binary (`clusterd`, `lltconfig`, `lltstat`, `lltmsg`).
///
/// Cargo puts integration-test executables in `target/<profile>/deps/` and
/// binaries in `target/<profile>/`, so we look next to the test executable's
/// directory. `HA_BIN_DIR` overrides this (e.g. to test a release build).
/// Cargo does not build other packages' binaries for `cargo test -p ha-tests`,
/// hence the hint in the error.
pub fn bin(name: &str) -> Result<PathBuf> {
    let (dir, origin) = match std::env::var_os("HA_BIN_DIR") {
        Some(d) => (PathBuf::from(d), "HA_BIN_DIR"),
        None => {
            let exe = std::env::current_exe().context("cannot locate the test executable")?;
            let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
            if dir.file_name() == Some(OsStr::new("deps")) {
                dir.pop();
            }
            (dir, "the test executable's target directory")
        }
    };
    let path = dir.join(name);
    if path.is_file() {
        return Ok(path);
    }
    bail!(
        "binary `{name}` not found at {} (from {origin}); run `cargo build --workspace --bins` \
         (with the same profile as the tests) first, or set HA_BIN_DIR to the directory holding it",
        path.display()
    )
}
