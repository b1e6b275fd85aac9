//! The scheduler through the real binary: `jobs run` (dry run and real), `jobs list`, and
//! the scheduler running inside `serve`.

mod common;

use chrono::{Duration, Timelike};
use common::{run, Server};
use imis_gateway::scheduler::clock::Clock;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn jobs_run_by_hand_dry_run_then_real_and_list_shows_state() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(
        &[
            "demo-data",
            "--families",
            "150",
            "--data-dir",
            d,
            "--today",
            "2026-03-01",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // A dry run lists SMS with masked phones and changes nothing. Find a day with reminders.
    let mut found = None;
    for day in 0..60 {
        let date = (chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap() + Duration::days(day))
            .to_string();
        let dry = run(
            &[
                "jobs",
                "run",
                "family-reminders",
                "--date",
                &date,
                "--dry-run",
                "--data-dir",
                d,
            ],
            &[],
        );
        assert!(dry.status.success(), "{}", stderr(&dry));
        let text = stdout(&dry);
        let planned = text.lines().filter(|l| l.starts_with("SMS ")).count();
        if planned > 0 {
            found = Some((date, text, planned));
            break;
        }
    }
    let (date, text, planned) = found.expect("some day in 60 has a reminder");
    assert!(text.contains("(dry run)"), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.split_whitespace().any(|w| w.len() == 12
                && w.starts_with("255")
                && w.chars().all(|c| c.is_ascii_digit()))),
        "a full phone number was printed: {text}"
    );

    // The real run enqueues exactly what the dry run planned; a second run adds nothing.
    let real = run(
        &[
            "jobs",
            "run",
            "family-reminders",
            "--date",
            &date,
            "--data-dir",
            d,
        ],
        &[],
    );
    assert!(real.status.success(), "{}", stderr(&real));
    assert!(
        stdout(&real).contains(&format!("SMS {planned}")),
        "planned {planned}: {}",
        stdout(&real)
    );
    let again = run(
        &[
            "jobs",
            "run",
            "family-reminders",
            "--date",
            &date,
            "--data-dir",
            d,
        ],
        &[],
    );
    assert!(
        stdout(&again).contains("changed 0, SMS 0"),
        "{}",
        stdout(&again)
    );

    // An unknown job is refused with the list of jobs.
    let bad = run(&["jobs", "run", "reminders-typo", "--data-dir", d], &[]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("expire-policies"), "{}", stderr(&bad));

    let list = run(&["jobs", "list", "--data-dir", d], &[]);
    assert!(list.status.success(), "{}", stderr(&list));
    for job in ["expire-policies", "renewal-prompts", "family-reminders"] {
        assert!(stdout(&list).contains(job), "{}", stdout(&list));
    }
}

#[test]
fn serve_runs_the_due_jobs_on_start_and_records_their_window() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let server = Server::start(dir.path(), &["--demo"], &[]);
    // The first tick runs at start; give it a moment to record its windows.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    let list = run(&["jobs", "list", "--data-dir", d], &[]);
    assert!(list.status.success(), "{}", stderr(&list));
    let local = Clock::local(chrono::Utc::now());
    // The expiry job is due from 00:10 East Africa Time: its window is today (or, in the
    // ten minutes after midnight, nothing has run yet).
    let line = stdout(&list)
        .lines()
        .find(|l| l.starts_with("expire-policies"))
        .map(str::to_string)
        .unwrap_or_default();
    if local.time().hour() > 0 || local.time().minute() >= 11 {
        assert!(
            line.contains(&local.date().to_string())
                || line.contains(&(local.date() - Duration::days(1)).to_string()),
            "{}",
            stdout(&list)
        );
    }
}
