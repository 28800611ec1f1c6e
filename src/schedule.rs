//! Cron schedules (`acme.renew_schedule`, `backup.schedule`) said in words
//! for the pages, with their next run. Expressions have six or seven fields,
//! seconds first (`0 17 3 * * Mon,Thu`), and run in UTC.

use std::str::FromStr;

use time::OffsetDateTime;

/// A schedule as a page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// The expression as configured.
    pub expr: String,
    /// The common shapes in words (`daily at 03:30 UTC`); `None` for the
    /// rest, which the page shows as the expression.
    pub words: Option<String>,
    /// The next run after now; `None` when the expression does not parse.
    pub next: Option<OffsetDateTime>,
}

/// `expr` in words with its next run after `now`.
pub fn describe(expr: &str, now: OffsetDateTime) -> Described {
    let next = cron::Schedule::from_str(expr.trim()).ok().and_then(|s| next_run(&s, now));
    Described { expr: expr.trim().to_string(), words: in_words(expr), next }
}

/// The next scheduled run after `now`.
pub fn next_run(schedule: &cron::Schedule, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let after = chrono::DateTime::from_timestamp(now.unix_timestamp(), 0)?;
    let next = schedule.after(&after).next()?;
    OffsetDateTime::from_unix_timestamp(next.timestamp()).ok()
}

/// The common shapes of a cron expression in words: every N minutes, hourly,
/// every N hours, daily, on some weekdays, monthly. `None` for anything else
/// (ranges of hours, steps of days, particular months or years).
pub fn in_words(expr: &str) -> Option<String> {
    let expr = expr.trim();
    let shortcut = match expr {
        "@hourly" => Some("every hour, on the hour"),
        "@daily" | "@midnight" => Some("daily at 00:00 UTC"),
        "@weekly" => Some("weekly on Sunday at 00:00 UTC"),
        "@monthly" => Some("monthly on the 1st at 00:00 UTC"),
        _ => None,
    };
    if let Some(words) = shortcut {
        return Some(words.to_string());
    }
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let (sec, min, hour, dom, month, dow) = match fields.as_slice() {
        [s, m, h, d, mo, w] | [s, m, h, d, mo, w, "*"] => (*s, *m, *h, *d, *mo, *w),
        _ => return None,
    };
    let sec = number(sec, 59)?;
    if !any(month) {
        return None;
    }
    if any(hour) && any(dom) && any(dow) && sec == 0 {
        match (min, step(min)) {
            ("*", _) | (_, Some(1)) => return Some("every minute".into()),
            (_, Some(n)) => return Some(format!("every {n} minutes")),
            _ => {}
        }
    }
    let min = number(min, 59)?;
    let clock = |h: u32| {
        if sec == 0 { format!("{h:02}:{min:02}") } else { format!("{h:02}:{min:02}:{sec:02}") }
    };
    // Hourly shapes only on every day; the rest name hours of the day.
    let every_day = any(dom) && any(dow);
    if every_day && (any(hour) || step(hour) == Some(1)) {
        return Some(if min == 0 && sec == 0 {
            "every hour, on the hour".into()
        } else {
            format!("every hour at minute {min}")
        });
    }
    if let Some(n) = step(hour).filter(|_| every_day) {
        let times: Vec<String> = (0..24).step_by(n as usize).map(clock).collect();
        return Some(if times.len() <= 6 {
            format!("every {n} hours, at {} UTC", and_list(&times))
        } else {
            format!("every {n} hours from {} UTC", times[0])
        });
    }
    let hours: Vec<u32> = hour.split(',').map(|h| number(h, 23)).collect::<Option<_>>()?;
    let at = format!("at {} UTC", and_list(&hours.into_iter().map(clock).collect::<Vec<_>>()));
    match (any(dom), any(dow)) {
        (true, true) => Some(format!("daily {at}")),
        (true, false) => Some(format!("{} {at}", weekdays(dow)?)),
        (false, true) => Some(format!("monthly on the {} {at}", ordinal(number(dom, 31).filter(|d| *d > 0)?))),
        (false, false) => None,
    }
}

fn any(field: &str) -> bool {
    field == "*" || field == "?"
}

fn number(field: &str, max: u32) -> Option<u32> {
    field.parse().ok().filter(|n| *n <= max)
}

/// `*/6` or `0/6`: every sixth.
fn step(field: &str) -> Option<u32> {
    field.strip_prefix("*/").or_else(|| field.strip_prefix("0/"))?.parse().ok().filter(|n| *n > 0)
}

const DAYS: [(&str, &str); 7] = [
    ("mon", "Monday"),
    ("tue", "Tuesday"),
    ("wed", "Wednesday"),
    ("thu", "Thursday"),
    ("fri", "Friday"),
    ("sat", "Saturday"),
    ("sun", "Sunday"),
];

/// `Mon,Thu` → `weekly on Monday and Thursday`; `Mon-Fri` → `Monday to
/// Friday`. Days given as numbers are left to the expression (cron's
/// numbering is easy to misread).
fn weekdays(field: &str) -> Option<String> {
    let day = |d: &str| {
        let d = d.to_ascii_lowercase();
        DAYS.iter().find(|(short, long)| d == *short || d == long.to_ascii_lowercase()).map(|(_, long)| *long)
    };
    if let Some((from, to)) = field.split_once('-') {
        return Some(format!("{} to {}", day(from)?, day(to)?));
    }
    let days: Vec<&str> = field.split(',').map(day).collect::<Option<_>>()?;
    Some(format!("weekly on {}", and_list(&days)))
}

/// `a`, `a and b`, `a, b and c`.
fn and_list<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [rest @ .., last] => {
            format!("{} and {}", rest.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(", "), last.as_ref())
        }
    }
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_shapes_in_words() {
        for (expr, words) in [
            ("0 30 3 * * *", "daily at 03:30 UTC"),
            ("0 0 3 * * ?", "daily at 03:00 UTC"),
            ("0 0 3,15 * * *", "daily at 03:00 and 15:00 UTC"),
            ("0 17 3 * * Mon,Thu", "weekly on Monday and Thursday at 03:17 UTC"),
            ("0 0 4 * * Sun", "weekly on Sunday at 04:00 UTC"),
            ("0 0 4 * * sunday", "weekly on Sunday at 04:00 UTC"),
            ("0 15 2 * * Mon-Fri", "Monday to Friday at 02:15 UTC"),
            ("0 0 */6 * * *", "every 6 hours, at 00:00, 06:00, 12:00 and 18:00 UTC"),
            ("0 30 0/12 * * *", "every 12 hours, at 00:30 and 12:30 UTC"),
            ("0 0 */2 * * *", "every 2 hours from 00:00 UTC"),
            ("0 0 * * * *", "every hour, on the hour"),
            ("0 5 * * * *", "every hour at minute 5"),
            ("0 */15 * * * *", "every 15 minutes"),
            ("0 * * * * *", "every minute"),
            ("0 0 1 1 * *", "monthly on the 1st at 01:00 UTC"),
            ("0 0 1 22 * *", "monthly on the 22nd at 01:00 UTC"),
            ("0 0 1 13 * *", "monthly on the 13th at 01:00 UTC"),
            ("30 0 3 * * *", "daily at 03:00:30 UTC"),
            ("0 30 3 * * * *", "daily at 03:30 UTC"),
            ("@daily", "daily at 00:00 UTC"),
            ("  0 30 3 * * *  ", "daily at 03:30 UTC"),
        ] {
            assert_eq!(in_words(expr).as_deref(), Some(words), "{expr}");
        }
    }

    #[test]
    fn other_shapes_stay_expressions() {
        for expr in [
            "0 0 3 * Jan *",    // a particular month
            "0 0 3 1 * Mon",    // a day of the month and of the week
            "0 0 3 * * 2",      // numbered weekday
            "0 0 1-5 * * *",    // a range of hours
            "0 0 */6 * * Mon",  // steps on some days
            "0 0 3 * * * 2030", // a particular year
            "0 30 3 * *",       // five fields
            "not a schedule",
            "",
        ] {
            assert_eq!(in_words(expr), None, "{expr}");
        }
    }

    #[test]
    fn the_next_run_follows_the_expression() {
        let now = time::macros::datetime!(2026-12-07 17:00 UTC); // a Monday
        let d = describe("0 17 3 * * Mon,Thu", now);
        assert_eq!(d.next, Some(time::macros::datetime!(2026-12-10 03:17 UTC)));
        assert_eq!(d.words.as_deref(), Some("weekly on Monday and Thursday at 03:17 UTC"));
        assert_eq!(describe("0 0 */6 * * *", now).next, Some(time::macros::datetime!(2026-12-07 18:00 UTC)));
        let bad = describe("soon", now);
        assert_eq!((bad.words, bad.next, bad.expr.as_str()), (None, None, "soon"));
    }
}
