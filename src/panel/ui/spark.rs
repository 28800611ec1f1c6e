//! Sparklines: a series drawn as an inline SVG `<polyline>`, server-side.

use std::fmt::Write as _;

/// Width and height of a sparkline's box, in SVG user units.
pub const WIDTH: u32 = 120;
pub const HEIGHT: u32 = 28;
/// Room for the stroke at the box's edges.
const PAD: f64 = 1.5;

/// The `points` of a polyline drawing `values` left to right in a
/// `width`×`height` box: the smallest value at the bottom, the largest at the
/// top (a flat series in the middle). One value draws a flat line across;
/// none gives `None`.
pub fn points(values: &[u64], width: u32, height: u32) -> Option<String> {
    let (min, max) = (*values.iter().min()?, *values.iter().max()?);
    let (w, h) = (f64::from(width), f64::from(height));
    let y = |v: u64| {
        if max == min {
            h / 2.0
        } else {
            let share = (v - min) as f64 / (max - min) as f64;
            h - PAD - share * (h - 2.0 * PAD)
        }
    };
    let mut out = String::new();
    if let [only] = values {
        let _ = write!(out, "{PAD:.1},{:.1} {:.1},{:.1}", y(*only), w - PAD, y(*only));
        return Some(out);
    }
    let step = (w - 2.0 * PAD) / (values.len() - 1) as f64;
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{:.1},{:.1}", PAD + step * i as f64, y(*v));
    }
    Some(out)
}

/// Bytes moved between consecutive counter readings (a counter that went
/// down — an agent reconnected — counts as zero).
pub fn deltas(totals: &[u64]) -> Vec<u64> {
    totals.windows(2).map(|w| w[1].saturating_sub(w[0])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(points: &str) -> Vec<(f64, f64)> {
        points
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn points_are_scaled_into_the_box() {
        let pts = parse(&points(&[10, 30, 20], 100, 20).unwrap());
        assert_eq!(pts, [(1.5, 18.5), (50.0, 1.5), (98.5, 10.0)]);
        for (x, y) in parse(&points(&[0, u64::MAX, 7, 1 << 40], WIDTH, HEIGHT).unwrap()) {
            assert!((0.0..=f64::from(WIDTH)).contains(&x) && (0.0..=f64::from(HEIGHT)).contains(&y), "{x},{y}");
        }
    }

    #[test]
    fn empty_one_and_flat_series() {
        assert_eq!(points(&[], 100, 20), None);
        assert_eq!(points(&[42], 100, 20).as_deref(), Some("1.5,10.0 98.5,10.0"));
        assert_eq!(points(&[5, 5, 5], 100, 20).as_deref(), Some("1.5,10.0 50.0,10.0 98.5,10.0"));
    }

    #[test]
    fn deltas_of_counters() {
        assert_eq!(deltas(&[100, 150, 150, 20, 70]), [50, 0, 0, 50]);
        assert!(deltas(&[1]).is_empty());
    }
}
