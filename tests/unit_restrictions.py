"""Apply a systemd unit's process restrictions to this process, without systemd.

Where systemd is not PID 1 (containers, CI) `systemctl start` cannot show that Chromium
survives deploy/bulk-sender-worker@.service. The restrictions that can stop Chromium are the
user it runs as and the kernel-level filters; this module rebuilds the filters systemd would
install from the unit's own lines, with the same libseccomp systemd uses:

- NoNewPrivileges=            prctl(PR_SET_NO_NEW_PRIVS)
- SystemCallFilter=           an allow-list filter (groups expanded by `systemd-analyze
                              syscall-filter`), `~` lines taken out of it, failing with
                              SystemCallErrorNumber= (systemd kills the process by default)
- RestrictNamespaces=         unshare/clone/setns refused for every namespace kind not
                              listed, clone3 refused with ENOSYS (its flags are out of reach)
- RestrictAddressFamilies=    socket() refused with EAFNOSUPPORT for unlisted families
- MemoryDenyWriteExecute=     the kernel's own PR_SET_MDWE (Linux 6.3+), where systemd uses
                              seccomp; both refuse memory that is or becomes W+X

Not rebuilt: the mount namespace (ProtectSystem=, ProtectHome=, PrivateTmp=, PrivateDevices=,
ReadWritePaths=), ProtectKernel*=, ProtectClock=, ProtectProc=, UMask= and the capability
bounding set. Nothing here is proof of those; see docs/RELIABILITY.md.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import shutil
import socket
import subprocess
from pathlib import Path

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_EQ = 4
SCMP_CMP_MASKED_EQ = 7
PR_SET_NO_NEW_PRIVS = 38
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
NAMESPACE_FLAGS = {
    "cgroup": 0x02000000,
    "ipc": 0x08000000,
    "net": 0x40000000,
    "mnt": 0x00020000,
    "pid": 0x20000000,
    "user": 0x10000000,
    "uts": 0x04000000,
}


def scmp_act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class ScmpArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def available() -> str | None:
    """None when this machine can rebuild the filters, else why not."""
    if shutil.which("systemd-analyze") is None:
        return "systemd-analyze is missing (Debian package systemd) to expand syscall groups"
    if ctypes.util.find_library("seccomp") is None:
        return "libseccomp is missing (Debian package libseccomp2)"
    return None


def directives(unit: Path) -> list[tuple[str, str]]:
    """(key, value) of each line of the unit's [Service] section, continuations joined."""
    pairs, section, text = [], "", unit.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line:
            key, value = line.split("=", 1)
            pairs.append((key.strip(), value.strip()))
    return pairs


def syscall_names(items: list[str]) -> set[str]:
    """System call names, with systemd's @groups expanded the way this systemd does it."""
    names: set[str] = set()
    for item in items:
        if not item.startswith("@"):
            names.add(item)
            continue
        out = subprocess.run(
            ["systemd-analyze", "syscall-filter", item], check=True, capture_output=True, text=True
        ).stdout
        for line in out.splitlines()[1:]:
            word = line.strip().split("#")[0].strip()
            if word.startswith("@"):
                names |= syscall_names([word])
            elif word:
                names.add(word)
    return names


class Restrictions:
    """What a unit's [Service] lines restrict, worked out in the parent (where running
    `systemd-analyze` is harmless) and applied in the child with `apply()`."""

    def __init__(self, unit: Path):
        lines = directives(unit)
        values = dict(lines)  # the last of each key, as systemd reads single-valued ones
        self.no_new_privs = values.get("NoNewPrivileges") == "true"
        self.mdwe = values.get("MemoryDenyWriteExecute") == "true"
        self.allowed: set[str] | None = None
        filters = [value.split() for key, value in lines if key == "SystemCallFilter"]
        if filters:
            self.allowed = syscall_names(filters[0])
            for deny in filters[1:]:
                self.allowed -= syscall_names([deny[0].lstrip("~"), *deny[1:]])
        self.error_number = getattr(errno, values.get("SystemCallErrorNumber", ""), None)
        setting = values.get("RestrictNamespaces")
        self.namespaces: set[str] | None = (
            None
            if setting is None
            else {"true": set(), "false": set(NAMESPACE_FLAGS)}.get(setting, set(setting.split()))
        )
        families = values.get("RestrictAddressFamilies")
        self.families: set[int] | None = (
            None if families is None else {getattr(socket, name) for name in families.split()}
        )

    def apply(self) -> None:
        """Restrict this process and all it starts. Call it in a child process (a fork, or a
        preexec_fn): nothing can be undone."""
        libc = ctypes.CDLL(None, use_errno=True)
        seccomp = ctypes.CDLL(ctypes.util.find_library("seccomp"), use_errno=True)
        seccomp.seccomp_init.restype = ctypes.c_void_p
        seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
        seccomp.seccomp_rule_add_array.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.POINTER(ScmpArgCmp),
        ]
        seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
        seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]

        def rule(ctx, action: int, name: str, *cmps: tuple[int, int, int]) -> None:
            nr = seccomp.seccomp_syscall_resolve_name(name.encode())
            if nr < 0:  # not a system call on this architecture (e.g. 32-bit only)
                return
            array = (ScmpArgCmp * max(len(cmps), 1))(
                *[ScmpArgCmp(arg, op, datum, datum) for arg, op, datum in cmps]
            )
            if seccomp.seccomp_rule_add_array(ctx, action, nr, len(cmps), array) < 0:
                raise OSError(f"seccomp rule for {name} refused")

        def load(ctx) -> None:
            if seccomp.seccomp_load(ctx) < 0:
                raise OSError("seccomp_load failed")

        if self.no_new_privs and libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
        if self.mdwe and libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0):
            raise OSError(ctypes.get_errno(), "PR_SET_MDWE (Linux 6.3+)")
        # Each filter is loaded on its own, as systemd does: the kernel applies the strictest.
        if self.namespaces is not None and self.namespaces != set(NAMESPACE_FLAGS):
            ctx = seccomp.seccomp_init(SCMP_ACT_ALLOW)
            for kind, flag in NAMESPACE_FLAGS.items():
                if kind not in self.namespaces:
                    for name, arg in (("unshare", 0), ("clone", 0), ("setns", 1)):
                        rule(
                            ctx, scmp_act_errno(errno.EPERM), name, (arg, SCMP_CMP_MASKED_EQ, flag)
                        )
            rule(ctx, scmp_act_errno(errno.ENOSYS), "clone3")
            rule(ctx, scmp_act_errno(errno.EPERM), "setns", (1, SCMP_CMP_EQ, 0))
            load(ctx)
        if self.families is not None:
            ctx = seccomp.seccomp_init(SCMP_ACT_ALLOW)
            for family in range(46):  # AF_MAX on Linux 6.x
                if family not in self.families:
                    rule(
                        ctx, scmp_act_errno(errno.EAFNOSUPPORT), "socket", (0, SCMP_CMP_EQ, family)
                    )
            load(ctx)
        # The allow-list goes last, as systemd loads it: it may not allow seccomp() itself.
        if self.allowed is not None:
            # Without SystemCallErrorNumber= systemd kills the process (SCMP_ACT_KILL_PROCESS).
            ctx = seccomp.seccomp_init(
                scmp_act_errno(self.error_number) if self.error_number else 0x80000000
            )
            for name in sorted(self.allowed):
                rule(ctx, SCMP_ACT_ALLOW, name)
            load(ctx)
