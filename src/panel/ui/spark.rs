//! Sparklines: a series drawn as an inline SVG `<polyline>`, server-side.

/// Width and height of a sparkline's box, in SVG user units.
pub const WIDTH: u32 = 120;
pub const HEIGHT: u32 = 28;
/// Room for the stroke at the box's edges.
const PAD: f64 = 1.5;

/// Below this many samples a series is still being collected: it is drawn
/// from zero (three close values are not stretched into a zig-zag), each
/// sample gets a dot, and the page says so.
pub const FEW: usize = 10;

/// A series ready for an inline SVG.
#[derive(Debug, Clone, PartialEq)]
pub struct Spark {
    /// The polyline's `points`.
    pub points: String,
    /// One dot per sample while there are few: (cx, cy).
    pub dots: Vec<(String, String)>,
    /// Fewer than [`FEW`] samples so far.
    pub collecting: bool,
}

/// Draws `values` left to right in a `width`×`height` box; `None` for an
/// empty series. With few values the scale runs from zero to the largest;
/// with enough, from the smallest to the largest (a flat series in the
/// middle). One value draws a flat line across.
pub fn draw(values: &[u64], width: u32, height: u32) -> Option<Spark> {
    let collecting = values.len() < FEW;
    let floor = if collecting { 0 } else { *values.iter().min()? };
    let pts = coordinates(values, floor, width, height)?;
    let fmt = |(x, y): &(f64, f64)| format!("{x:.1},{y:.1}");
    let points = if let [only] = pts.as_slice() {
        format!("{PAD:.1},{:.1} {:.1},{:.1}", only.1, f64::from(width) - PAD, only.1)
    } else {
        pts.iter().map(fmt).collect::<Vec<_>>().join(" ")
    };
    let dots =
        if collecting { pts.iter().map(|(x, y)| (format!("{x:.1}"), format!("{y:.1}"))).collect() } else { Vec::new() };
    Some(Spark { points, dots, collecting })
}

/// Each value's (x, y), `floor` at the bottom and the largest value at the
/// top; when they are equal, the middle (or the bottom for zeros drawn
/// from zero).
fn coordinates(values: &[u64], floor: u64, width: u32, height: u32) -> Option<Vec<(f64, f64)>> {
    let max = *values.iter().max()?;
    let (w, h) = (f64::from(width), f64::from(height));
    let y = |v: u64| {
        if max == floor {
            if max == 0 { h - PAD } else { h / 2.0 }
        } else {
            let share = v.saturating_sub(floor) as f64 / (max - floor) as f64;
            h - PAD - share * (h - 2.0 * PAD)
        }
    };
    let x = |i: usize| {
        if values.len() == 1 { w / 2.0 } else { PAD + (w - 2.0 * PAD) / (values.len() - 1) as f64 * i as f64 }
    };
    Some(values.iter().enumerate().map(|(i, v)| (x(i), y(*v))).collect())
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

    fn many(values: &[u64]) -> Vec<u64> {
        values.iter().copied().cycle().take(FEW).collect()
    }

    #[test]
    fn enough_samples_are_scaled_from_the_smallest_to_the_largest() {
        let spark = draw(&many(&[10, 30]), 100, 20).unwrap();
        let pts = parse(&spark.points);
        assert_eq!(pts.len(), FEW);
        assert_eq!((pts[0], pts[1], pts[FEW - 1]), ((1.5, 18.5), (12.3, 1.5), (98.5, 1.5)));
        assert!(!spark.collecting && spark.dots.is_empty());
        let wide: Vec<u64> = [0, u64::MAX, 7, 1 << 40].into_iter().cycle().take(FEW).collect();
        for (x, y) in parse(&draw(&wide, WIDTH, HEIGHT).unwrap().points) {
            assert!((0.0..=f64::from(WIDTH)).contains(&x) && (0.0..=f64::from(HEIGHT)).contains(&y), "{x},{y}");
        }
        let flat = draw(&[5; FEW], 100, 20).unwrap();
        assert!(parse(&flat.points).iter().all(|(_, y)| *y == 10.0), "a flat series sits in the middle");
    }

    #[test]
    fn few_samples_are_drawn_from_zero_with_dots() {
        // Three close memory readings: nearly level near the top, not a zig-zag.
        let spark = draw(&[100, 102, 101], 100, 20).unwrap();
        assert!(spark.collecting);
        let ys: Vec<f64> = parse(&spark.points).iter().map(|p| p.1).collect();
        assert!(ys.iter().all(|y| (1.5..2.0).contains(y)), "{ys:?}");
        assert_eq!(spark.dots.len(), 3, "each sample is marked");
        assert_eq!(spark.dots[0], ("1.5".to_string(), "1.8".to_string()));
        // Traffic that is zero throughout lies on the floor.
        let idle = draw(&[0, 0], 100, 20).unwrap();
        assert_eq!(idle.points, "1.5,18.5 98.5,18.5");
    }

    #[test]
    fn empty_and_one_sample() {
        assert_eq!(draw(&[], 100, 20), None);
        let one = draw(&[42], 100, 20).unwrap();
        assert_eq!(one.points, "1.5,1.5 98.5,1.5");
        assert_eq!(one.dots, [("50.0".to_string(), "1.5".to_string())]);
        assert_eq!(draw(&[0], 100, 20).unwrap().points, "1.5,18.5 98.5,18.5");
    }

    #[test]
    fn deltas_of_counters() {
        assert_eq!(deltas(&[100, 150, 150, 20, 70]), [50, 0, 0, 50]);
        assert!(deltas(&[1]).is_empty());
    }
}
