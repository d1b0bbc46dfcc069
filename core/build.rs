//! Builds flint's example policy plugins so that `cargo test` and the demo
//! need no manual step.
//!
//! The plugins in `../plugins` are their own cargo workspace. This script runs
//! `cargo build --release --target wasm32-unknown-unknown` on it, in a target
//! directory of its own beside the outer build's (`target/debug/flint-plugins`,
//! so it never waits on the lock of the outer build), with the outer build's flags and wrappers removed from the
//! environment. Each core module is then turned into a component with
//! `wit_component::ComponentEncoder`; the components have no WASI imports.
//!
//! The components land in `$OUT_DIR/plugins/<name>.wasm`, exposed to the crate
//! as `env!("FLINT_PLUGIN_DIR")`, and are copied to `target/plugins/` for the
//! demo units and the README. Setting `FLINT_SKIP_PLUGIN_BUILD=1` skips the
//! plugin build (for a quick `cargo check`); tests that load the example
//! plugins then fail with a message that says so.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Variables that the outer cargo sets or honours and that must not leak into
/// the plugin build: host flags, wrappers (clippy's included), the outer
/// target directory and target selection.
const CLEARED_VARS: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_PROFILE_RELEASE_LTO",
    "CARGO_PROFILE_RELEASE_PANIC",
    "CARGO_PROFILE_RELEASE_OPT_LEVEL",
    "CARGO_PROFILE_RELEASE_DEBUG",
    "CARGO_PROFILE_RELEASE_STRIP",
    "CARGO_PROFILE_RELEASE_CODEGEN_UNITS",
    "CARGO_CFG_TARGET_FEATURE",
    "TARGET",
    "HOST",
    "OUT_DIR",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "NUM_JOBS",
];

/// Links the `flint` binary with its functions in the order the file named
/// by `FLINT_SYMBOL_ORDER` lists them (`scripts/order-functions.sh` writes
/// it: the functions flint runs to start and to serve, in the order they
/// first ran), with lld, whose `--symbol-ordering-file` does this; names the
/// build lacks are skipped. Unset, or naming no file: the linker's own order.
/// Only the link step reads the file, so the objects are the same with or
/// without it and every name traced in one build is found in the next.
fn symbol_order() {
    println!("cargo:rerun-if-env-changed=FLINT_SYMBOL_ORDER");
    let Some(order) = env::var_os("FLINT_SYMBOL_ORDER").map(PathBuf::from) else {
        return;
    };
    // Watched even while it is missing (cargo then runs this script at every
    // build): the order written later must relink the binary.
    println!("cargo:rerun-if-changed={}", order.display());
    if !order.is_file() {
        return;
    }
    // rustc links x86_64-unknown-linux-gnu with its own lld already; other
    // targets (musl) get it the same way: the C compiler driver finds
    // `ld.lld` in the toolchain's gcc-ld directory.
    let host = env::var("HOST").expect("cargo sets HOST");
    if let Some(gcc_ld) = sysroot()
        .map(|root| root.join("lib/rustlib").join(host).join("bin/gcc-ld"))
        .filter(|dir| dir.join("ld.lld").exists())
    {
        println!("cargo:rustc-link-arg-bins=-B{}", gcc_ld.display());
    }
    println!("cargo:rustc-link-arg-bins=-fuse-ld=lld");
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        order.display()
    );
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    // A position-independent glibc build relocates itself at every start:
    // the loader reads all of `.rela.dyn` (0.6 MiB, 24 bytes per pointer).
    // Packed (RELR, a bitmap per 63 pointers) it is a few KiB; glibc reads
    // that from 2.36 on, and a binary so linked needs it, so only when the
    // glibc here, which the binary is built to run on, has it.
    if env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
        && env::var("TARGET").ok() == env::var("HOST").ok()
        && !env::var("CARGO_CFG_TARGET_FEATURE")
            .is_ok_and(|f| f.split(',').any(|f| f == "crt-static"))
        && glibc_has_relr()
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// The sysroot of the rustc cargo builds with.
fn sysroot() -> Option<PathBuf> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The plugins' target, added with rustup when the toolchain lacks it.
/// rustup adds the targets `rust-toolchain.toml` names only when it installs
/// the toolchain itself: a toolchain that was already there, or one linked
/// in (`rustup toolchain link`), comes without them.
fn ensure_wasm_target() {
    let Some(root) = sysroot() else {
        return;
    };
    if root
        .join("lib/rustlib")
        .join(WASM_TARGET)
        .join("lib")
        .is_dir()
    {
        return;
    }
    println!("cargo:warning=the {WASM_TARGET} target is missing: rustup target add {WASM_TARGET}");
    // RUSTUP_TOOLCHAIN, which rustup set for cargo, names the toolchain.
    let added = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        added,
        "the example plugins need the {WASM_TARGET} target: `rustup target add {WASM_TARGET}` \
         failed; add it by hand, or set FLINT_SKIP_PLUGIN_BUILD=1 to build flint without them"
    );
}

/// The target the plugins are built for.
const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Whether this machine's glibc reads packed relative relocations (2.36+).
fn glibc_has_relr() -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    // "glibc 2.36"
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split('.')
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (2, 36)
}

/// Prefixes of variables cargo sets for build scripts.
const CLEARED_PREFIXES: &[&str] = &["CARGO_CFG_", "CARGO_FEATURE_", "CARGO_PKG_", "DEP_"];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let plugins_dir = manifest_dir.join("../plugins");
    let wit_dir = manifest_dir.join("../wit");
    let component_dir = out_dir.join("plugins");

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=FLINT_SKIP_PLUGIN_BUILD");
    symbol_order();
    println!("cargo:rerun-if-changed={}", wit_dir.display());
    println!(
        "cargo:rerun-if-changed={}",
        plugins_dir.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        plugins_dir.join("Cargo.lock").display()
    );
    for krate in plugin_crates(&plugins_dir) {
        println!(
            "cargo:rerun-if-changed={}",
            krate.join("Cargo.toml").display()
        );
        println!("cargo:rerun-if-changed={}", krate.join("src").display());
    }
    println!(
        "cargo:rustc-env=FLINT_PLUGIN_DIR={}",
        component_dir.display()
    );
    println!("cargo:rustc-env=FLINT_WIT_DIR={}", wit_dir.display());

    fs::create_dir_all(&component_dir).expect("create OUT_DIR/plugins");
    if env::var_os("FLINT_SKIP_PLUGIN_BUILD").is_some_and(|v| !v.is_empty() && v != "0") {
        println!("cargo:warning=FLINT_SKIP_PLUGIN_BUILD is set: example plugins not built");
        return;
    }

    ensure_wasm_target();
    let target_dir = plugin_target_dir(&out_dir);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(WASM_TARGET)
        .arg("--manifest-path")
        .arg(plugins_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(&plugins_dir);
    for var in CLEARED_VARS {
        cmd.env_remove(var);
    }
    for (key, _) in env::vars_os() {
        if let Some(key) = key.to_str()
            && CLEARED_PREFIXES.iter().any(|p| key.starts_with(p))
        {
            cmd.env_remove(key);
        }
    }
    let status = cmd.status().expect("run cargo for the plugin workspace");
    assert!(
        status.success(),
        "building the example plugins failed ({status}); set FLINT_SKIP_PLUGIN_BUILD=1 to skip them"
    );

    let wasm_dir = target_dir.join(WASM_TARGET).join("release");
    let shared_dir = shared_plugin_dir(&manifest_dir);
    for entry in fs::read_dir(&wasm_dir).expect("read the plugin build's output") {
        let path = entry.expect("read the plugin build's output").path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some(stem) = file.strip_suffix(".wasm") else {
            continue;
        };
        let Some(name) = stem.strip_prefix("flint_plugin_") else {
            continue;
        };
        let name = name.replace('_', "-");
        let module = fs::read(&path).expect("read a plugin module");
        let component = wit_component::ComponentEncoder::default()
            .module(&module)
            .and_then(|e| e.validate(true).encode())
            .unwrap_or_else(|e| panic!("componentizing {}: {e:#}", path.display()));
        let dest = component_dir.join(format!("{name}.wasm"));
        write_if_changed(&dest, &component);
        // Best effort: the copy under target/ is a convenience for the
        // demo, the build does not depend on it.
        let _ = fs::create_dir_all(&shared_dir);
        write_if_changed(&shared_dir.join(format!("{name}.wasm")), &component);
    }
}

/// The plugin build's own target directory. `OUT_DIR` is
/// `<profile dir>/build/flint-<hash>/out`; the plugins are built in
/// `<profile dir>/flint-plugins`, which stays the same when this script's
/// hash changes (so a change here does not rebuild them from scratch) and is
/// not the outer build's directory (so there is no lock to wait on).
fn plugin_target_dir(out_dir: &Path) -> PathBuf {
    let build = out_dir.parent().and_then(Path::parent);
    match build {
        Some(build) if build.file_name().is_some_and(|n| n == "build") => {
            build.parent().map_or_else(
                || out_dir.join("plugins-target"),
                |p| p.join("flint-plugins"),
            )
        }
        _ => out_dir.join("plugins-target"),
    }
}

/// The crate directories of the plugin workspace.
fn plugin_crates(plugins_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(plugins_dir) else {
        return Vec::new();
    };
    let mut crates: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    crates.sort();
    crates
}

/// `target/plugins` of the host workspace: `CARGO_TARGET_DIR` if the outer
/// build sets one, else the workspace's `target/`.
fn shared_plugin_dir(manifest_dir: &Path) -> PathBuf {
    let target = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                manifest_dir.join("..").join(dir)
            }
        }
        _ => manifest_dir.join("../target"),
    };
    target.join("plugins")
}

/// Writes `bytes` unless the file already holds them, so that unchanged
/// components keep their mtime (and their cache entries stay warm).
fn write_if_changed(path: &Path, bytes: &[u8]) {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return;
    }
    let tmp = path.with_extension("wasm.tmp");
    if fs::write(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path))
        .is_err()
    {
        let _ = fs::remove_file(&tmp);
        println!("cargo:warning=could not write {}", path.display());
    }
}
