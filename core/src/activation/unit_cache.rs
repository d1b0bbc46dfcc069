//! The index of the unit search path that per-connection loads use.
//!
//! Every `Accept=yes` connection loads its instance unit. Scanning the whole
//! search path for that (hundreds of entries in `/usr/lib/systemd/system`)
//! would cost more than the rest of the activation, so the manager keeps one
//! [`UnitIndex`] and builds it again only when a search directory changed
//! (its mtime, inode or device moved, or it appeared or vanished), as
//! systemd rebuilds its unit name map when the search path's timestamps
//! change. The unit files and drop-ins themselves are looked at again
//! (`statx`) at loads, so edits to them and `%i` of each instance are
//! honoured. Per-connection loads ([`UnitCache::load_instance`]) trust a
//! check of the directories, and of the template's file, made in the last
//! [`RECHECK`]: the default search path has a dozen directories, one
//! `statx` each, and a stream of connections then pays them once per
//! interval instead of per connection.

use crate::stamp::FileStamp;
use crate::unit::load::{self, Unit};
use crate::unit::loader::{SearchPath, UnitIndex};
use crate::unit::name::UnitName;

/// What identifies the state of each search directory (`None`: absent).
fn stamps(search: &SearchPath) -> Vec<Option<FileStamp>> {
    search.dirs.iter().map(|d| FileStamp::of(d).ok()).collect()
}

/// How long a check of the search directories holds for per-connection
/// loads: a unit file or drop-in directory added to a search directory is
/// seen by `Accept=yes` instances at most this much later (systemd sees it
/// only after `daemon-reload`).
const RECHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// A [`UnitIndex`] plus the directory stamps it was built from.
#[derive(Debug, Default)]
pub(super) struct UnitCache {
    cached: Option<(UnitIndex, Vec<Option<FileStamp>>)>,
    /// When the directories were last found unchanged.
    checked: Option<std::time::Instant>,
    /// Each unit's `UnitFileState=`, as worked out once (it reads every
    /// `.wants/` directory of the configuration), until the next
    /// `daemon-reload`, as systemd keeps it with the unit.
    pub(super) file_states: std::cell::RefCell<std::collections::HashMap<String, String>>,
    /// Each unit file's `UnitFilePreset=` (by the file's name), kept as
    /// the states are.
    pub(super) file_presets: std::cell::RefCell<std::collections::HashMap<String, String>>,
}

impl UnitCache {
    /// Loads `name` through the cached index, rebuilding it first when a
    /// search directory changed since it was built.
    pub(super) fn load(&mut self, search: &SearchPath, name: &UnitName) -> Unit {
        load::load_indexed(self.index(search), name)
    }

    /// The index, rebuilt first when a search directory changed since it
    /// was built.
    pub(super) fn index(&mut self, search: &SearchPath) -> &UnitIndex {
        let now = stamps(search);
        let fresh = self
            .cached
            .as_ref()
            .is_some_and(|(index, then)| *then == now && index.search_path().dirs == search.dirs);
        if !fresh {
            self.cached = Some((UnitIndex::build(search), now));
            // A unit file added or gone: the states are worked out anew.
            self.forget_file_states();
        }
        self.checked = Some(std::time::Instant::now());
        let (index, _) = self.cached.as_ref().expect("just built");
        index
    }

    /// Drops the kept `UnitFileState=` and `UnitFilePreset=` answers.
    pub(super) fn forget_file_states(&self) {
        self.file_states.borrow_mut().clear();
        self.file_presets.borrow_mut().clear();
    }

    /// Loads an instance for a connection: like [`UnitCache::load`], but
    /// without looking at the search directories again when they were
    /// found unchanged less than [`RECHECK`] ago.
    pub(super) fn load_instance(&mut self, search: &SearchPath, name: &UnitName) -> Unit {
        if let (Some((index, _)), Some(at)) = (&self.cached, self.checked)
            && at.elapsed() < RECHECK
            && index.search_path().dirs == search.dirs
        {
            return load::load_instance(index, name, RECHECK);
        }
        self.load(search, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_new_and_edited_units() {
        let dir = tempfile::tempdir().unwrap();
        let search = SearchPath::from_dirs(vec![dir.path().to_path_buf()], false);
        let mut cache = UnitCache::default();
        let name: UnitName = "a@x.service".parse().unwrap();
        assert!(!cache.load(&search, &name).is_loaded());
        // A new file changes the directory: the index is built again.
        std::fs::write(
            dir.path().join("a@.service"),
            "[Service]\nExecStart=/bin/true %i\n",
        )
        .unwrap();
        let unit = cache.load(&search, &name);
        assert!(unit.is_loaded());
        // An edited file is read again without a new index; %i follows the instance.
        std::fs::write(
            dir.path().join("a@.service"),
            "[Service]\nExecStart=/bin/echo %i\n",
        )
        .unwrap();
        let unit = cache.load(&search, &"a@y.service".parse().unwrap());
        let cmd = unit.commands("Service", "ExecStart");
        assert_eq!(cmd[0].path, "/bin/echo");
        assert_eq!(cmd[0].argv.last().map(String::as_str), Some("y"));
    }

    #[test]
    fn instances_share_a_parse_only_without_instance_specifiers() {
        let dir = tempfile::tempdir().unwrap();
        let search = SearchPath::from_dirs(vec![dir.path().to_path_buf()], false);
        std::fs::write(
            dir.path().join("plain@.service"),
            "[Service]\nExecStart=/bin/cat -u %p\nEnvironment=A=1\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("named@.service"),
            "[Service]\nExecStart=/bin/echo %p\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("named@.service.d")).unwrap();
        std::fs::write(
            dir.path().join("named@.service.d/i.conf"),
            "[Service]\nEnvironment=WHO=%i\n",
        )
        .unwrap();
        // Files changed in the last second are read every time; past it,
        // their lexed contents (and so the parsed settings) are kept.
        std::thread::sleep(std::time::Duration::from_millis(2100));
        let mut cache = UnitCache::default();
        for inst in ["a", "b", "c"] {
            let unit = cache.load(&search, &format!("plain@{inst}.service").parse().unwrap());
            assert!(unit.is_loaded());
            assert_eq!(unit.id.as_str(), format!("plain@{inst}.service"));
            assert_eq!(unit.name.as_str(), format!("plain@{inst}.service"));
            let cmd = unit.commands("Service", "ExecStart");
            assert_eq!(cmd[0].argv, ["/bin/cat", "-u", "plain"]);
            let unit = cache.load(&search, &format!("named@{inst}.service").parse().unwrap());
            let env: Vec<String> = unit
                .entries("Service", "Environment")
                .iter()
                .map(|(v, _)| format!("{v:?}"))
                .collect();
            assert!(
                env.iter()
                    .any(|e| e.contains(&format!("\"WHO\", \"{inst}\""))),
                "{inst}: {env:?}"
            );
            assert_eq!(unit.dropins.len(), 1);
        }
        // An edit is seen by the next instance.
        std::fs::write(
            dir.path().join("plain@.service"),
            "[Service]\nExecStart=/bin/true\n",
        )
        .unwrap();
        let unit = cache.load(&search, &"plain@d.service".parse().unwrap());
        assert_eq!(unit.commands("Service", "ExecStart")[0].path, "/bin/true");
        // A drop-in added to a template whose parse was kept is seen too.
        std::fs::create_dir(dir.path().join("plain@.service.d")).unwrap();
        std::fs::write(
            dir.path().join("plain@.service.d/x.conf"),
            "[Service]\nExecStart=\nExecStart=/bin/false\n",
        )
        .unwrap();
        let unit = cache.load(&search, &"plain@e.service".parse().unwrap());
        assert_eq!(unit.commands("Service", "ExecStart")[0].path, "/bin/false");
    }

    #[test]
    fn a_search_directory_that_appears_is_looked_into() {
        let dir = tempfile::tempdir().unwrap();
        let units = dir.path().join("units");
        let late = dir.path().join("late");
        std::fs::create_dir(&units).unwrap();
        std::fs::write(units.join("a@.service"), "[Service]\nExecStart=/bin/true\n").unwrap();
        let search = SearchPath::from_dirs(vec![late.clone(), units], false);
        let mut cache = UnitCache::default();
        let unit = cache.load(&search, &"a@x.service".parse().unwrap());
        assert!(unit.is_loaded());
        assert!(unit.dropins.is_empty());
        // The missing directory appears, with a drop-in for the template.
        std::fs::create_dir_all(late.join("a@.service.d")).unwrap();
        std::fs::write(
            late.join("a@.service.d/over.conf"),
            "[Service]\nExecStart=\nExecStart=/bin/false\n",
        )
        .unwrap();
        let unit = cache.load(&search, &"a@y.service".parse().unwrap());
        assert_eq!(unit.dropins.len(), 1, "{:?}", unit.dropins);
        assert_eq!(unit.commands("Service", "ExecStart")[0].path, "/bin/false");
    }

    #[test]
    fn connections_see_a_new_drop_in_directory_within_the_recheck_interval() {
        let dir = tempfile::tempdir().unwrap();
        let search = SearchPath::from_dirs(vec![dir.path().to_path_buf()], false);
        std::fs::write(
            dir.path().join("a@.service"),
            "[Service]\nExecStart=/bin/true\n",
        )
        .unwrap();
        let mut cache = UnitCache::default();
        let unit = cache.load_instance(&search, &"a@x.service".parse().unwrap());
        assert!(unit.dropins.is_empty());
        std::fs::create_dir(dir.path().join("a@.service.d")).unwrap();
        std::fs::write(
            dir.path().join("a@.service.d/over.conf"),
            "[Service]\nExecStart=\nExecStart=/bin/false\n",
        )
        .unwrap();
        // A plain load looks at once; a connection's load within the interval.
        std::thread::sleep(RECHECK);
        let unit = cache.load_instance(&search, &"a@y.service".parse().unwrap());
        assert_eq!(unit.dropins.len(), 1, "{:?}", unit.dropins);
        assert_eq!(unit.commands("Service", "ExecStart")[0].path, "/bin/false");
    }
}
