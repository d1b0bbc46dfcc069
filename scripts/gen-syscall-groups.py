#!/usr/bin/env python3
"""Writes core/src/service/syscall_groups.rs: systemd's system call groups
(`SystemCallFilter=@...`) as the installed systemd lists them with
`systemd-analyze syscall-filter`, the reference flint follows. Run it again
when moving to another systemd release:

    scripts/gen-syscall-groups.py > core/src/service/syscall_groups.rs
"""
import subprocess

out = subprocess.run(
    ["systemd-analyze", "syscall-filter", "--no-pager"],
    check=True, capture_output=True, text=True,
).stdout
version = subprocess.run(
    ["systemd-analyze", "--version"], check=True, capture_output=True, text=True
).stdout.split("\n")[0]

groups = []
current = None
for line in out.splitlines():
    if not line.strip():
        continue
    if line.startswith("#"):
        # The closing list of the kernel's calls that no group holds.
        current = None
        continue
    if not line.startswith(" "):
        current = (line.strip(), [])
        groups.append(current)
        continue
    item = line.strip()
    if item.startswith("#") or current is None:
        continue
    current[1].append(item)

print("//! systemd's system call groups for `SystemCallFilter=`, as")
print(f"//! `systemd-analyze syscall-filter` of {version} lists them (a member")
print("//! starting with `@` is another group). Written by")
print("//! `scripts/gen-syscall-groups.py`; not edited by hand.")
print()
print("pub const GROUPS: &[(&str, &[&str])] = &[")
for name, members in groups:
    print(f'    ("{name}", &[')
    for m in members:
        print(f'        "{m}",')
    print("    ]),")
print("];")
