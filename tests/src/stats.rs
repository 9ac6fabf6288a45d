//! Small statistics shared by the benchmarks.

/// Nearest-rank percentile of a sorted slice (0 when empty); the C CPG
/// client and gabmsg use the same definition.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((p * (sorted.len() - 1) as f64) + 0.5) as usize]
}

/// Median of some figures (NaN when there are none).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
