//! The static build of flint (`scripts/build-static.sh`) runs with nothing
//! else: in new mount and pid namespaces whose root holds only the binary,
//! `/dev`, `/proc`, a unit directory and a static test service, `flint run`
//! serves a connection; its functions are laid out in the order they first
//! ran under `scripts/order-functions.sh`.

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

/// The static binary, or `None` (and a note) where it was not built; in CI
/// it must be there.
fn built_static_flint() -> Option<PathBuf> {
    let flint = static_flint();
    if flint.exists() {
        return Some(flint);
    }
    assert!(
        !common::in_ci(),
        "{} is missing: .ci/run builds it with scripts/build-static.sh",
        flint.display()
    );
    eprintln!(
        "SKIP: no static build at {}; run scripts/build-static.sh",
        flint.display()
    );
    None
}

#[test]
fn the_static_binary_serves_a_connection_from_an_empty_root() {
    let Some(flint) = built_static_flint() else {
        return;
    };
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

/// A function of the binary: address, size, name (`nm -S`).
fn functions(binary: &Path) -> Vec<(u64, u64, String)> {
    let out = Command::new("nm")
        .args(["-n", "-S", "--defined-only"])
        .arg(binary)
        .output()
        .expect("nm");
    assert!(out.status.success(), "nm {}", binary.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [addr, size, kind, name] = f[..] else {
                return None;
            };
            matches!(kind, "t" | "T" | "W" | "w").then(|| {
                (
                    u64::from_str_radix(addr, 16).expect("address"),
                    u64::from_str_radix(size, 16).expect("size"),
                    name.to_string(),
                )
            })
        })
        .collect()
}

#[test]
fn the_static_binary_keeps_the_functions_it_runs_together() {
    let Some(flint) = built_static_flint() else {
        return;
    };
    if !common::require("nm", "reads the binary's symbols (binutils)") {
        return;
    }
    // The functions that ran as flint started, served and idled, in the
    // order they first ran (scripts/order-functions.sh).
    let order = std::fs::read_to_string(flint.with_file_name("flint.order"))
        .expect("scripts/build-static.sh writes flint.order beside the binary");
    let ran: std::collections::HashSet<&str> = order.lines().collect();
    assert!(ran.len() > 100, "only {} functions in the order", ran.len());
    let all = functions(&flint);
    // `_init` and `_fini` live in sections of their own, which stay put.
    let placed: Vec<&(u64, u64, String)> = all
        .iter()
        .filter(|(_, _, name)| ran.contains(name.as_str()) && name != "_init" && name != "_fini")
        .collect();
    assert!(
        placed.len() + 2 >= ran.len(),
        "{} of the {} functions in the order are in the binary",
        placed.len(),
        ran.len()
    );
    let size: u64 = placed.iter().map(|(_, size, _)| size).sum();
    let first = placed
        .iter()
        .map(|(addr, _, _)| *addr)
        .min()
        .expect("placed");
    let end = placed
        .iter()
        .map(|(addr, size, _)| addr + size)
        .max()
        .expect("placed");
    let text: u64 = all.iter().map(|(_, size, _)| size).sum();
    // Laid out together they span little more than their own size (the
    // functions the linker keeps in the same sections come along); in the
    // linker's own order they spread over nearly all of the code.
    assert!(
        end - first < size + size / 2,
        "the {} functions that ran ({} KiB) spread over {} KiB of {} KiB of code",
        placed.len(),
        size / 1024,
        (end - first) / 1024,
        text / 1024
    );
}
