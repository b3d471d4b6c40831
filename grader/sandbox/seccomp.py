"""The sandbox's system-call filter (seccomp-BPF), built with libseccomp through ctypes.

The zygote compiles the filter once (``build()``, libseccomp resolves the syscall numbers of this
architecture and emits the BPF program); each sandbox process P installs the compiled program with
one ``seccomp(SECCOMP_SET_MODE_FILTER, TSYNC)`` call at the end of ``configure()``, after its
limits and the privilege drop and right before student code runs (``install()``). The filter is
inherited by every thread, fork and exec (the Jupyter kernel of a notebook pack included) and
cannot be removed.

Everything is allowed except the kernel surfaces a submission never needs and that reach past its
namespaces or its resource limits; those fail with EPERM, as they would for an unprivileged user:
new namespaces (``unshare``, ``setns``, ``clone`` with a namespace flag), mounts (old and new
mount API, ``pivot_root``, ``chroot``), the kernel keyrings, ``io_uring``, ``bpf``,
``userfaultfd``, ``ptrace`` and cross-process memory access, ``perf_event_open``, kernel modules,
``kexec``, and host administration (reboot, swap, clocks, quotas, accounting, syslog).
``clone3`` fails with ENOSYS (its flags live in memory, where BPF cannot look), so that glibc falls
back to ``clone``, whose flags are checked. System calls of another ABI (i386 ``int 0x80``, x32)
kill the process.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

DENY_EPERM = (
    # namespaces and mounts
    "unshare", "setns", "mount", "umount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    # kernel keyrings (keys outlive the sandbox)
    "keyctl", "add_key", "request_key",
    # large kernel attack surface
    "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "userfaultfd", "perf_event_open",
    # other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise",
    # kernel and host administration
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "create_module",
    "reboot", "swapon", "swapoff", "syslog", "acct", "quotactl", "quotactl_fd", "lookup_dcookie",
    "name_to_handle_at", "open_by_handle_at", "fanotify_init", "iopl", "ioperm", "uselib", "vhangup",
    "settimeofday", "clock_settime", "clock_adjtime", "sethostname", "setdomainname", "nfsservctl",
)
DENY_ENOSYS = ("clone3",)
CLONE_NS_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_FLTATR_ACT_BADARCH = 2
SCMP_CMP_MASKED_EQ = 7
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
KEYCTL_JOIN_SESSION_KEYRING = 1


def SCMP_ACT_ERRNO(e: int) -> int:
    return 0x00050000 | (e & 0xFFFF)


class SeccompError(OSError):
    pass


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _lib():
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise SeccompError(errno.ENOENT, f"libseccomp is not installed ({exc}); install the Debian package "
                                         "libseccomp2") from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp)]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


class Filter:
    """A compiled filter (the BPF program) plus the syscall numbers P needs to install it."""

    def __init__(self, program: bytes, nr_seccomp: int, nr_keyctl: int, denied: list[str]):
        self.program = program
        self.nr_seccomp = nr_seccomp
        self.nr_keyctl = nr_keyctl
        self.denied = denied

    def describe(self) -> dict:
        return {"seccomp": f"{len(self.denied)} system calls refused (namespaces, mount, keyctl, io_uring, bpf, "
                           "userfaultfd, ptrace, perf, modules, ...)", "keyring": "fresh session keyring"}


def build() -> Filter:
    """Compile the filter for this architecture (in the zygote, once)."""
    lib = _lib()
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        raise SeccompError(errno.EINVAL, "seccomp_init failed")
    denied: list[str] = []
    try:
        _rc(lib.seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "seccomp_attr_set")
        for names, action in ((DENY_EPERM, SCMP_ACT_ERRNO(errno.EPERM)), (DENY_ENOSYS, SCMP_ACT_ERRNO(errno.ENOSYS))):
            for name in names:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr < 0:  # not a syscall of this architecture (e.g. iopl on aarch64)
                    continue
                _rc(lib.seccomp_rule_add_array(ctx, action, nr, 0, None), f"rule {name}")
                denied.append(name)
        nr_clone = lib.seccomp_syscall_resolve_name(b"clone")
        for flag in CLONE_NS_FLAGS:  # rules of one syscall are ORed: any namespace flag refuses it
            cmp = _ArgCmp(0, SCMP_CMP_MASKED_EQ, flag, flag)
            _rc(lib.seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(errno.EPERM), nr_clone, 1, ctypes.byref(cmp)),
                "rule clone")
        denied.append("clone(CLONE_NEW*)")
        r, w = os.pipe()
        try:
            _rc(lib.seccomp_export_bpf(ctx, w), "seccomp_export_bpf")
            os.close(w)
            w = -1
            chunks = []
            while True:
                c = os.read(r, 65536)
                if not c:
                    break
                chunks.append(c)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        program = b"".join(chunks)
        nr_seccomp = lib.seccomp_syscall_resolve_name(b"seccomp")
        nr_keyctl = lib.seccomp_syscall_resolve_name(b"keyctl")
    finally:
        lib.seccomp_release(ctx)
    if not program or len(program) % 8 or nr_seccomp < 0 or nr_keyctl < 0:
        raise SeccompError(errno.EINVAL, "libseccomp produced no usable filter")
    return Filter(program, nr_seccomp, nr_keyctl, denied)


def _rc(ret: int, what: str) -> None:
    if ret < 0:
        raise SeccompError(-ret, f"{what}: {os.strerror(-ret)}")


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long


def join_session_keyring(flt: Filter) -> None:
    """A new, empty, anonymous session keyring: nothing of the worker's keyrings is reachable."""
    ret = _libc.syscall(ctypes.c_long(flt.nr_keyctl), ctypes.c_long(KEYCTL_JOIN_SESSION_KEYRING), ctypes.c_void_p(None))
    if ret < 0:
        e = ctypes.get_errno()
        raise SeccompError(e, f"keyctl(JOIN_SESSION_KEYRING): {os.strerror(e)}")


def install(flt: Filter) -> None:
    """Install the compiled filter on every thread of the calling process (needs no_new_privs)."""
    buf = ctypes.create_string_buffer(flt.program, len(flt.program))
    prog = _SockFprog(len(flt.program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    ret = _libc.syscall(ctypes.c_long(flt.nr_seccomp), ctypes.c_long(SECCOMP_SET_MODE_FILTER),
                        ctypes.c_long(SECCOMP_FILTER_FLAG_TSYNC), ctypes.byref(prog))
    if ret != 0:
        e = ctypes.get_errno()
        raise SeccompError(e, f"seccomp(SET_MODE_FILTER): {os.strerror(e) if ret < 0 else f'thread {ret} refused'}")
