//! GAB's incarnation: a number that grows from one life of the daemon to
//! the next, so generations made by a restarted node never repeat those of
//! its earlier lives. The wall clock in seconds, bumped past the last value
//! used (kept in $HA_ROOT/var/lib/ha/gab.incarnation) so two starts in one
//! second, or a clock stepped backwards, still give a larger number.

use tracing::warn;

pub fn next() -> u32 {
    let path = llt::paths::gab_incarnation();
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as u32;
    let last = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<u32>().ok());
    let inc = match last {
        Some(l) if l >= clock => l.wrapping_add(1),
        _ => clock,
    };
    let saved = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|_| std::fs::write(&path, format!("{inc}\n")));
    if let Err(e) = saved {
        warn!(path = %path.display(), "cannot record GAB's incarnation ({e}): a restart within the same second could reuse generation numbers");
    }
    inc
}
