use jiff::civil::date;

use super::*;

fn berlin() -> TimeZone {
    zone_named("Europe/Berlin").unwrap()
}

fn utc_second(s: &str) -> i64 {
    s.parse::<Timestamp>().unwrap().as_second()
}

#[test]
fn ordinary_day_has_24_hours() {
    let day = LocalDay::of(date(2025, 6, 2), &berlin());
    assert_eq!(day.length_seconds(), 24 * 3600);
    assert_eq!(day.start_second, utc_second("2025-06-01T22:00:00Z"));
    assert_eq!(day.weekday(), Weekday::Mon);
}

#[test]
fn spring_forward_day_has_23_hours_and_fall_back_day_25() {
    let zone = berlin();
    let spring = LocalDay::of(date(2025, 3, 30), &zone);
    assert_eq!(spring.length_seconds(), 23 * 3600);
    assert_eq!(spring.start_second, utc_second("2025-03-29T23:00:00Z"));
    assert_eq!(spring.end_second, utc_second("2025-03-30T22:00:00Z"));
    let fall = LocalDay::of(date(2025, 10, 26), &zone);
    assert_eq!(fall.length_seconds(), 25 * 3600);
    assert_eq!(fall.start_second, utc_second("2025-10-25T22:00:00Z"));
    assert_eq!(fall.end_second, utc_second("2025-10-26T23:00:00Z"));
}

#[test]
fn other_zones_change_on_their_own_dates() {
    let new_york = zone_named("America/New_York").unwrap();
    assert_eq!(
        LocalDay::of(date(2025, 3, 9), &new_york).length_seconds(),
        23 * 3600
    );
    assert_eq!(
        LocalDay::of(date(2025, 11, 2), &new_york).length_seconds(),
        25 * 3600
    );
    let sydney = zone_named("Australia/Sydney").unwrap();
    assert_eq!(
        LocalDay::of(date(2025, 4, 6), &sydney).length_seconds(),
        25 * 3600
    );
    assert_eq!(
        LocalDay::of(date(2025, 10, 5), &sydney).length_seconds(),
        23 * 3600
    );
}

#[test]
fn containing_puts_edges_in_the_right_day() {
    let zone = berlin();
    let midnight = utc_second("2025-06-01T22:00:00Z");
    assert_eq!(LocalDay::containing(midnight, &zone).date, date(2025, 6, 2));
    assert_eq!(
        LocalDay::containing(midnight - 1, &zone).date,
        date(2025, 6, 1)
    );
    // The repeated hour of the fall-back night belongs to the 26th both times.
    let first_0230 = utc_second("2025-10-26T00:30:00Z");
    let second_0230 = utc_second("2025-10-26T01:30:00Z");
    assert_eq!(
        LocalDay::containing(first_0230, &zone).date,
        date(2025, 10, 26)
    );
    assert_eq!(
        LocalDay::containing(second_0230, &zone).date,
        date(2025, 10, 26)
    );
}

#[test]
fn skipped_time_moves_forward_and_repeated_time_means_first() {
    let zone = berlin();
    // 02:30 does not exist on 2025-03-30: it means 03:30 CEST = 01:30 UTC.
    let gap = local_instant(date(2025, 3, 30).at(2, 30, 0, 0), &zone);
    assert_eq!(gap, utc_second("2025-03-30T01:30:00Z"));
    // 02:30 happens twice on 2025-10-26: the first (CEST, 00:30 UTC).
    let fold = local_instant(date(2025, 10, 26).at(2, 30, 0, 0), &zone);
    assert_eq!(fold, utc_second("2025-10-26T00:30:00Z"));
}

#[test]
fn weekday_numbers_outside_1_to_7_are_typed_errors() {
    assert_eq!(Weekday::from_iso_number(1), Ok(Weekday::Mon));
    assert_eq!(Weekday::from_iso_number(7), Ok(Weekday::Sun));
    for bad in [0, 8, -1] {
        let err = Weekday::from_iso_number(bad).unwrap_err();
        assert_eq!(err, InputError::out_of_range("weekday", bad, 1, 7));
        assert!(err.to_string().contains("allowed range is 1..=7"));
    }
    assert_eq!(Weekday::of(date(2025, 12, 24)), Weekday::Wed);
}

#[test]
fn clock_times_parse_hh_mm_only() {
    assert_eq!(
        "21:00".parse::<ClockTime>().unwrap(),
        ClockTime::new(21, 0).unwrap()
    );
    assert_eq!("7:05".parse::<ClockTime>().unwrap().to_string(), "07:05");
    for bad in [
        "24:00", "21:60", "21", "21:0", "ab:cd", "-1:00", "21:00:00", "",
    ] {
        assert!(
            matches!(
                bad.parse::<ClockTime>(),
                Err(InputError::BadClockTime { .. })
            ),
            "{bad:?} should not parse"
        );
    }
    assert_eq!(
        ClockTime::new(24, 0),
        Err(InputError::out_of_range("hour", 24, 0, 23))
    );
}

#[test]
fn unknown_zone_names_the_field() {
    let err = zone_named("Europe/Atlantis").unwrap_err();
    assert_eq!(err.field(), "time_zone");
    assert!(err.to_string().contains("Europe/Atlantis"));
}

#[test]
fn unix_micros_out_of_range_is_a_typed_error() {
    assert!(instant_from_unix_micros(1_700_000_000_000_000).is_ok());
    let err = instant_from_unix_micros(i64::MAX).unwrap_err();
    assert_eq!(err.field(), "now_unix_micros");
}
