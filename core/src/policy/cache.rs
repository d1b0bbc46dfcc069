//! The on-disk cache of compiled plugins.
//!
//! Compiling a component takes tens of milliseconds (seconds for
//! interpreters compiled to WebAssembly); loading a compiled one takes tens
//! of microseconds. Entries are named `<sha256 of the component>-<hash of the
//! engine's compatibility settings>.cwasm`, so a changed plugin or a flint
//! built with other engine settings never picks up a stale entry.
//!
//! The cache is an optimisation only: a directory that cannot be created or
//! written, or an entry that does not load, is logged and the plugin is
//! compiled from source. Loading an entry loads native code into flint, so
//! only entries flint wrote itself are trusted: the directory is created
//! private (0700), an entry must be a regular file owned by flint's effective
//! user and writable by no one else, and entries are only ever replaced by
//! atomic rename. Entries are read into memory rather than mapped (about
//! 0.1 ms instead of 0.05 ms per plugin), so that a file truncated under a
//! running daemon cannot fault it.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The default cache directory: `$XDG_CACHE_HOME/flint/plugins`, else
/// `/var/cache/flint/plugins` for root, else `~/.cache/flint/plugins`.
pub(crate) fn default_dir() -> Option<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        let xdg = PathBuf::from(xdg);
        if xdg.is_absolute() {
            return Some(xdg.join("flint/plugins"));
        }
    }
    if nix::unistd::geteuid().is_root() {
        return Some(PathBuf::from("/var/cache/flint/plugins"));
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute())
        .map(|h| h.join(".cache/flint/plugins"))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// sha256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Feeds `Hash` output into sha256, for a hash that is stable across runs.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        let d = self.0.clone().finalize();
        u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// A short, stable digest of the engine settings that compiled code depends
/// on (target, tunables, features such as fuel metering).
pub(crate) fn engine_digest(engine: &Engine) -> String {
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    // wasmtime's own version is part of the hash; add ours for good measure.
    env!("CARGO_PKG_VERSION").hash(&mut h);
    let digest = h.0.finalize();
    hex(&digest[..12])
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Loaded from a compiled entry in the cache.
    Hit,
    /// Compiled, and written to the cache.
    Stored,
    /// Compiled; the cache is disabled or could not be written.
    Compiled,
}

/// The cache directory in use, if any.
#[derive(Debug)]
pub(crate) struct Cache {
    dir: Option<PathBuf>,
    engine_digest: String,
}

impl Cache {
    /// Opens (creating) `dir`; without a usable directory the cache is off.
    pub(crate) fn open(engine: &Engine, dir: Option<PathBuf>) -> Cache {
        let dir = dir.and_then(|dir| {
            match fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
            {
                Ok(()) => Some(dir),
                Err(e) => {
                    tracing::warn!(
                        dir = %dir.display(),
                        "plugin cache disabled: cannot create directory: {e}"
                    );
                    None
                }
            }
        });
        Cache {
            dir,
            engine_digest: engine_digest(engine),
        }
    }

    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn entry(&self, wasm_sha: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{wasm_sha}-{}.cwasm", self.engine_digest)))
    }

    /// The compiled component for `wasm` (whose sha256 is `wasm_sha`): from
    /// the cache if a trusted entry loads, else compiled (and stored).
    pub(crate) fn component(
        &self,
        engine: &Engine,
        wasm: &[u8],
        wasm_sha: &str,
    ) -> Result<(Component, CacheStatus), wasmtime::Error> {
        let entry = self.entry(wasm_sha);
        if let Some(path) = entry.as_deref()
            && let Some(compiled) = read_trusted(path)
        {
            // SAFETY: `deserialize` loads the bytes as native code. They come
            // from an entry flint wrote with `Component::serialize` (checked
            // by `read_trusted`: a regular file in flint's private cache
            // directory, owned by our effective uid and writable by no one
            // else), named after the engine's compatibility digest, and
            // wasmtime checks their header against this engine as well. The
            // bytes are copied into memory first, so a file truncated or
            // rewritten later cannot fault the running daemon.
            match unsafe { Component::deserialize(engine, &compiled) } {
                Ok(component) => return Ok((component, CacheStatus::Hit)),
                Err(e) => {
                    tracing::warn!(
                        entry = %path.display(),
                        "ignoring plugin cache entry that does not load: {e}"
                    );
                    let _ = fs::remove_file(path);
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        let status = match entry {
            Some(path) => match component
                .serialize()
                .map_err(|e| e.to_string())
                .and_then(|bytes| write_atomically(&path, &bytes).map_err(|e| e.to_string()))
            {
                Ok(()) => CacheStatus::Stored,
                Err(e) => {
                    tracing::warn!(entry = %path.display(), "cannot write plugin cache entry: {e}");
                    CacheStatus::Compiled
                }
            },
            None => CacheStatus::Compiled,
        };
        Ok((component, status))
    }
}

/// The contents of `path` if it is a regular file owned by our effective
/// uid and writable only by it (checked on the open file, not the name).
fn read_trusted(path: &Path) -> Option<Vec<u8>> {
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    let trusted = meta.file_type().is_file()
        && meta.uid() == nix::unistd::geteuid().as_raw()
        && meta.mode() & 0o022 == 0;
    if !trusted {
        tracing::warn!(entry = %path.display(), "ignoring plugin cache entry not owned by flint");
        return None;
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Writes `bytes` to a temporary file beside `path` and renames it over
/// `path`, so that readers see the old entry or the whole new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp.{}.{seq}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
