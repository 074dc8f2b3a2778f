//! RFC 3339 times in UTC (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`), written and
//! read by hand: every stored row and every view carries times, and
//! chrono's formatter parses its format string on every call. Anything
//! unusual (a year outside 0..=9999, a leap second) is left to chrono.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

/// How many fraction digits to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fraction {
    /// Always six (microseconds; anything finer is dropped): fixed width,
    /// so that comparing the strings compares the times.
    Micros,
    /// None, 3, 6 or 9, as few as show the time exactly (chrono's way).
    Shortest,
}

/// `t` as text, or `None` where chrono should write it.
pub(crate) fn format(t: &DateTime<Utc>, fraction: Fraction) -> Option<String> {
    let (year, nano) = (t.year(), t.nanosecond());
    if !(0..=9999).contains(&year) || nano >= 1_000_000_000 {
        return None;
    }
    let mut out = [0u8; 30];
    let mut put = |at: usize, width: usize, mut n: u32| {
        for i in (0..width).rev() {
            out[at + i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year as u32);
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, t.second());
    let (fraction, digits) = match fraction {
        Fraction::Micros => (nano / 1_000, 6),
        Fraction::Shortest if nano == 0 => (0, 0),
        Fraction::Shortest if nano % 1_000_000 == 0 => (nano / 1_000_000, 3),
        Fraction::Shortest if nano % 1_000 == 0 => (nano / 1_000, 6),
        Fraction::Shortest => (nano, 9),
    };
    let end = if digits == 0 { 19 } else { 20 + digits };
    if digits > 0 {
        put(20, digits, fraction);
        out[19] = b'.';
    }
    for (at, c) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
        out[at] = c;
    }
    out[end] = b'Z';
    std::str::from_utf8(&out[..=end]).ok().map(str::to_string)
}

/// A time in the form [`format`] writes (any fraction of 1 to 9 digits),
/// or `None` for anything else (then ask chrono).
pub(crate) fn parse(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let (date, rest) = (b.get(..19)?, b.get(19..)?);
    if date[4] != b'-' || date[7] != b'-' || date[10] != b'T' || date[13] != b':' || date[16] != b':' {
        return None;
    }
    let num = |s: &[u8]| s.iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')));
    let nanos = match rest {
        [b'Z'] => 0,
        [b'.', digits @ .., b'Z'] if (1..=9).contains(&digits.len()) => {
            num(digits)? * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let day = NaiveDate::from_ymd_opt(num(&date[0..4])? as i32, num(&date[5..7])?, num(&date[8..10])?)?;
    let time = day.and_hms_nano_opt(num(&date[11..13])?, num(&date[14..16])?, num(&date[17..19])?, nanos)?;
    Some(time.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_chrono() {
        for nanos in [0, 123_000_000, 123_456_000, 123_456_789] {
            let t = DateTime::from_timestamp(1_700_000_000, nanos).unwrap();
            let shortest = format(&t, Fraction::Shortest).unwrap();
            assert_eq!(shortest, t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
            let micros = format(&t, Fraction::Micros).unwrap();
            assert_eq!(micros, t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
            assert_eq!(parse(&shortest), Some(t));
            assert_eq!(parse(&micros), Some(t.trunc_subsecs(6)));
        }
        assert_eq!(parse("2024-02-30T00:00:00Z"), None);
        assert_eq!(parse("2024-02-01 00:00:00Z"), None);
    }

    use chrono::SubsecRound;
}
