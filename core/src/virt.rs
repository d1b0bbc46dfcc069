//! Which virtual machine flint runs in, as systemd's `detect_vm()`
//! (src/basic/virt.c, v252), for `ConditionVirtualization=vm`, `=kvm`,
//! `=vmware`, ... (open-vm-tools' units ask for `vmware`, Hyper-V's daemons
//! for `microsoft`, VirtualBox's guest tools for `oracle`), the manager's
//! `Virtualization` property and the generators' `SYSTEMD_VIRTUALIZATION`.
//! A container is looked at first, by the caller
//! ([`crate::service::condition::container`]): in one, the machine under it
//! does not count, as in systemd's `detect_virtualization()`.
//!
//! systemd's order, kept here:
//! 1. DMI (`/sys/class/dmi/id/{product_name,sys_vendor,board_vendor,
//!    bios_vendor,product_version}` by vendor prefix, then the SMBIOS "virtual
//!    machine" bit): Oracle, Xen, Amazon and Parallels win at once, even
//!    where they run on KVM;
//! 2. User Mode Linux (`/proc/cpuinfo`'s vendor) and Xen (`/proc/xen`,
//!    where dom0, whose `capabilities` say `control_d`, is no guest);
//! 3. the CPUID hypervisor leaf's signature (x86 only): KVM, QEMU, VMware,
//!    bhyve, ...; Microsoft's and unknown ones only count as some VM, since
//!    QEMU shows Hyper-V's signature when it offers its enlightenments;
//! 4. DMI's answer, else `/sys/hypervisor/type`, else "vm-other" where a
//!    step above saw some VM.
//!
//! The device tree (ARM, POWER) and z/VM probes of systemd are not made.

use std::path::Path;

/// CPUID hypervisor signatures (leaf 0x4000_0000) and systemd's names.
const CPUID_VENDORS: [(&str, &str); 11] = [
    ("XenVMMXenVMM", "xen"),
    ("KVMKVMKVM", "kvm"),
    ("Linux KVM Hv", "kvm"),
    ("TCGTCGTCGTCG", "qemu"),
    ("VMwareVMware", "vmware"),
    ("Microsoft Hv", "microsoft"),
    ("bhyve bhyve ", "bhyve"),
    ("QNXQVMBSQG", "qnx"),
    ("ACRNACRNACRN", "acrn"),
    ("SRESRESRESRE", "sre"),
    ("Apple VZ", "apple"),
];

/// DMI vendor prefixes and systemd's names, in systemd's order.
const DMI_VENDORS: [(&str, &str); 15] = [
    ("KVM", "kvm"),
    ("OpenStack", "kvm"),
    ("KubeVirt", "kvm"),
    ("Amazon EC2", "amazon"),
    ("QEMU", "qemu"),
    ("VMware", "vmware"),
    ("VMW", "vmware"),
    ("innotek GmbH", "oracle"),
    ("VirtualBox", "oracle"),
    ("Xen", "xen"),
    ("Bochs", "bochs"),
    ("Parallels", "parallels"),
    ("BHYVE", "bhyve"),
    ("Hyper-V", "microsoft"),
    ("Apple Virtualization", "apple"),
];

/// The DMI files looked at, in systemd's order (the product name before
/// the vendor, to tell KVM from QEMU).
const DMI_FILES: [&str; 5] = [
    "product_name",
    "sys_vendor",
    "board_vendor",
    "bios_vendor",
    "product_version",
];

/// What the CPUID hypervisor leaf says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Cpuid {
    /// No hypervisor bit (or not x86).
    #[default]
    None,
    /// A hypervisor with this signature.
    Signature([u8; 12]),
}

/// What the machine shows of a hypervisor, read by [`Facts::read`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The first line of each of [`DMI_FILES`] that could be read.
    pub dmi: Vec<(String, String)>,
    /// SMBIOS BIOS characteristics: `Some(true)` where the virtual machine
    /// bit is set, `None` where the table cannot be read or is too short.
    pub smbios_vm: Option<bool>,
    /// `/proc/cpuinfo` says User Mode Linux.
    pub uml: bool,
    /// `/proc/xen` exists.
    pub xen: bool,
    /// Xen's `capabilities` say `control_d` (dom0).
    pub xen_dom0: bool,
    pub cpuid: Cpuid,
    /// `/sys/hypervisor/type`.
    pub hypervisor_type: Option<String>,
}

fn first_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.lines().next().unwrap_or_default().trim().to_owned())
}

impl Facts {
    /// Reads the machine's.
    pub fn read() -> Facts {
        let dmi = DMI_FILES
            .iter()
            .filter_map(|f| {
                first_line(&Path::new("/sys/class/dmi/id").join(f)).map(|v| ((*f).to_owned(), v))
            })
            .collect();
        let smbios_vm = std::fs::read("/sys/firmware/dmi/entries/0-0/raw")
            .ok()
            .filter(|raw| raw.len() >= 20 && raw[1] >= 20)
            .map(|raw| raw[19] & (1 << 4) != 0);
        let uml = std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| {
            c.lines().any(|l| {
                l.strip_prefix("vendor_id")
                    .and_then(|rest| rest.trim_start().strip_prefix(':'))
                    .is_some_and(|v| v.trim() == "User Mode Linux")
            })
        });
        let xen = Path::new("/proc/xen").exists();
        let xen_dom0 = xen
            && std::fs::read_to_string("/proc/xen/capabilities")
                .is_ok_and(|c| c.split(',').any(|w| w.trim() == "control_d"));
        Facts {
            dmi,
            smbios_vm,
            uml,
            xen,
            xen_dom0,
            cpuid: cpuid(),
            hypervisor_type: first_line(Path::new("/sys/hypervisor/type")),
        }
    }
}

/// The CPUID hypervisor leaf.
#[cfg(target_arch = "x86_64")]
fn cpuid() -> Cpuid {
    use std::arch::x86_64::__cpuid;
    // CPUID leaf 1, ECX bit 31: a hypervisor is present.
    if __cpuid(1).ecx & (1 << 31) == 0 {
        return Cpuid::None;
    }
    let leaf = __cpuid(0x4000_0000);
    let mut sig = [0u8; 12];
    sig[..4].copy_from_slice(&leaf.ebx.to_le_bytes());
    sig[4..8].copy_from_slice(&leaf.ecx.to_le_bytes());
    sig[8..].copy_from_slice(&leaf.edx.to_le_bytes());
    Cpuid::Signature(sig)
}

#[cfg(not(target_arch = "x86_64"))]
fn cpuid() -> Cpuid {
    Cpuid::None
}

/// The CPU features `ConditionCPUFeature=` knows: systemd's own table of
/// CPUID bits (`virt.c`), by leaf and register. Names the kernel shows in
/// `/proc/cpuinfo` but systemd's table lacks (`hypervisor`, `nx`,
/// `avx512f`, ...) are no feature to it.
pub(crate) const CPU_FEATURES: &[FeatureBits] = &[
    (
        1,
        Reg::Edx,
        &[
            (0, "fpu"),
            (1, "vme"),
            (2, "de"),
            (3, "pse"),
            (4, "tsc"),
            (5, "msr"),
            (6, "pae"),
            (7, "mce"),
            (8, "cx8"),
            (9, "apic"),
            (11, "sep"),
            (12, "mtrr"),
            (13, "pge"),
            (14, "mca"),
            (15, "cmov"),
            (16, "pat"),
            (17, "pse36"),
            (19, "clflush"),
            (23, "mmx"),
            (24, "fxsr"),
            (25, "sse"),
            (26, "sse2"),
            (28, "ht"),
        ],
    ),
    (
        1,
        Reg::Ecx,
        &[
            (0, "pni"),
            (1, "pclmul"),
            (3, "monitor"),
            (9, "ssse3"),
            (12, "fma3"),
            (13, "cx16"),
            (19, "sse4_1"),
            (20, "sse4_2"),
            (22, "movbe"),
            (23, "popcnt"),
            (25, "aes"),
            (26, "xsave"),
            (27, "osxsave"),
            (28, "avx"),
            (29, "f16c"),
            (30, "rdrand"),
        ],
    ),
    (
        7,
        Reg::Ebx,
        &[
            (3, "bmi1"),
            (5, "avx2"),
            (8, "bmi2"),
            (18, "rdseed"),
            (19, "adx"),
            (29, "sha_ni"),
        ],
    ),
    (0x8000_0001, Reg::Ecx, &[(0, "lahf_lm"), (5, "abm")]),
    (
        0x8000_0001,
        Reg::Edx,
        &[(11, "syscall"), (27, "rdtscp"), (29, "lm")],
    ),
    (0x8000_0007, Reg::Edx, &[(8, "constant_tsc")]),
];

/// The named bits of one register of one CPUID leaf.
pub(crate) type FeatureBits = (u32, Reg, &'static [(u32, &'static str)]);

/// A CPUID register.
#[derive(Clone, Copy)]
pub(crate) enum Reg {
    Ebx,
    Ecx,
    Edx,
}

/// systemd's `has_cpu_with_flag()`: whether the CPU has `flag` (any case),
/// a name of systemd's table. Other machines than x86 have none.
pub fn has_cpu_feature(flag: &str) -> bool {
    let flag = flag.to_ascii_lowercase();
    CPU_FEATURES.iter().any(|(leaf, reg, bits)| {
        bits.iter().any(|(bit, name)| {
            *name == flag && cpuid_register(*leaf, *reg).is_some_and(|v| v & (1 << bit) != 0)
        })
    })
}

/// One register of CPUID `leaf` (sub-leaf 0), where the CPU has that leaf
/// (`__get_cpuid()`).
#[cfg(target_arch = "x86_64")]
fn cpuid_register(leaf: u32, reg: Reg) -> Option<u32> {
    use std::arch::x86_64::{__cpuid_count, __get_cpuid_max};
    // CPUID exists on every x86_64 CPU; asking for the highest leaf of a
    // range has no other effect.
    let (max, _) = __get_cpuid_max(leaf & 0x8000_0000);
    if leaf > max {
        return None;
    }
    let r = __cpuid_count(leaf, 0);
    Some(match reg {
        Reg::Ebx => r.ebx,
        Reg::Ecx => r.ecx,
        Reg::Edx => r.edx,
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn cpuid_register(_leaf: u32, _reg: Reg) -> Option<u32> {
    None
}

/// DMI's answer (systemd's `detect_vm_dmi()`): a vendor's name, or
/// "vm-other" where only the SMBIOS bit says a VM; `None` for none.
fn dmi(facts: &Facts) -> Option<&'static str> {
    let vendor = facts.dmi.iter().find_map(|(_, value)| {
        DMI_VENDORS
            .iter()
            .find(|(prefix, _)| value.starts_with(prefix))
            .map(|(_, name)| *name)
    });
    match vendor {
        // DMI does not tell EC2's VMs from its bare-metal instances.
        Some("amazon") => match facts.smbios_vm {
            Some(true) => Some("amazon"),
            Some(false) => None,
            None => {
                let metal = facts
                    .dmi
                    .iter()
                    .any(|(f, v)| f == "product_name" && v.strip_suffix(".metal").is_some());
                (!metal).then_some("amazon")
            }
        },
        None if facts.smbios_vm == Some(true) => Some("vm-other"),
        other => other,
    }
}

/// systemd's name of the virtual machine `facts` describe, or `None`.
pub fn vm(facts: &Facts) -> Option<&'static str> {
    let dmi = dmi(facts);
    if let Some(v @ ("oracle" | "xen" | "amazon" | "parallels")) = dmi {
        return Some(v);
    }
    if facts.uml {
        return Some("uml");
    }
    if facts.xen && !facts.xen_dom0 {
        return Some("xen");
    }
    let mut other = false;
    let cpuid = match facts.cpuid {
        Cpuid::Signature(sig) => {
            let end = sig.iter().position(|b| *b == 0).unwrap_or(sig.len());
            let text = &sig[..end];
            let name = CPUID_VENDORS
                .iter()
                .find(|(s, _)| s.as_bytes() == text)
                .map_or("vm-other", |(_, name)| *name);
            // QEMU shows Hyper-V's signature with its enlightenments: the
            // steps below may know better.
            if !matches!(name, "microsoft" | "vm-other") {
                return Some(name);
            }
            other = true;
            Some(name)
        }
        Cpuid::None => None,
    };
    // Xen's dom0 is the host, unless nested in another hypervisor.
    if facts.xen_dom0 {
        return cpuid;
    }
    match dmi {
        Some("vm-other") => other = true,
        Some(name) => return Some(name),
        None => {}
    }
    match facts.hypervisor_type.as_deref() {
        Some("xen") => return Some("xen"),
        Some(_) => return Some("vm-other"),
        None => {}
    }
    other.then_some("vm-other")
}

/// What flint runs in: a container's name, else a virtual machine's, else
/// `None`, looked at once; and whether it is a container.
pub fn detect() -> Option<(&'static str, bool)> {
    static FOUND: std::sync::OnceLock<Option<(String, bool)>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| match crate::service::condition::container() {
            Some(c) => Some((c, true)),
            None => vm(&Facts::read()).map(|v| (v.to_owned(), false)),
        })
        .as_ref()
        .map(|(name, container)| (name.as_str(), *container))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(s: &str) -> Cpuid {
        let mut b = [0u8; 12];
        b[..s.len()].copy_from_slice(s.as_bytes());
        Cpuid::Signature(b)
    }

    fn with_dmi(pairs: &[(&str, &str)]) -> Facts {
        Facts {
            dmi: pairs
                .iter()
                .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
                .collect(),
            ..Facts::default()
        }
    }

    #[test]
    fn cpuid_signatures_name_the_hypervisor() {
        let kvm = Facts {
            cpuid: sig("KVMKVMKVM"),
            ..Facts::default()
        };
        assert_eq!(vm(&kvm), Some("kvm"));
        let tcg = Facts {
            cpuid: sig("TCGTCGTCGTCG"),
            ..Facts::default()
        };
        assert_eq!(vm(&tcg), Some("qemu"));
        // Hyper-V's signature and unknown ones: some VM, unless DMI names it.
        let hv = Facts {
            cpuid: sig("Microsoft Hv"),
            ..Facts::default()
        };
        assert_eq!(vm(&hv), Some("vm-other"));
        let hv_dmi = Facts {
            cpuid: sig("Microsoft Hv"),
            ..with_dmi(&[
                ("sys_vendor", "Microsoft Corporation"),
                ("product_version", "Hyper-V UEFI Release v4.1"),
            ])
        };
        assert_eq!(vm(&hv_dmi), Some("microsoft"));
        let qemu_hv = Facts {
            cpuid: sig("Microsoft Hv"),
            ..with_dmi(&[("sys_vendor", "QEMU")])
        };
        assert_eq!(vm(&qemu_hv), Some("qemu"));
        let unknown = Facts {
            cpuid: sig("NoSuchHyperv"),
            ..Facts::default()
        };
        assert_eq!(vm(&unknown), Some("vm-other"));
        let bare = Facts {
            cpuid: Cpuid::None,
            ..Facts::default()
        };
        assert_eq!(vm(&bare), None);
    }

    #[test]
    fn dmi_vendors_first_for_those_that_run_on_kvm() {
        // VirtualBox with KVM's paravirtual interface is VirtualBox.
        let vbox = Facts {
            cpuid: sig("KVMKVMKVM"),
            ..with_dmi(&[
                ("product_name", "VirtualBox"),
                ("sys_vendor", "innotek GmbH"),
            ])
        };
        assert_eq!(vm(&vbox), Some("oracle"));
        // The product name before the vendor: KVM over QEMU.
        let kvm = with_dmi(&[("product_name", "KVM"), ("sys_vendor", "QEMU")]);
        assert_eq!(vm(&kvm), Some("kvm"));
        let vmware = with_dmi(&[("sys_vendor", "VMware, Inc.")]);
        assert_eq!(vm(&vmware), Some("vmware"));
        // CPUID wins over DMI otherwise.
        let both = Facts {
            cpuid: sig("VMwareVMware"),
            ..with_dmi(&[("sys_vendor", "QEMU")])
        };
        assert_eq!(vm(&both), Some("vmware"));
    }

    #[test]
    fn amazon_metal_is_no_vm_and_the_smbios_bit_is_some_vm() {
        let ec2 = Facts {
            smbios_vm: Some(true),
            ..with_dmi(&[("sys_vendor", "Amazon EC2")])
        };
        assert_eq!(vm(&ec2), Some("amazon"));
        let metal = Facts {
            smbios_vm: Some(false),
            ..with_dmi(&[("sys_vendor", "Amazon EC2")])
        };
        assert_eq!(vm(&metal), None);
        let metal_by_name = with_dmi(&[("product_name", "m5.metal"), ("sys_vendor", "Amazon EC2")]);
        assert_eq!(vm(&metal_by_name), None);
        let bit = Facts {
            smbios_vm: Some(true),
            ..with_dmi(&[("sys_vendor", "Some Firmware")])
        };
        assert_eq!(vm(&bit), Some("vm-other"));
    }

    #[test]
    fn uml_xen_and_the_hypervisor_file() {
        let uml = Facts {
            uml: true,
            cpuid: sig("KVMKVMKVM"),
            ..Facts::default()
        };
        assert_eq!(vm(&uml), Some("uml"));
        let domu = Facts {
            xen: true,
            ..Facts::default()
        };
        assert_eq!(vm(&domu), Some("xen"));
        // dom0 is the host: no VM, whatever DMI says.
        let dom0 = Facts {
            xen: true,
            xen_dom0: true,
            ..with_dmi(&[("sys_vendor", "QEMU")])
        };
        assert_eq!(vm(&dom0), None);
        let sysfs = Facts {
            hypervisor_type: Some("xen".into()),
            ..Facts::default()
        };
        assert_eq!(vm(&sysfs), Some("xen"));
        assert_eq!(vm(&Facts::default()), None);
    }

    /// The machine's answer is systemd-detect-virt's, where it runs.
    #[test]
    fn this_machine_as_systemd_detect_virt_sees_it() {
        let Ok(out) = std::process::Command::new("systemd-detect-virt")
            .arg("--vm")
            .output()
        else {
            eprintln!("no systemd-detect-virt to compare with");
            return;
        };
        let theirs = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(vm(&Facts::read()).unwrap_or("none"), theirs);
    }
}
