"""Linux isolation primitives through libc (ctypes): namespaces, mounts, pivot_root, prctl, lo up.

Used only inside the sandbox parent's forked children. Needs root (CAP_SYS_ADMIN, CAP_SETUID,
CAP_SETGID) in the worker; nothing here is called in the trusted process.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import platform
import socket
import struct

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38

_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(platform.machine())

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


class IsolationError(OSError):
    pass


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise IsolationError(e, f"{what}: {os.strerror(e)}")


def _b(s):
    return None if s is None else os.fsencode(s)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source, target, fstype=None, flags: int = 0, data=None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {target}")


def umount2(target, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    if _SYS_PIVOT_ROOT is None:
        raise IsolationError(errno.ENOSYS, "pivot_root: unsupported architecture")
    _check(_libc.syscall(_SYS_PIVOT_ROOT, _b(new_root), _b(put_old)), "pivot_root")


def prctl(option: int, arg2: int = 0) -> None:
    _check(_libc.prctl(option, arg2, 0, 0, 0), "prctl")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def loopback_up() -> None:
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))


def bind_ro(src: str, dst: str, *, dev: bool = False) -> None:
    mount(src, dst, None, MS_BIND | MS_REC)
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | (0 if dev else MS_NODEV)
    mount(None, dst, None, flags)


def build_root(root: str, ro_paths: list[str], *, gpu: bool, shm_mb: int = 64, tmp_mb: int = 64) -> None:
    """In a fresh mount namespace (as root): populate ``root`` and pivot into it.

    A writable tmpfs at /tmp (the scratch, mounted first so that a read-only path that itself lies
    under /tmp, e.g. a virtual environment in a checkout under /tmp, is bound inside it rather than
    hidden by it); read-only binds of ``ro_paths`` (and /usr, /etc); symlinks for /bin, /lib*, /sbin
    where they are links; a minimal /dev; tmpfs at /dev/shm; /proc is left as a mount point for the
    caller. The new root itself ends read-only.
    """
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    os.makedirs(root, mode=0o700, exist_ok=True)  # survives a /tmp cleaner removing the empty mount point
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=8m,nr_inodes=1024,mode=0755")
    os.makedirs(root + "/tmp")
    mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_mb}m,nr_inodes={tmp_inodes(tmp_mb)},mode=1777")
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            os.symlink(os.readlink(top), root + top)
    paths = ["/usr", "/etc"] + [p for p in ro_paths if p]
    if gpu:
        paths.append("/sys")
    seen: list[str] = []
    for p in sorted(set(os.path.realpath(x) for x in paths)):
        if not os.path.isdir(p) or any(p == s or p.startswith(s + "/") for s in seen):
            continue
        seen.append(p)
        os.makedirs(root + p, exist_ok=True)
        bind_ro(p, root + p)
    # /dev: a few harmless nodes
    os.makedirs(root + "/dev", exist_ok=True)
    devs = ["null", "zero", "full", "random", "urandom"]
    if gpu:
        devs += [d for d in os.listdir("/dev") if d.startswith("nvidia")]
    for d in devs:
        src = "/dev/" + d
        if not os.path.exists(src) or os.path.isdir(src):
            continue
        open(root + "/dev/" + d, "w").close()
        mount(src, root + "/dev/" + d, None, MS_BIND)
        mount(None, root + "/dev/" + d, None, MS_REMOUNT | MS_BIND | MS_NOSUID | (MS_RDONLY if d in ("random", "urandom") else 0))
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, root + "/dev/" + name)
    os.makedirs(root + "/dev/shm")
    mount("tmpfs", root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={shm_mb}m,nr_inodes=1024,mode=1777")
    os.makedirs(root + "/proc")
    os.makedirs(root + "/.old")
    pivot_root(root, root + "/.old")
    os.chdir("/")
    umount2("/.old", MNT_DETACH)
    os.rmdir("/.old")


def tmp_inodes(size_mb: int) -> int:
    """Inodes of the scratch tmpfs: enough for a checkout-like tree, never unbounded kernel memory
    (each inode and dentry is kernel memory, charged to the sandbox's cgroup as well)."""
    return max(1024, min(65536, int(size_mb) * 64))


# SysV IPC of the sandbox's own IPC namespace (the host's settings do not apply there): a few
# small segments and queues; shm pages are also charged to the sandbox's memory cgroup.
IPC_LIMITS = {"kernel/shmmax": 16 << 20, "kernel/shmall": (64 << 20) // 4096, "kernel/shmmni": 32,
              "kernel/msgmnb": 65536, "kernel/msgmax": 8192, "kernel/msgmni": 32, "kernel/sem": "32 1024 32 32"}


def limit_ipc() -> None:
    """Write the IPC namespace's limits under /proc/sys (as root, right after /proc is mounted)."""
    for key, value in IPC_LIMITS.items():
        with open("/proc/sys/" + key, "w") as fh:
            fh.write(str(value))


def remount_root_ro() -> None:
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
