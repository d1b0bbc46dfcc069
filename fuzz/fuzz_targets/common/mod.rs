//! Shared by the fuzz targets: a fixed specifier context, so that runs do not
//! depend on the host they happen on.

use flint::unit::name::UnitName;
use flint::unit::specifier::{
    DirectoryFacts, HostFacts, ManagerFacts, SpecifierContext, parse_os_release,
};

/// A context for `unit` (a valid unit name) with pinned host, user and
/// directory facts; `user_mode` picks the user manager's values.
pub fn context(unit: UnitName, user_mode: bool) -> SpecifierContext {
    let host = HostFacts {
        hostname: "box.example.org".into(),
        pretty_hostname: Some("Box".into()),
        machine_id: Some("0123456789abcdef0123456789abcdef".into()),
        boot_id: Some("fedcba9876543210fedcba9876543210".into()),
        kernel_release: "6.1.0-fuzz".into(),
        architecture: "x86-64".into(),
        os_release: Some(parse_os_release(
            "ID=debian\nVERSION_ID=\"12\"\nVARIANT_ID=server\nBUILD_ID=b1\nIMAGE_ID=img\nIMAGE_VERSION=1\n",
        )),
    };
    let manager = ManagerFacts {
        user: "fuzz".into(),
        uid: 1000,
        group: "fuzz".into(),
        gid: 1000,
        home: Some("/home/fuzz".into()),
        shell: Some("/bin/sh".into()),
    };
    let dirs = DirectoryFacts {
        runtime: "/run".into(),
        state: "/var/lib".into(),
        cache: "/var/cache".into(),
        logs: "/var/log".into(),
        config: "/etc".into(),
        shared_data: "/usr/share".into(),
        tmp: "/tmp".into(),
        var_tmp: "/var/tmp".into(),
        cgroup_root: String::new(),
    };
    SpecifierContext::with_facts(
        unit,
        Some("/etc/systemd/system/fuzz@.service".into()),
        user_mode,
        host,
        manager,
        dirs,
    )
}

/// The context most targets use: an instance with an escaped instance name.
#[allow(dead_code)]
pub fn default_context() -> SpecifierContext {
    let name = "fuzz-a@x\\x2dy-z.service"
        .parse()
        .expect("a valid unit name");
    context(name, false)
}
