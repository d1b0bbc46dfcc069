//! Service credentials under `flint run`: `LoadCredential=` (files,
//! directories, names handed down), `SetCredential=` as the fallback,
//! `ImportCredential=`, the directory's owner, modes and lifetime, and a
//! missing source failing the start with 243/CREDENTIALS, as systemd does.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Flint, Tree, answering_socket, assert_answers, unit_output as output, wait_for};

/// Runs the oneshot `unit` to its end, flint with `env`, and returns its log.
fn run_to_end(tree: &Tree, unit: &str, env: &[(&str, &std::path::Path)]) -> String {
    let mut cmd = common::flint_run(tree.path(), &[unit]);
    cmd.envs(env.iter().copied());
    common::run_unit_to_end(cmd, unit)
}

#[test]
fn credentials_are_loaded_set_and_imported_for_the_services_user_only() {
    if !common::require_root("giving the credentials to another user") {
        return;
    }
    let tree = Tree::new();
    std::fs::set_permissions(tree.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Sources only root may read: flint reads them for the service.
    let secret = tree.write("secret", "s3cret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir_all(tree.path().join("tree/sub")).unwrap();
    std::fs::write(tree.path().join("tree/a"), "A").unwrap();
    std::fs::write(tree.path().join("tree/sub/b"), "B").unwrap();
    // Credentials flint itself was given, for names and imports.
    let mine = tree.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("handed.down"), "from above").unwrap();
    std::fs::write(mine.join("app.one"), "1").unwrap();
    std::fs::write(mine.join("app.two"), "2").unwrap();
    let unit = format!("cred-{}.service", std::process::id());
    tree.write(
        &unit,
        &format!(
            "[Service]\nType=oneshot\nUser=nobody\n\
             LoadCredential=pw:{secret}\n\
             LoadCredential=tree:{tree}\n\
             LoadCredential=handed.down\n\
             LoadCredential=not.there\n\
             ImportCredential=app.*\n\
             SetCredential=pw:not used\n\
             SetCredential=fallback:hello\\x21\n\
             ExecStart=/bin/sh -c 'echo \"$CREDENTIALS_DIRECTORY\"; test \"$CREDENTIALS_DIRECTORY\" = %d && echo is-%%d; \
             cd \"$CREDENTIALS_DIRECTORY\" && echo $(ls); echo $(for f in pw tree_a tree_sub_b handed.down fallback; do cat $f; echo; done); \
             stat -c \"%%a %%U\" . pw; (echo x > new) 2>/dev/null || echo read-only; \
             chmod 600 pw 2>/dev/null && echo chmod-done || echo chmod-refused'\n",
            secret = secret.display(),
            tree = tree.path().join("tree").display(),
        ),
    );
    let log = run_to_end(&tree, &unit, &[("CREDENTIALS_DIRECTORY", &mine)]);
    let dir = format!("/run/credentials/{unit}");
    assert_eq!(
        output(&log, &unit),
        [
            dir.clone(),
            "is-%d".into(),
            "app.one app.two fallback handed.down pw tree_a tree_sub_b".into(),
            "s3cret A B from above hello!".into(),
            "500 nobody".into(),
            "400 nobody".into(),
            "read-only".into(),
            // The owner may not change its credentials (a read-only tmpfs).
            "chmod-refused".into(),
        ],
        "{log}"
    );
    // Gone with the run.
    assert!(!std::path::Path::new(&dir).exists(), "{dir} is left");
}

#[test]
fn a_missing_credential_file_fails_the_start_unless_set_credential_has_it() {
    if !common::require_root("writing /run/credentials") {
        return;
    }
    let tree = Tree::new();
    tree.write(
        "missing.service",
        "[Service]\nType=oneshot\nLoadCredential=key:/nonexistent/flint-key\nExecStart=/bin/true\n",
    );
    let log = run_to_end(&tree, "missing.service", &[]);
    assert!(log.contains("missing.service: Failed with result"), "{log}");
    assert!(log.contains("243"), "{log}");
    assert!(log.contains("/nonexistent/flint-key"), "{log}");
    tree.write(
        "fallback.service",
        "[Service]\nType=oneshot\nLoadCredential=key:/nonexistent/flint-key\nSetCredential=key:default\n\
         ExecStart=/bin/sh -c 'cat \"$CREDENTIALS_DIRECTORY/key\"; echo'\n",
    );
    let log = run_to_end(&tree, "fallback.service", &[]);
    assert_eq!(output(&log, "fallback.service"), ["default"], "{log}");
    // Encrypted credentials need systemd's key: refused with a reason.
    tree.write(
        "encrypted.service",
        "[Service]\nType=oneshot\nLoadCredentialEncrypted=key:/etc/hostname\nExecStart=/bin/true\n",
    );
    let log = run_to_end(&tree, "encrypted.service", &[]);
    assert!(log.contains("encrypted credentials need"), "{log}");
}

#[test]
fn credentials_are_read_again_for_exec_start_pre_and_exec_start() {
    if !common::require_root("writing /run/credentials") {
        return;
    }
    let tree = Tree::new();
    let source = tree.path().join("written-by-pre");
    // The source does not exist until ExecStartPre= writes it; each
    // ExecStartPre= and the first ExecStart= get the credentials read anew.
    tree.write(
        "fresh.service",
        &format!(
            "[Service]\nType=oneshot\nLoadCredential=token:{src}\nSetCredential=token:none-yet\n\
             ExecStartPre=/bin/sh -c 'cat \"$CREDENTIALS_DIRECTORY/token\"; echo; echo renewed > {src}'\n\
             ExecStart=/bin/sh -c 'cat \"$CREDENTIALS_DIRECTORY/token\"'\n",
            src = source.display()
        ),
    );
    let log = run_to_end(&tree, "fresh.service", &[]);
    assert_eq!(
        output(&log, "fresh.service"),
        ["none-yet", "renewed"],
        "{log}"
    );
}

#[test]
fn a_credential_socket_that_answers_slowly_holds_up_only_its_service() {
    if !common::require_root("writing /run/credentials") {
        return;
    }
    // systemd reads credentials in its forked child; flint on the spawn's
    // thread. A credential server that sends a byte at a time (each read
    // within the socket's timeout) holds up that service's start, not the
    // other units.
    let tree = Tree::new();
    let server = tree.path().join("cred.sock");
    let dripping = Dripping::serve(&server);
    let seen = tree.path().join("seen");
    tree.write(
        "slow.service",
        &format!(
            "[Service]\nLoadCredential=token:{}\n\
             ExecStart=/bin/sh -c 'cat \"$$CREDENTIALS_DIRECTORY/token\" > {seen}.part; mv {seen}.part {seen}; exec sleep 1000'\n",
            server.display(),
            seen = seen.display()
        ),
    );
    let other = answering_socket(&tree);
    let flint = Flint::run(&tree, &["slow.service", "other.socket"]);
    assert_answers(&other, &flint);
    assert!(!seen.exists(), "{}", flint.log());
    dripping.finish();
    let text = wait_for(Duration::from_secs(15), || {
        std::fs::read_to_string(&seen).ok()
    })
    .unwrap_or_else(|| panic!("slow.service did not start: {}", flint.log()));
    assert!(text.ends_with("done"), "{text}");
    assert!(
        text.trim_end_matches("done").bytes().all(|b| b == b'.'),
        "{text}"
    );
}

/// A credential server on a unix socket. Its first connection gets a byte
/// every 100 ms (each read within flint's socket timeout) until
/// [`Dripping::finish`] (at most a minute), then `done` and the end; each
/// later connection gets `new` at once.
struct Dripping {
    accepted: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Dripping {
    fn serve(path: &Path) -> Dripping {
        let listener = UnixListener::bind(path).unwrap();
        let accepted = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let (first_in, finished) = (accepted.clone(), done.clone());
        let thread = std::thread::spawn(move || {
            let (mut first, _) = listener.accept().unwrap();
            first_in.store(true, Ordering::SeqCst);
            listener.set_nonblocking(true).unwrap();
            for _ in 0..600 {
                if let Ok((mut next, _)) = listener.accept() {
                    let _ = next.write_all(b"new");
                }
                if finished.load(Ordering::SeqCst) || first.write_all(b".").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = first.write_all(b"done");
        });
        Dripping {
            accepted,
            done,
            thread,
        }
    }

    /// Ends the first connection's answer.
    fn finish(self) {
        self.done.store(true, Ordering::SeqCst);
        self.thread.join().unwrap();
    }
}

/// A flint whose `unit` (with `LoadCredential=token:` from a [`Dripping`]
/// server on `server`, and `exec_start`) is starting: its credential is
/// being read. Returns flint, its control socket and the server.
fn starting_while_its_credential_drips(
    tree: &Tree,
    unit: &str,
    exec_start: &str,
) -> (Flint, PathBuf, Dripping) {
    let server = tree.path().join("cred.sock");
    let dripping = Dripping::serve(&server);
    tree.write(
        unit,
        &format!(
            "[Service]\nLoadCredential=token:{}\nExecStart={exec_start}\n",
            server.display()
        ),
    );
    let (flint, control) = common::run_with_control(tree);
    let (code, text) = common::ctl(&control, &["start", "--no-block", unit]);
    assert_eq!(code, 0, "{text}");
    wait_for(Duration::from_secs(10), || {
        dripping.accepted.load(Ordering::SeqCst).then_some(())
    })
    .unwrap_or_else(|| panic!("{unit} did not read its credential: {}", flint.log()));
    (flint, control, dripping)
}

#[test]
fn a_start_stopped_while_its_credentials_are_read_starts_nothing_and_leaves_nothing() {
    if !common::require_root("writing /run/credentials") {
        return;
    }
    let tree = Tree::new();
    let unit = format!("stopped-{}.service", std::process::id());
    let (flint, control, dripping) =
        starting_while_its_credential_drips(&tree, &unit, "/bin/sleep 1000");
    let (code, text) = common::ctl(&control, &["stop", "--no-block", &unit]);
    assert_eq!(code, 0, "{text}\n{}", flint.log());
    assert!(
        flint.wait_log(&format!("{unit}: job stop finished")),
        "{}",
        flint.log()
    );
    dripping.finish();
    // The spawn comes back having started nothing: the run it was for is
    // over.
    assert!(
        flint.wait_log("not started: the run was stopped meanwhile"),
        "{}",
        flint.log()
    );
    let log = flint.log();
    assert!(
        !log.contains(&format!("{unit}: started"))
            && !log.contains(&format!("{unit}: failed to start")),
        "{log}"
    );
    let dir = PathBuf::from(format!("/run/credentials/{unit}"));
    assert!(!dir.exists(), "{} is left: {}", dir.display(), flint.log());
}

#[test]
fn a_restart_while_credentials_are_read_runs_once_with_the_new_runs_credentials() {
    if !common::require_root("writing /run/credentials") {
        return;
    }
    let tree = Tree::new();
    let unit = format!("restarted-{}.service", std::process::id());
    let seen = tree.path().join("seen");
    let exec_start = format!(
        "/bin/sh -c 'cat \"$$CREDENTIALS_DIRECTORY/token\" >> {0}; echo >> {0}; exec sleep 1000'",
        seen.display()
    );
    let (flint, control, dripping) = starting_while_its_credential_drips(&tree, &unit, &exec_start);
    let (code, text) = common::ctl(&control, &["restart", "--no-block", &unit]);
    assert_eq!(code, 0, "{text}\n{}", flint.log());
    let first = wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(&seen)
            .ok()
            .filter(|t| t.ends_with('\n'))
    })
    .unwrap_or_else(|| panic!("the new run did not start: {}", flint.log()));
    assert_eq!(first, "new\n");
    dripping.finish();
    assert!(
        flint.wait_log("not started: the run was stopped meanwhile"),
        "{}",
        flint.log()
    );
    // The first run's spawn started nothing and left the new run's
    // credentials in place.
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "new\n");
    let token = format!("/run/credentials/{unit}/token");
    assert_eq!(
        std::fs::read_to_string(&token).unwrap_or_else(|e| panic!("{token}: {e}\n{}", flint.log())),
        "new"
    );
    let (code, text) = common::ctl(&control, &["is-active", &unit]);
    assert_eq!((code, text.as_str()), (0, "active\n"), "{}", flint.log());
}
