//! The static build of flint (`scripts/build-static.sh`) runs with nothing
//! else: in new mount and pid namespaces whose root holds only the binary,
//! `/dev`, `/proc`, a unit directory and a static test service, `flint run`
//! serves a connection.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{free_port, wait_for};

/// Where `scripts/build-static.sh` puts the binary.
fn static_flint() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_path_buf();
    target.join("static/flint")
}

/// A static C program: the service, inetd style.
const HELLO: &str = r#"
#include <unistd.h>
int main(void) {
    static const char m[] = "hello from an empty root\n";
    return write(1, m, sizeof m - 1) == sizeof m - 1 ? 0 : 1;
}
"#;

#[test]
fn the_static_binary_serves_a_connection_from_an_empty_root() {
    let flint = static_flint();
    if !flint.exists() {
        assert!(
            !common::in_ci(),
            "{} is missing: .ci/run builds it with scripts/build-static.sh",
            flint.display()
        );
        eprintln!(
            "SKIP: no static build at {}; run scripts/build-static.sh",
            flint.display()
        );
        return;
    }
    if !common::require_root("builds a root with mount and pid namespaces")
        || !common::require("unshare", "new namespaces (util-linux)")
        || !common::require("gcc", "builds the static test service")
    {
        return;
    }
    // Nothing dynamic in it.
    let ldd = Command::new("ldd").arg(&flint).output().expect("ldd");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        said.contains("not a dynamic executable") || said.contains("statically linked"),
        "ldd: {said}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    for d in ["dev", "proc", "units", "bin", "tmp", "run"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::copy(&flint, root.join("flint")).expect("copy flint");
    let src = dir.path().join("hello.c");
    std::fs::write(&src, HELLO).expect("write hello.c");
    let built = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(root.join("bin/hello"))
        .arg(&src)
        .status()
        .expect("gcc");
    assert!(built.success(), "gcc -static failed");
    let port = free_port();
    std::fs::write(
        root.join("units/hello.socket"),
        format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"),
    )
    .expect("socket unit");
    std::fs::write(
        root.join("units/hello@.service"),
        "[Service]\nStandardInput=socket\nExecStart=/bin/hello\n",
    )
    .expect("service unit");
    // Bind /dev, mount a fresh /proc, then chroot: the root holds nothing
    // else, not even a shell or a libc.
    let script = format!(
        "mount --make-rprivate / && mount --rbind /dev {root}/dev && \
         mount -t proc proc {root}/proc && exec chroot {root} /flint run --unit-dir /units",
        root = root.display()
    );
    let mut child = Command::new("unshare")
        .args([
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "sh",
            "-c",
            &script,
        ])
        .env_clear()
        .env("FLINT_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare");
    let answer = wait_for(Duration::from_secs(20), || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        (!out.is_empty()).then_some(out)
    });
    // SAFETY: kill(2) on our own child. `--kill-child` makes the kernel
    // kill flint (pid 1 of the new namespace, which then ends) with it.
    unsafe {
        libc::kill(child.id().cast_signed(), libc::SIGKILL);
    }
    let _ = child.wait();
    let mut log = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut log);
    }
    assert_eq!(
        answer.as_deref(),
        Some("hello from an empty root\n"),
        "flint's log:\n{log}"
    );
}
