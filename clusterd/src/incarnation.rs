//! GAB's incarnation: a number that grows from one life of the daemon to
//! the next, so generations made by a restarted node never repeat those of
//! its earlier lives. The wall clock in seconds, bumped past the last value
//! used (kept in $HA_ROOT/var/lib/ha/gab.incarnation) so two starts in one
//! second, or a clock stepped backwards, still give a larger number.

use std::path::Path;
use tracing::warn;

pub fn next() -> u32 {
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as u32;
    next_at(&llt::paths::gab_incarnation(), clock)
}

/// The next incarnation given the file that keeps the last one and the
/// clock in seconds; records it.
fn next_at(path: &Path, clock: u32) -> u32 {
    let last = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse::<u32>().ok());
    let inc = match last {
        Some(l) if l >= clock => l.wrapping_add(1),
        _ => clock,
    };
    let saved = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|_| std::fs::write(path, format!("{inc}\n")));
    if let Err(e) = saved {
        warn!(path = %path.display(), "cannot record GAB's incarnation ({e}): a restart within the same second could reuse generation numbers");
    }
    inc
}

#[cfg(test)]
mod tests {
    use super::next_at;

    #[test]
    fn grows_within_one_second_and_when_the_clock_goes_back() {
        let dir = std::env::temp_dir().join(format!("ha-inc-{}", std::process::id()));
        let path = dir.join("var/lib/ha/gab.incarnation");
        assert_eq!(next_at(&path, 1000), 1000, "first life: the clock");
        assert_eq!(next_at(&path, 1000), 1001, "same second: bumped");
        assert_eq!(next_at(&path, 900), 1002, "clock stepped back: still larger");
        assert_eq!(next_at(&path, 5000), 5000, "clock ahead: the clock");
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(next_at(&path, 6000), 6000, "an unreadable file falls back to the clock");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
