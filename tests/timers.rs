//! `.timer` units under `flint run`: monotonic and calendar elapses, the
//! unit a timer triggers, `Persistent=` stamps, `RemainAfterElapse=`,
//! `timers.target`, `flint ctl list-timers`/`start`/`stop`, a switch, and
//! broken timers that fail alone.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{Flint, Tree, ctl, wait_for};

/// A oneshot service appending the time (seconds since the epoch, with
/// fractions) to `out` at every run.
fn stamping_service(tree: &Tree, name: &str, out: &Path) {
    tree.write(
        name,
        &format!(
            "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'date +%%s.%%N >> {}'\n",
            out.display()
        ),
    );
}

/// The times recorded in `out`.
fn runs(out: &Path) -> Vec<f64> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn wait_runs(out: &Path, n: usize, limit: Duration) -> Vec<f64> {
    wait_for(limit, || {
        let r = runs(out);
        (r.len() >= n).then_some(r)
    })
    .unwrap_or_else(|| runs(out))
}

fn run_with_control(tree: &Tree, units: &[&str]) -> (Flint, std::path::PathBuf) {
    let control = tree.path().join("control");
    let mut args = vec!["--control", control.to_str().unwrap()];
    args.extend_from_slice(units);
    (Flint::run(tree, &args), control)
}

/// `OnActiveSec=` fires once after the timer starts; `OnUnitActiveSec=`
/// then repeats from each start of the service. `flint ctl list-timers`
/// shows the timer and what it activates; `stop` ends the elapses and
/// `start` begins them anew.
#[test]
fn monotonic_timers_fire_repeat_and_stop() {
    let tree = Tree::new();
    let out = tree.path().join("ticks");
    stamping_service(&tree, "tick.service", &out);
    tree.write(
        "tick.timer",
        "[Unit]\nDescription=Tick\n[Timer]\nOnActiveSec=1s\nOnUnitActiveSec=1s\nAccuracySec=1us\n",
    );
    let started = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let (flint, control) = run_with_control(&tree, &["tick.timer"]);
    let (code, listing) = ctl(&control, &["list-timers"]);
    assert_eq!(code, 0, "{listing}");
    assert!(
        listing.contains("tick.timer") && listing.contains("tick.service"),
        "{listing}"
    );
    assert!(
        listing.contains("NEXT") && listing.contains("ACTIVATES"),
        "{listing}"
    );
    // The time left in systemctl's words ("975ms left").
    assert!(listing.contains(" left "), "{listing}");
    let r = wait_runs(&out, 3, Duration::from_secs(15));
    assert!(r.len() >= 3, "three runs expected:\n{}", flint.log());
    // The first about 1 s after the start, the next ones about 1 s apart.
    assert!(
        r[0] - started >= 0.9,
        "first run too early: {r:?} (start {started})"
    );
    for w in r.windows(2) {
        // Each run counts from the last start; the time recorded is its
        // shell's, after a spawn whose length varies under load.
        assert!(w[1] - w[0] >= 0.5, "runs too close: {r:?}");
    }
    let (code, status) = ctl(&control, &["status", "tick.timer"]);
    assert_eq!(code, 0, "{status}");
    assert!(status.contains("tick.timer - Tick"), "{status}");
    assert!(status.contains("Active: active"), "{status}");
    // Since it started, as systemctl says.
    assert!(
        status
            .lines()
            .any(|l| l.contains("Active: active") && l.contains(" since ")),
        "{status}"
    );
    assert!(status.contains("Trigger:"), "{status}");
    assert!(status.contains("Triggers: ● tick.service"), "{status}");
    // reset-failed (of everything) takes timers too.
    let (code, text) = ctl(&control, &["reset-failed"]);
    assert_eq!(code, 0, "{text}");
    // What `systemctl show` says of a timer (Ansible reads ActiveState).
    let (code, shown) = ctl(&control, &["show", "tick.timer"]);
    assert_eq!(code, 0, "{shown}");
    for want in [
        "Unit=tick.service",
        "ActiveState=active",
        "AccuracyUSec=1us",
        "RemainAfterElapse=yes",
        "Persistent=no",
    ] {
        assert!(shown.lines().any(|l| l == want), "no {want} in\n{shown}");
    }
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("LastTriggerUSec=") && l != "LastTriggerUSec=n/a"),
        "{shown}"
    );

    let (code, text) = ctl(&control, &["stop", "tick.timer"]);
    assert_eq!(code, 0, "{text}");
    // A run under way when the timer stopped may still end.
    std::thread::sleep(Duration::from_secs(1));
    let stopped_at = runs(&out).len();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(runs(&out).len(), stopped_at, "the stopped timer fired");
    let (_, listing) = ctl(&control, &["list-timers"]);
    assert!(!listing.contains("tick.timer"), "{listing}");
    let (_, listing) = ctl(&control, &["list-timers", "--all"]);
    assert!(listing.contains("tick.timer"), "{listing}");

    let (code, text) = ctl(&control, &["start", "tick.timer"]);
    assert_eq!(code, 0, "{text}");
    let r = wait_runs(&out, stopped_at + 1, Duration::from_secs(10));
    assert!(r.len() > stopped_at, "the started timer did not fire");
    drop(flint);
}

/// `OnCalendar=` follows the wall clock: `*:*:0/2` elapses at every even
/// second, and `Unit=` names the service it starts.
#[test]
fn calendar_timer_fires_on_the_wall_clock_and_starts_its_unit() {
    let tree = Tree::new();
    let out = tree.path().join("beats");
    stamping_service(&tree, "beat-work.service", &out);
    tree.write(
        "beat.timer",
        "[Timer]\nOnCalendar=*:*:0/2\nUnit=beat-work.service\nAccuracySec=1us\n",
    );
    let flint = Flint::run(&tree, &["beat.timer"]);
    let r = wait_runs(&out, 3, Duration::from_secs(15));
    assert!(r.len() >= 3, "three runs expected:\n{}", flint.log());
    // flint's own log dates each trigger (RFC 3339, UTC): at an even
    // second, within a few milliseconds of it.
    let log = flint.log();
    let fired: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("beat.timer: elapsed; starting beat-work.service"))
        .filter_map(|l| l.get(17..26)?.parse::<f64>().ok())
        .collect();
    assert!(fired.len() >= 3, "{log}");
    for t in &fired {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = t.floor() as u64;
        assert_eq!(whole % 2, 0, "fired at an odd second: {fired:?}");
        assert!(t - t.floor() < 0.5, "fired late: {fired:?}");
    }
}

/// `Persistent=yes`: a stamp older than the last elapse makes the timer
/// fire at once when it starts (a run missed while flint was down), and
/// the stamp is dated anew; a timer without a stamp gets one and waits;
/// the same calendar without `Persistent=` waits too.
#[test]
fn persistent_timers_catch_up_a_missed_run() {
    let tree = Tree::new();
    let data = tree.path().join("data");
    let rt = tree.path().join("rt");
    std::fs::create_dir_all(&rt).unwrap();
    let stamps = data.join("systemd/timers");
    std::fs::create_dir_all(&stamps).unwrap();
    let (missed, fresh, plain) = (
        tree.path().join("missed"),
        tree.path().join("fresh"),
        tree.path().join("plain"),
    );
    stamping_service(&tree, "missed.service", &missed);
    stamping_service(&tree, "fresh.service", &fresh);
    stamping_service(&tree, "plain.service", &plain);
    // Daily, half a day from now: nothing elapses while the test runs (with
    // `daily`, a run across midnight saw the fresh timers fire).
    let hour = (SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 3600
        + 12)
        % 24;
    let calendar = format!("OnCalendar=*-*-* {hour:02}:00:00 UTC");
    let daily = format!("[Timer]\n{calendar}\nPersistent=true\n");
    tree.write("missed.timer", &daily);
    tree.write("fresh.timer", &daily);
    tree.write("plain.timer", &format!("[Timer]\n{calendar}\n"));
    // Last run three days ago.
    let old = SystemTime::now() - Duration::from_hours(72);
    let stamp = stamps.join("stamp-missed.timer");
    std::fs::File::create(&stamp)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let units = tree.path().to_str().unwrap().to_string();
    let control = tree.path().join("control");
    let flint = Flint::run_args(
        &[
            "run",
            "--user",
            "--unit-dir",
            &units,
            "--control",
            control.to_str().unwrap(),
            "missed.timer",
            "fresh.timer",
            "plain.timer",
        ]
        .map(std::ffi::OsStr::new),
        &[
            ("XDG_DATA_HOME", &data),
            ("XDG_RUNTIME_DIR", &rt),
            ("HOME", tree.path()),
        ],
    );
    let r = wait_runs(&missed, 1, Duration::from_secs(10));
    assert_eq!(
        r.len(),
        1,
        "the missed run did not happen:\n{}",
        flint.log()
    );
    let dated = std::fs::metadata(&stamp).unwrap().modified().unwrap();
    assert!(
        dated > SystemTime::now() - Duration::from_mins(1),
        "the stamp was not dated anew"
    );
    assert!(
        stamps.join("stamp-fresh.timer").exists(),
        "no stamp made for a timer that never ran"
    );
    assert!(!stamps.join("stamp-plain.timer").exists());
    std::thread::sleep(Duration::from_secs(2));
    assert!(runs(&fresh).is_empty(), "a timer without a stamp fired");
    assert!(runs(&plain).is_empty(), "a timer without Persistent= fired");
    assert_eq!(runs(&missed).len(), 1, "the missed run ran twice");
    let (code, listing) = ctl(&control, &["list-timers"]);
    assert_eq!(code, 0, "{listing}");
    assert!(listing.contains("3 timers listed."), "{listing}");
}

/// A timer with only `OnActiveSec=` elapses once: it stays `elapsed`
/// (`RemainAfterElapse=yes`, the default) or goes `dead` with
/// `RemainAfterElapse=no`.
#[test]
fn one_shot_timers_remain_elapsed_or_go_dead() {
    let tree = Tree::new();
    let (a, b) = (tree.path().join("a"), tree.path().join("b"));
    stamping_service(&tree, "keep.service", &a);
    stamping_service(&tree, "gone.service", &b);
    tree.write(
        "keep.timer",
        "[Timer]\nOnActiveSec=200ms\nAccuracySec=1us\n",
    );
    tree.write(
        "gone.timer",
        "[Timer]\nOnActiveSec=200ms\nAccuracySec=1us\nRemainAfterElapse=no\n",
    );
    let (flint, control) = run_with_control(&tree, &["keep.timer", "gone.timer"]);
    assert_eq!(wait_runs(&a, 1, Duration::from_secs(10)).len(), 1);
    assert_eq!(wait_runs(&b, 1, Duration::from_secs(10)).len(), 1);
    let settled = wait_for(Duration::from_secs(10), || {
        let (_, keep) = ctl(&control, &["status", "keep.timer"]);
        let (_, gone) = ctl(&control, &["status", "gone.timer"]);
        (keep.contains("Active: active (elapsed)") && gone.contains("Active: inactive (dead)"))
            .then_some(())
    });
    let (_, keep) = ctl(&control, &["status", "keep.timer"]);
    let (_, gone) = ctl(&control, &["status", "gone.timer"]);
    assert!(settled.is_some(), "{keep}\n{gone}\n{}", flint.log());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(runs(&a).len(), 1, "a one-time elapse fired again");
}

/// Timers that cannot run fail alone, with a clear message, while the
/// others fire: one whose unit is missing, one with only a broken
/// calendar.
#[test]
fn broken_timers_fail_alone() {
    let tree = Tree::new();
    let out = tree.path().join("ok");
    stamping_service(&tree, "ok.service", &out);
    tree.write("ok.timer", "[Timer]\nOnActiveSec=300ms\nAccuracySec=1us\n");
    tree.write(
        "orphan.timer",
        "[Timer]\nOnActiveSec=1s\nUnit=nothere.service\n",
    );
    stamping_service(&tree, "bad.service", &tree.path().join("bad"));
    tree.write("bad.timer", "[Timer]\nOnCalendar=Mon..Frx 25:99\n");
    let flint = Flint::run(&tree, &["orphan.timer", "bad.timer", "ok.timer"]);
    assert_eq!(
        wait_runs(&out, 1, Duration::from_secs(10)).len(),
        1,
        "{}",
        flint.log()
    );
    let log = flint.log();
    assert!(
        log.contains(
            "orphan.timer: Refusing to start, unit nothere.service to trigger not loaded."
        ),
        "{log}"
    );
    assert!(
        log.contains("Failed to parse calendar specification, ignoring: Mon..Frx 25:99"),
        "{log}"
    );
    assert!(
        log.contains("bad.timer: Timer unit lacks value setting."),
        "{log}"
    );
    assert!(!tree.path().join("bad").exists());
}

/// With no unit named, `flint run` starts what `timers.target` wants, as
/// `systemctl enable` links a timer there. The service learns what
/// started it, as from systemd: `TRIGGER_UNIT` and the trigger's time on
/// the wall clock and on `CLOCK_MONOTONIC`.
#[test]
fn timers_target_wants_are_started_by_default_and_tell_the_service() {
    let tree = Tree::new();
    let out = tree.path().join("env");
    tree.write(
        "job.service",
        &format!(
            "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'env > {0}.tmp; mv {0}.tmp {0}'\n",
            out.display()
        ),
    );
    tree.write(
        "job.timer",
        "[Timer]\nOnActiveSec=200ms\nAccuracySec=1us\n[Install]\nWantedBy=timers.target\n",
    );
    std::fs::create_dir_all(tree.path().join("timers.target.wants")).unwrap();
    std::os::unix::fs::symlink(
        "../job.timer",
        tree.path().join("timers.target.wants/job.timer"),
    )
    .unwrap();
    let (flint, control) = run_with_control(&tree, &[]);
    let env = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&out).ok()
    })
    .unwrap_or_else(|| panic!("the timer did not start its service:\n{}", flint.log()));
    let var = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in\n{env}"))
            .to_string()
    };
    assert_eq!(var("TRIGGER_UNIT"), "job.timer");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let realtime: u128 = var("TRIGGER_TIMER_REALTIME_USEC").parse().unwrap();
    assert!(
        now >= realtime && now - realtime < 30_000_000,
        "{realtime} vs {now}"
    );
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec, which is ours.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    #[allow(clippy::cast_precision_loss)]
    let uptime = ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9;
    let monotonic: f64 = var("TRIGGER_TIMER_MONOTONIC_USEC").parse::<f64>().unwrap() / 1e6;
    assert!(
        monotonic <= uptime + 1.0 && uptime - monotonic < 30.0,
        "{monotonic} vs uptime {uptime}"
    );
    // A start that no timer made does not say it was one.
    std::fs::remove_file(&out).unwrap();
    let (code, text) = ctl(&control, &["start", "job.service"]);
    assert_eq!(code, 0, "{text}");
    let env = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&out).ok()
    })
    .expect("job.service did not run");
    assert!(!env.contains("TRIGGER_"), "{env}");
}

/// A switch to a tree where the timer changed restarts it with the new
/// settings; one where it is gone stops it.
#[test]
fn a_switch_restarts_changed_timers_and_stops_removed_ones() {
    let tree = Tree::new();
    let out = tree.path().join("runs");
    stamping_service(&tree, "job.service", &out);
    tree.write("job.timer", "[Timer]\nOnActiveSec=1h\n");
    tree.write("keep.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    for (target, unit) in [
        ("timers.target", "job.timer"),
        ("multi-user.target", "keep.service"),
    ] {
        let wants = tree.path().join(format!("{target}.wants"));
        std::fs::create_dir_all(&wants).unwrap();
        std::os::unix::fs::symlink(format!("../{unit}"), wants.join(unit)).unwrap();
    }
    let (flint, control) = run_with_control(&tree, &[]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(runs(&out).is_empty());
    // A timer started by hand, not wanted by any target: it stays.
    tree.write(
        "manual.timer",
        "[Timer]\nOnActiveSec=1h\nUnit=job.service\n",
    );
    let (code, text) = ctl(&control, &["start", "manual.timer"]);
    assert_eq!(code, 0, "{text}");
    tree.write(
        "job.timer",
        "[Timer]\nOnActiveSec=300ms\nOnUnitActiveSec=500ms\nAccuracySec=1us\n",
    );
    // The service only the timer starts changes too: its next run is the
    // new definition's.
    let marks = tree.path().join("marks");
    tree.write(
        "job.service",
        &format!(
            "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'date +%%s.%%N >> {}; echo new >> {}'\n",
            out.display(),
            marks.display()
        ),
    );
    // A dry run names the timer it would restart, and changes nothing.
    let dry = common::switch(&control, tree.path(), true);
    assert!(dry.contains("job.timer"), "{dry}");
    assert!(!dry.contains("manual.timer"), "{dry}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(runs(&out).is_empty(), "a dry run restarted the timer");
    common::switch(&control, tree.path(), false);
    let r = wait_runs(&out, 2, Duration::from_secs(10));
    assert!(
        r.len() >= 2,
        "the changed timer did not fire:\n{}",
        flint.log()
    );
    // Each run writes `marks` after `runs`: wait for the second's line.
    let new_runs = wait_for(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&marks).unwrap_or_default();
        (text.lines().count() >= 2).then_some(text)
    });
    assert!(
        new_runs.is_some(),
        "the old definition of job.service ran:\n{}",
        flint.log()
    );
    let (_, listing) = ctl(&control, &["list-timers"]);
    assert!(listing.contains("manual.timer"), "{listing}");
    std::fs::remove_file(tree.path().join("timers.target.wants/job.timer")).unwrap();
    std::fs::remove_file(tree.path().join("job.timer")).unwrap();
    common::switch(&control, tree.path(), false);
    std::thread::sleep(Duration::from_secs(1));
    let after = runs(&out).len();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(runs(&out).len(), after, "the removed timer still fires");
    let (_, listing) = ctl(&control, &["list-timers", "--all"]);
    assert!(!listing.contains("job.timer"), "{listing}");
}

/// `flint calendar` against `systemd-analyze calendar`: the same
/// normalized forms and the same next elapses (four of each) for every
/// event of `tests/golden/calendar/specs.txt` (systemd's own test cases,
/// Debian's timers, events systemd refuses), in four time zones (two with
/// daylight saving time, one of them moving by 30 minutes) and from three
/// base times (one near each change of daylight saving time in Europe).
/// What systemd refuses, flint refuses.
#[test]
fn flint_calendar_agrees_with_systemd_analyze() {
    if !common::require("systemd-analyze", "is the oracle for calendar events") {
        return;
    }
    let corpus = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/calendar/specs.txt"),
    )
    .unwrap();
    let specs: Vec<&str> = corpus
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert!(specs.len() > 100);
    let run = |program: &str, args: &[&str], tz: &str| {
        let mut cmd = if program == "flint" {
            std::process::Command::new(common::flint_bin())
        } else {
            std::process::Command::new(program)
        };
        cmd.arg("calendar");
        let out = cmd.args(args).env("TZ", tz).output().unwrap();
        // "From now" counts from the moment each tool ran.
        let mut text = String::new();
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            if !l.trim_start().starts_with("From now:") {
                text.push_str(l);
                text.push('\n');
            }
        }
        (out.status.success(), text)
    };
    let (mut valid, mut refused) = (Vec::new(), 0);
    for spec in &specs {
        let (ok, _) = run("systemd-analyze", &["--base-time=@1767225600", spec], "UTC");
        if ok {
            valid.push(*spec);
        } else {
            refused += 1;
            let (ok, _) = run("flint", &["--base-time=@1767225600", spec], "UTC");
            assert!(!ok, "flint takes {spec:?}, which systemd refuses");
        }
    }
    assert!(refused >= 5 && valid.len() > 100, "{refused} refused");
    for tz in [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
    ] {
        // 2026-01-01 00:00 UTC; 2026-03-29 00:30 UTC; 2026-10-25 00:30 UTC.
        for base in ["@1767225600", "@1774744200", "@1792888200"] {
            let mut args = vec!["--iterations=4"];
            let base_arg = format!("--base-time={base}");
            args.push(&base_arg);
            args.extend(&valid);
            let (ok_sd, want) = run("systemd-analyze", &args, tz);
            let (ok_flint, got) = run("flint", &args, tz);
            assert!(ok_sd && ok_flint);
            if got != want {
                let first = got
                    .lines()
                    .zip(want.lines())
                    .find(|(a, b)| a != b)
                    .map(|(a, b)| format!("flint: {a}\nsystemd: {b}"));
                panic!("TZ={tz} base {base}: first difference:\n{first:?}");
            }
        }
    }
}

/// A change of the system's time zone (`/etc/localtime` replaced, as
/// `timedatectl set-timezone` does) fires `OnTimezoneChange=yes` timers
/// and leaves the others waiting. flint runs in a mount namespace of its
/// own with a private `/etc`, so the machine's zone is never touched.
#[test]
fn a_change_of_time_zone_fires_timers_that_ask_for_it() {
    if !common::require_root("mounts a private /etc in a mount namespace")
        || !common::require("unshare", "util-linux: a private mount namespace")
        || !common::require("nsenter", "util-linux: a command in flint's namespace")
        || !common::require("/usr/share/zoneinfo/Europe/Berlin", "tzdata")
    {
        return;
    }
    let tree = Tree::new();
    let (hit, quiet) = (tree.path().join("hit"), tree.path().join("quiet"));
    stamping_service(&tree, "hit.service", &hit);
    stamping_service(&tree, "quiet.service", &quiet);
    tree.write(
        "hit.timer",
        "[Timer]\nOnTimezoneChange=yes\nOnCalendar=2199-01-01\n",
    );
    tree.write("quiet.timer", "[Timer]\nOnCalendar=2199-01-01\n");
    let script = format!(
        "mount -t tmpfs tmpfs /etc && ln -s /usr/share/zoneinfo/UTC /etc/localtime && \
         exec {} run --unit-dir {} hit.timer quiet.timer",
        common::flint_bin().display(),
        tree.path().display()
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env_remove("TZ");
    let flint = Flint::run_command_until(cmd, "unit(s) running");
    std::thread::sleep(Duration::from_millis(500));
    assert!(runs(&hit).is_empty() && runs(&quiet).is_empty());
    let pid = flint.child.id().to_string();
    let status = std::process::Command::new("nsenter")
        .args(["-t", &pid, "-m", "sh", "-c"])
        .arg(
            "ln -s /usr/share/zoneinfo/Europe/Berlin /etc/localtime.new && \
             mv -T /etc/localtime.new /etc/localtime",
        )
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        wait_runs(&hit, 1, Duration::from_secs(10)).len(),
        1,
        "{}",
        flint.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        runs(&quiet).is_empty(),
        "a timer without OnTimezoneChange= fired"
    );
}

/// What flint reads from timer and path units against systemd's own
/// parser (`systemd --test` dumps every parsed setting): every timer and
/// path unit Debian's packages installed here, and units that use every
/// key. Compared: the unit triggered, the flags, the accuracy and the
/// random delay, the monotonic elapses, the calendar events in systemd's
/// normalized form, the watched paths (each in systemd's order).
#[test]
fn timer_and_path_settings_agree_with_systemds_parser() {
    use flint::unit::calendar::CalendarSpec;
    use flint::unit::value::time::format_timespan;
    use serde_json::Value;
    let Some(systemd) = ["/lib/systemd/systemd", "/usr/lib/systemd/systemd"]
        .iter()
        .find(|p| Path::new(p).is_file())
    else {
        assert!(
            !common::in_ci(),
            "systemd is missing; scripts/install-test-deps.sh installs it"
        );
        eprintln!("SKIP: systemd is missing (the oracle)");
        return;
    };
    let tree = tempfile::Builder::new()
        .prefix("flint-tp-")
        .tempdir_in("/tmp")
        .unwrap();
    let dir = tree.path();
    let mut names = Vec::new();
    for base in ["/lib/systemd/system", "/usr/lib/systemd/user"] {
        for e in std::fs::read_dir(base).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let kind = n.rsplit('.').next().unwrap_or("");
            if matches!(kind, "timer" | "path") && !dir.join(&n).exists() {
                std::fs::copy(e.path(), dir.join(&n)).unwrap();
                names.push(n.replace("@.", "@inst."));
            }
        }
    }
    let write = |n: &str, text: &str| {
        std::fs::write(dir.join(n), text).unwrap();
        n.to_string()
    };
    names.push(write(
        "every.timer",
        "[Timer]\nOnActiveSec=30\nOnBootSec=5min\nOnStartupSec=1h 2min\n\
         OnUnitActiveSec=1d\nOnUnitInactiveSec=90s\nOnCalendar=Mon..Fri 9..17/2:00\n\
         OnCalendar=*-*~03 Europe/Berlin\nOnCalendar=weekly\nUnit=other.service\n\
         Persistent=yes\nWakeSystem=yes\nRemainAfterElapse=no\nAccuracySec=1us\n\
         RandomizedDelaySec=12h\nFixedRandomDelay=yes\nOnClockChange=yes\nOnTimezoneChange=yes\n",
    ));
    names.push(write(
        "reset.timer",
        "[Timer]\nOnBootSec=15min\nOnCalendar=daily\nOnCalendar=\nOnUnitActiveSec=2h\n",
    ));
    names.push(write(
        "every.path",
        "[Path]\nPathExists=/run/a\nPathExistsGlob=/run/b*\nPathChanged=/etc/c\n\
         PathModified=/etc/d\nDirectoryNotEmpty=/var/e\nUnit=other.service\n\
         MakeDirectory=yes\nDirectoryMode=0700\n",
    ));
    std::fs::write(
        dir.join("other.service"),
        "[Service]\nExecStart=/bin/true\n",
    )
    .unwrap();
    for n in &names {
        let base = n.split_once('@').map_or_else(
            || n.rsplit_once('.').unwrap().0.to_string(),
            |(b, rest)| format!("{b}@{}", rest.split_once('.').unwrap().0),
        );
        let service = dir.join(format!("{}.service", base.replace("@inst", "@")));
        if !service.exists() {
            std::fs::write(&service, "[Service]\nExecStart=/bin/true\n").unwrap();
        }
    }
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    // The oracle, as nobody (systemd --test refuses to run as root).
    let mut dumps = std::collections::HashMap::new();
    for n in &names {
        let cmd = format!(
            "SYSTEMD_UNIT_PATH={}: {} --test --system --unit={n} --no-pager",
            dir.display(),
            systemd
        );
        let out = std::process::Command::new("su")
            .args(["nobody", "-s", "/bin/sh", "-c", &cmd])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let block: Vec<(String, String)> = text
            .split(&format!("-> Unit {n}:"))
            .nth(1)
            .unwrap_or_else(|| panic!("no dump of {n}:\n{text}"))
            .lines()
            .take_while(|l| !l.trim_start().starts_with("-> "))
            .filter_map(|l| {
                let (k, v) = l.trim().split_once(": ")?;
                Some((k.to_string(), v.to_string()))
            })
            .collect();
        dumps.insert(n.clone(), block);
    }
    let mut compared = 0;
    let mut differences = Vec::new();
    for n in &names {
        let dump = &dumps[n];
        let want = |k: &str| -> Vec<String> {
            dump.iter()
                .filter(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .collect()
        };
        let out = std::process::Command::new(common::flint_bin())
            .args(["show", "--unit-dir", dir.to_str().unwrap(), n])
            .output()
            .unwrap();
        let show: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("flint show {n}: {}", String::from_utf8_lossy(&out.stderr)));
        let timer = n.rsplit('.').next() == Some("timer");
        let section = &show["settings"][if timer { "Timer" } else { "Path" }];
        let entries = |k: &str| -> Vec<&Value> {
            match &section[k] {
                Value::Array(a) => a.iter().map(|e| &e["value"]).collect(),
                Value::Null => Vec::new(),
                one => vec![&one["value"]],
            }
        };
        let flag = |k: &str, default: bool| {
            let b = entries(k)
                .last()
                .and_then(|v| v.as_bool())
                .unwrap_or(default);
            if b { "yes" } else { "no" }.to_string()
        };
        let mut check = |what: &str, got: Vec<String>, want: Vec<String>| {
            compared += 1;
            if got != want {
                differences.push(format!("{n} {what}: flint {got:?}, systemd {want:?}"));
            }
        };
        let unit = entries("Unit").last().and_then(|v| v.as_str()).map_or_else(
            || format!("{}.service", n.rsplit_once('.').unwrap().0),
            str::to_string,
        );
        check("Unit", vec![unit], want("Unit"));
        if timer {
            for (key, dump_key, default) in [
                ("Persistent", "Persistent", false),
                ("WakeSystem", "WakeSystem", false),
                ("RemainAfterElapse", "RemainAfterElapse", true),
                ("FixedRandomDelay", "FixedRandomDelay", false),
                ("OnClockChange", "OnClockChange", false),
                ("OnTimezoneChange", "OnTimeZoneChange", false),
            ] {
                check(key, vec![flag(key, default)], want(dump_key));
            }
            let usec = |k: &str| entries(k).last().and_then(|v| v["usec"].as_u64());
            check(
                "AccuracySec",
                vec![format_timespan(usec("AccuracySec").unwrap_or(60_000_000))],
                want("Accuracy"),
            );
            // systemd lists its values last written first.
            let mut values: Vec<(String, String)> = Vec::new();
            for key in [
                "OnActiveSec",
                "OnBootSec",
                "OnStartupSec",
                "OnUnitActiveSec",
                "OnUnitInactiveSec",
                "OnCalendar",
            ] {
                if let Value::Array(a) = &section[key] {
                    for e in a {
                        let text = if key == "OnCalendar" {
                            e["value"]
                                .as_str()
                                .and_then(|s| s.parse::<CalendarSpec>().ok())
                                .map_or_else(String::new, |c| c.to_string())
                        } else {
                            format_timespan(e["value"]["usec"].as_u64().unwrap_or(0))
                        };
                        values.push((
                            format!("{:08}", e["line"].as_u64().unwrap_or(0)),
                            format!("{key}: {text}"),
                        ));
                    }
                }
            }
            values.sort();
            let got: Vec<String> = values.into_iter().rev().map(|(_, v)| v).collect();
            let wanted: Vec<String> = dump
                .iter()
                .filter(|(k, _)| k.starts_with("On") && (k.ends_with("Sec") || k == "OnCalendar"))
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            check("elapses", got, wanted);
        } else {
            check(
                "MakeDirectory",
                vec![flag("MakeDirectory", false)],
                want("MakeDirectory"),
            );
            let mut values: Vec<(String, String)> = Vec::new();
            for key in [
                "PathExists",
                "PathExistsGlob",
                "PathChanged",
                "PathModified",
                "DirectoryNotEmpty",
            ] {
                if let Value::Array(a) = &section[key] {
                    for e in a {
                        values.push((
                            format!("{:08}", e["line"].as_u64().unwrap_or(0)),
                            format!("{key}: {}", e["value"].as_str().unwrap_or("")),
                        ));
                    }
                }
            }
            values.sort();
            let got: Vec<String> = values.into_iter().rev().map(|(_, v)| v).collect();
            let wanted: Vec<String> = dump
                .iter()
                .filter(|(k, _)| {
                    matches!(
                        k.as_str(),
                        "PathExists"
                            | "PathExistsGlob"
                            | "PathChanged"
                            | "PathModified"
                            | "DirectoryNotEmpty"
                    )
                })
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            check("paths", got, wanted);
        }
    }
    assert!(
        names.len() >= 5 && compared >= 30,
        "{} units, {compared} checks",
        names.len()
    );
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// A timer whose unit cannot be started for a missing requirement fails
/// with result `resources` ("Failed to queue unit startup job") instead of
/// firing again and again, as systemd's.
#[test]
fn a_timer_whose_start_is_refused_fails() {
    let tree = Tree::new();
    tree.write("t.timer", "[Timer]\nOnActiveSec=1s\nOnUnitActiveSec=1s\n");
    tree.write(
        "t.service",
        "[Unit]\nRequires=flint-absent.service\n[Service]\nExecStart=/bin/true\n",
    );
    // A unit only wanted whose requirement is missing does not fail the
    // timer: its own unit was queued and runs.
    tree.write("u.timer", "[Timer]\nOnActiveSec=1s\nOnUnitActiveSec=1s\n");
    let out = tree.path().join("out");
    tree.write(
        "u.service",
        &format!(
            "[Unit]\nWants=w.service\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo ran >> {}'\n",
            out.display()
        ),
    );
    tree.write(
        "w.service",
        "[Unit]\nRequires=flint-absent.service\n[Service]\nExecStart=/bin/true\n",
    );
    let (flint, control) = run_with_control(&tree, &["t.timer", "u.timer"]);
    let shown = wait_for(Duration::from_secs(10), || {
        let (_, out) = ctl(&control, &["show", "-p", "ActiveState,Result", "t.timer"]);
        out.contains("ActiveState=failed").then_some(out)
    })
    .unwrap_or_else(|| panic!("{}", flint.log()));
    assert!(shown.contains("Result=resources"), "{shown}");
    wait_for(Duration::from_secs(10), || {
        (std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .count()
            >= 2)
            .then_some(())
    })
    .unwrap_or_else(|| panic!("u.service ran twice: {}", flint.log()));
    let (_, shown) = ctl(&control, &["show", "-p", "ActiveState", "u.timer"]);
    assert_eq!(shown.trim(), "ActiveState=active", "{}", flint.log());
}

/// A timer's own `[Unit]` dependencies, as systemd's: what it wants
/// starts with it, a missing requirement refuses its start, and a stop of
/// the unit it is `PartOf=` stops it.
#[test]
fn a_timers_own_dependencies_pull_in_refuse_and_stop_it() {
    let tree = Tree::new();
    tree.write(
        "t.timer",
        "[Unit]\nWants=w.service\nPartOf=p.service\n[Timer]\nOnActiveSec=1h\n",
    );
    tree.write("t.service", "[Service]\nExecStart=/bin/true\n");
    tree.write("w.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write("p.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write(
        "r.timer",
        "[Unit]\nRequires=flint-absent.service\n[Timer]\nOnActiveSec=1h\n",
    );
    tree.write("r.service", "[Service]\nExecStart=/bin/true\n");
    let (flint, control) = run_with_control(&tree, &["p.service"]);
    let state = |unit: &str| {
        let (_, out) = ctl(&control, &["show", "-p", "ActiveState", unit]);
        out.trim().to_string()
    };
    let (code, out) = ctl(&control, &["start", "t.timer"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(state("t.timer"), "ActiveState=active");
    wait_for(Duration::from_secs(10), || {
        (state("w.service") == "ActiveState=active").then_some(())
    })
    .unwrap_or_else(|| panic!("w.service came with the timer: {}", flint.log()));
    assert_eq!(ctl(&control, &["stop", "p.service"]).0, 0);
    assert_eq!(state("t.timer"), "ActiveState=inactive");
    let (code, out) = ctl(&control, &["start", "r.timer"]);
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains("Unit flint-absent.service not found."),
        "{out}"
    );
    assert_eq!(state("r.timer"), "ActiveState=inactive");
}

/// A timer may start a target, as systemd's: the target pulls in what it
/// wants, the timer runs as long as the target is reached (it fires no
/// more, as systemd's), and a timer whose unit is `exit.target` ends
/// flint.
#[test]
fn a_timer_starts_a_target_and_one_for_exit_target_ends_flint() {
    let tree = Tree::new();
    let (a, b) = (tree.path().join("a"), tree.path().join("b"));
    stamping_service(&tree, "a.service", &a);
    stamping_service(&tree, "b.service", &b);
    tree.write("work.target", "[Unit]\nWants=a.service b.service\n");
    tree.write(
        "work.timer",
        "[Timer]\nOnActiveSec=300ms\nAccuracySec=1us\nUnit=work.target\n",
    );
    tree.write(
        "bye.timer",
        "[Timer]\nOnActiveSec=2s\nAccuracySec=1us\nUnit=exit.target\n",
    );
    let (mut flint, control) = run_with_control(&tree, &["work.timer", "bye.timer"]);
    for out in [&a, &b] {
        assert_eq!(
            wait_runs(out, 1, Duration::from_secs(10)).len(),
            1,
            "{}",
            flint.log()
        );
    }
    let (_, status) = ctl(&control, &["status", "work.timer"]);
    assert!(status.contains("active (running)"), "{status}");
    let (_, target) = ctl(&control, &["is-active", "work.target"]);
    assert_eq!(target.trim(), "active");
    let (_, status) = ctl(&control, &["status", "work.target"]);
    assert!(status.contains("TriggeredBy: ● work.timer"), "{status}");
    let (_, shown) = ctl(&control, &["show", "-p", "TriggeredBy", "work.target"]);
    assert_eq!(shown.trim(), "TriggeredBy=work.timer");
    let status = flint.wait_end().expect("bye.timer ended flint");
    assert_eq!(status.code(), Some(0), "{}", flint.log());
    assert!(
        flint
            .log()
            .contains("bye.timer: elapsed; starting exit.target"),
        "{}",
        flint.log()
    );
    assert_eq!(runs(&a).len(), 1, "the target's timer fired once");
}
