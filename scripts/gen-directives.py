#!/usr/bin/env python3
"""Prints the list of directives systemd knows, by section, from
`systemd --dump-configuration-items`. flint's directive table in
core/src/unit/directive.rs was seeded from it; run this to see what a newer
systemd added (compare with `flint directives`)."""
import subprocess, sys
out = subprocess.run(["/lib/systemd/systemd", "--dump-configuration-items", "--no-pager"],
                     capture_output=True, text=True).stdout
section = None
for line in out.splitlines():
    if line.startswith("["):
        section = line.strip("[]")
        continue
    if section in ("Unit", "Service", "Socket", "Install") and "=" in line:
        key, hint = line.split("=", 1)
        print(f"{section}\t{key}\t{hint}")
