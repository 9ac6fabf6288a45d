//! Long-running processes started inside a lab node ([`crate::Lab::spawn`]).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cmd::PidFd;

/// Shared between the [`Proc`] handle given to the test and the owning lab,
/// which kills and reaps every process on drop whether or not the test still
/// holds the handle.
#[derive(Debug)]
pub(crate) struct ProcInner {
    pub(crate) name: String,
    pub(crate) node: usize,
    pub(crate) pid: u32,
    pidfd: PidFd,
    child: Mutex<Child>,
    status: Mutex<Option<ExitStatus>>,
    pub(crate) out: PathBuf,
    pub(crate) err: PathBuf,
    /// Log files are appended to (a restarted daemon keeps its predecessor's
    /// log); these are the offsets where this process's output starts.
    out_start: u64,
    err_start: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave the data inconsistent
    // (Child and Option<ExitStatus>), so poisoning is ignored; Drop must work
    // after a panicking test.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ProcInner {
    pub(crate) fn new(
        name: &str,
        node: usize,
        child: Child,
        out: PathBuf,
        err: PathBuf,
        out_start: u64,
        err_start: u64,
    ) -> Result<ProcInner> {
        let pid = child.id();
        let pidfd = PidFd::open(pid).with_context(|| format!("pidfd_open({pid}) for {name}"))?;
        Ok(ProcInner {
            name: name.to_string(),
            node,
            pid,
            pidfd,
            child: Mutex::new(child),
            status: Mutex::new(None),
            out,
            err,
            out_start,
            err_start,
        })
    }

    /// Reaps the process if it has exited; returns its status if so.
    pub(crate) fn try_reap(&self) -> Option<ExitStatus> {
        let mut st = lock(&self.status);
        if st.is_none() {
            if let Ok(Some(s)) = lock(&self.child).try_wait() {
                *st = Some(s);
            }
        }
        *st
    }

    pub(crate) fn wait_exit(&self, deadline: Duration) -> Option<ExitStatus> {
        if let Some(s) = self.try_reap() {
            return Some(s);
        }
        match self.pidfd.wait_exited(deadline) {
            Ok(true) => self.try_reap(),
            _ => None,
        }
    }

    pub(crate) fn signal(&self, sig: libc::c_int) -> Result<()> {
        self.pidfd.signal(sig).with_context(|| {
            format!(
                "cannot signal {} (pid {}, node {}) with {sig}",
                self.name, self.pid, self.node
            )
        })
    }

    /// For lab teardown: SIGKILL the process and its whole process group
    /// (whatever it forked), then reap. Never panics; bounded in time.
    pub(crate) fn terminate(&self) {
        let mut st = lock(&self.status);
        if st.is_some() {
            return;
        }
        // Still unreaped, so the pid - which is also the pgid, see spawn's
        // process_group(0) - cannot belong to anyone else yet.
        // SAFETY: plain kill(2).
        unsafe { libc::kill(-(self.pid as libc::pid_t), libc::SIGKILL) };
        let _ = self.pidfd.signal(libc::SIGKILL);
        // SIGKILL cannot be ignored; the bound only guards against a process
        // stuck in uninterruptible sleep, which we would rather leak than hang on.
        if self
            .pidfd
            .wait_exited(Duration::from_secs(5))
            .unwrap_or(true)
        {
            if let Ok(s) = lock(&self.child).wait() {
                *st = Some(s);
            }
        } else {
            eprintln!(
                "ha-tests: {} (pid {}) did not die after SIGKILL; leaving it",
                self.name, self.pid
            );
        }
    }

    fn read_from(path: &Path, start: u64) -> String {
        let mut s = Vec::new();
        if let Ok(mut f) = File::open(path) {
            if f.seek(SeekFrom::Start(start)).is_ok() {
                let _ = f.read_to_end(&mut s);
            }
        }
        String::from_utf8_lossy(&s).into_owned()
    }

    pub(crate) fn stdout(&self) -> String {
        Self::read_from(&self.out, self.out_start)
    }

    pub(crate) fn stderr(&self) -> String {
        Self::read_from(&self.err, self.err_start)
    }

    pub(crate) fn log_tail(&self, lines: usize) -> String {
        fn tail(s: &str, n: usize) -> String {
            let v: Vec<&str> = s.lines().collect();
            v[v.len().saturating_sub(n)..].join("\n")
        }
        let state = match *lock(&self.status) {
            Some(s) => format!("exited: {s}"),
            None => "running".to_string(),
        };
        format!(
            "---- {} (node {}, pid {}, {state}) stdout {} ----\n{}\n---- {} stderr {} ----\n{}\n",
            self.name,
            self.node,
            self.pid,
            self.out.display(),
            tail(&self.stdout(), lines),
            self.name,
            self.err.display(),
            tail(&self.stderr(), lines)
        )
    }
}

/// A process running in a lab node. Dropping the handle does NOT stop the
/// process (tests often spawn and forget); the [`crate::Lab`] kills and
/// reaps every process it spawned when it is dropped.
#[derive(Debug, Clone)]
pub struct Proc {
    pub(crate) inner: Arc<ProcInner>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }
    pub fn name(&self) -> &str {
        &self.inner.name
    }
    /// The node (1-based) it runs on.
    pub fn node(&self) -> usize {
        self.inner.node
    }
    /// SIGKILL just this process, like a crash (its children, if any, are
    /// left alone as they would be in a real crash). Does not reap: use
    /// [`Proc::wait_exit`] to observe the exit.
    pub fn kill9(&self) -> Result<()> {
        self.inner.signal(libc::SIGKILL)
    }
    /// Polite stop request (SIGTERM).
    pub fn sigterm(&self) -> Result<()> {
        self.inner.signal(libc::SIGTERM)
    }
    /// Any signal, e.g. `libc::SIGSTOP` to freeze a daemon (a hung node).
    pub fn signal(&self, sig: libc::c_int) -> Result<()> {
        self.inner.signal(sig)
    }
    /// Waits (event-driven, via pidfd) up to `deadline` for the process to
    /// exit; reaps it and returns its status, or None if it is still running.
    pub fn wait_exit(&self, deadline: Duration) -> Option<ExitStatus> {
        self.inner.wait_exit(deadline)
    }
    /// Exit status if it has exited (reaps it), None while running.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.inner.try_reap()
    }
    pub fn is_running(&self) -> bool {
        self.exit_status().is_none()
    }
    pub fn stdout_path(&self) -> &Path {
        &self.inner.out
    }
    pub fn stderr_path(&self) -> &Path {
        &self.inner.err
    }
    /// Everything this process has written to stdout so far.
    pub fn stdout(&self) -> String {
        self.inner.stdout()
    }
    /// Everything this process has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.inner.stderr()
    }
    /// Last `lines` lines of stdout and stderr with a header naming the
    /// process and files, for printing when a test fails.
    pub fn log_tail(&self, lines: usize) -> String {
        self.inner.log_tail(lines)
    }
}
