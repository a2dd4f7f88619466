//! Business time: whole seconds since the Unix epoch, shown as `YYYY-MM-DD HH:MM:SS` in the
//! ledger's fixed UTC offset. The clock is never read here; `now` comes in from the edge.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone};

/// The text form of every business time: `2019-08-01 15:14:31`.
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Seconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// The ledger's time zone, a fixed offset east of UTC (default +08:00, the providers' GMT+8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Zone(FixedOffset);

impl Default for Zone {
    fn default() -> Self {
        Zone::CHINA
    }
}

impl Zone {
    pub const CHINA: Zone = Zone(match FixedOffset::east_opt(8 * 3600) {
        Some(offset) => offset,
        None => panic!("+08:00 is a valid offset"),
    });

    /// A zone `seconds` east of UTC; `None` outside ±24 h.
    pub fn east_seconds(seconds: i32) -> Option<Zone> {
        FixedOffset::east_opt(seconds).map(Zone)
    }

    pub fn offset_seconds(self) -> i32 {
        self.0.local_minus_utc()
    }

    /// Parses `+08:00`, `-05:30` or `Z`.
    pub fn parse(text: &str) -> Option<Zone> {
        if text == "Z" || text == "UTC" {
            return Zone::east_seconds(0);
        }
        let (sign, rest) = match text.as_bytes().first()? {
            b'+' => (1, &text[1..]),
            b'-' => (-1, &text[1..]),
            _ => return None,
        };
        let (hours, minutes) = rest.split_once(':')?;
        if hours.len() != 2 || minutes.len() != 2 {
            return None;
        }
        let hours: i32 = hours.parse().ok()?;
        let minutes: i32 = minutes.parse().ok()?;
        if hours > 23 || minutes > 59 {
            return None;
        }
        Zone::east_seconds(sign * (hours * 3600 + minutes * 60))
    }

    /// `+08:00` style.
    pub fn format(self) -> String {
        let seconds = self.offset_seconds();
        let sign = if seconds < 0 { '-' } else { '+' };
        let seconds = seconds.unsigned_abs();
        format!("{sign}{:02}:{:02}", seconds / 3600, seconds % 3600 / 60)
    }

    /// Parses `YYYY-MM-DD HH:MM:SS` as a local time in this zone.
    pub fn parse_local(self, text: &str) -> Option<Timestamp> {
        if text.len() != 19 {
            return None;
        }
        let naive = NaiveDateTime::parse_from_str(text, TIME_FORMAT).ok()?;
        let local = self.0.from_local_datetime(&naive).single()?;
        Some(Timestamp(local.timestamp()))
    }

    /// Formats as `YYYY-MM-DD HH:MM:SS` in this zone.
    pub fn format_local(self, time: Timestamp) -> String {
        use chrono::{Datelike, Timelike};
        match DateTime::from_timestamp(time.0, 0) {
            Some(utc) => {
                let local = utc.with_timezone(&self.0);
                if !(0..=9999).contains(&local.year()) {
                    return local.format(TIME_FORMAT).to_string();
                }
                // TIME_FORMAT by hand: every answer shows a time, and strftime parses its pattern
                // again on each call.
                let mut out = String::with_capacity(19);
                // 0..=9999, checked above.
                let fields = [(local.year().unsigned_abs(), 4, '-'), (local.month(), 2, '-'), (local.day(), 2, ' ')];
                let clock = [(local.hour(), 2, ':'), (local.minute(), 2, ':'), (local.second(), 2, '\0')];
                for (value, width, separator) in fields.into_iter().chain(clock) {
                    push_padded(&mut out, value, width);
                    if separator != '\0' {
                        out.push(separator);
                    }
                }
                out
            }
            // Unreachable for times that came through parse_local; show the raw value, never panic.
            None => format!("@{}", time.0),
        }
    }
}

/// `value` in `width` (at most 4) decimal digits, zero-padded.
fn push_padded(out: &mut String, value: u32, width: usize) {
    let mut digits = [b'0'; 4];
    let mut rest = value;
    for digit in digits[..width].iter_mut().rev() {
        // `rest % 10` is below 10: the cast cannot truncate.
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.extend(digits[..width].iter().map(|&digit| char::from(digit)));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written format against strftime's, over 4,000 years of times and both signs of
    /// offset.
    #[test]
    fn format_local_matches_strftime() {
        let zones = [
            Zone::CHINA,
            Zone(FixedOffset::west_opt(9 * 3600 + 1800).unwrap()),
            Zone(FixedOffset::east_opt(0).unwrap()),
        ];
        let mut time = -62_135_596_800i64; // 0001-01-01 00:00:00 UTC
        while time < 253_402_300_799 {
            for zone in zones {
                let expected =
                    DateTime::from_timestamp(time, 0).unwrap().with_timezone(&zone.0).format(TIME_FORMAT).to_string();
                assert_eq!(zone.format_local(Timestamp(time)), expected, "{time}");
            }
            time += 31_622_401 + 3_607;
        }
    }

    #[test]
    fn local_time_round_trip() {
        let zone = Zone::CHINA;
        let time = zone.parse_local("2019-08-01 15:14:31").unwrap();
        assert_eq!(time, Timestamp(1_564_643_671));
        assert_eq!(zone.format_local(time), "2019-08-01 15:14:31");
        let utc = Zone::parse("Z").unwrap();
        assert_eq!(utc.format_local(time), "2019-08-01 07:14:31");
    }

    #[test]
    fn rejects_malformed_times() {
        for text in ["2019-08-01", "2019-13-01 00:00:00", "2019-08-01T15:14:31", "2019-08-01 15:14:31.5", "x"] {
            assert_eq!(Zone::CHINA.parse_local(text), None, "{text}");
        }
    }

    #[test]
    fn zones() {
        assert_eq!(Zone::parse("+08:00"), Some(Zone::CHINA));
        assert_eq!(Zone::parse("-05:30").unwrap().offset_seconds(), -(5 * 3600 + 30 * 60));
        assert_eq!(Zone::parse("-05:30").unwrap().format(), "-05:30");
        for bad in ["8", "+8:00", "+24:00", "+08:60", ""] {
            assert_eq!(Zone::parse(bad), None, "{bad}");
        }
    }
}
