use super::*;

#[test]
fn overlapping_intervals_count_once() {
    let mut usage = UsageSet::new();
    usage.insert(0, 1800); // tablet 10:00-10:30
    usage.insert(900, 2700); // phone 10:15-10:45
    assert_eq!(usage.seconds_between(0, 10_000), 2700);
    assert_eq!(usage.len(), 1);
}

#[test]
fn touching_intervals_merge_and_gaps_stay() {
    let mut usage = UsageSet::new();
    usage.insert(0, 100);
    usage.insert(100, 200);
    usage.insert(300, 400);
    assert_eq!(
        usage.spans().collect::<Vec<_>>(),
        vec![(0, 200), (300, 400)]
    );
    usage.insert(150, 350);
    assert_eq!(usage.spans().collect::<Vec<_>>(), vec![(0, 400)]);
}

#[test]
fn one_interval_can_swallow_many() {
    let mut usage = UsageSet::new();
    for i in 0..10 {
        usage.insert(i * 100, i * 100 + 10);
    }
    usage.insert(5, 1000);
    assert_eq!(usage.spans().collect::<Vec<_>>(), vec![(0, 1000)]);
}

#[test]
fn growing_reports_of_one_open_interval_do_not_add_up() {
    let mut usage = UsageSet::new();
    for end in [60, 120, 180, 240] {
        usage.insert(0, end);
    }
    assert_eq!(usage.seconds_between(0, 1000), 240);
}

#[test]
fn empty_and_reversed_intervals_add_nothing() {
    let mut usage = UsageSet::new();
    usage.insert(10, 10);
    usage.insert(20, 5);
    assert!(usage.is_empty());
}

#[test]
fn measure_clips_to_the_window() {
    let mut usage = UsageSet::new();
    usage.insert(0, 100);
    usage.insert(200, 300);
    assert_eq!(usage.seconds_between(50, 250), 100);
    assert_eq!(usage.seconds_between(100, 200), 0);
    assert_eq!(usage.seconds_between(250, 50), 0);
}

#[test]
fn instant_reaching_finds_when_the_credit_ran_out() {
    let mut usage = UsageSet::new();
    usage.insert(0, 100);
    usage.insert(200, 300);
    assert_eq!(usage.instant_reaching(0, 1000, 0), Some(0));
    assert_eq!(usage.instant_reaching(0, 1000, 100), Some(100));
    assert_eq!(usage.instant_reaching(0, 1000, 150), Some(250));
    assert_eq!(usage.instant_reaching(0, 1000, 201), None);
    assert_eq!(usage.instant_reaching(0, 250, 150), Some(250));
}

#[test]
fn forget_before_cuts_a_straddling_span() {
    let mut usage = UsageSet::new();
    usage.insert(0, 100);
    usage.insert(150, 300);
    usage.forget_before(200);
    assert_eq!(usage.spans().collect::<Vec<_>>(), vec![(200, 300)]);
    assert_eq!(usage.span_containing(250), Some((200, 300)));
    assert_eq!(usage.span_containing(300), None);
}
