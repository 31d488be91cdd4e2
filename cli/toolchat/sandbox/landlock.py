"""Landlock, the few system calls of it (Linux >= 5.13), written with ctypes.

The kernel ABI is three system calls and three small structs, stable across versions; each ABI
version adds access rights, which are handled only where the kernel knows them. Reads are never
handled, so reading stays allowed everywhere; every kind of write is handled, and allowed only
beneath the folders given. From ABI 4 on, TCP bind and connect are handled too.

`restrict` confines the calling process and everything it starts afterwards, for good."""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterable

# The system call numbers are the same on every architecture (they came after the tables merged).
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_VERSION = 1  # LANDLOCK_CREATE_RULESET_VERSION
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR, MAKE_REG = 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8
MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE = 1 << 13, 1 << 14  # ABI 2, ABI 3
BIND_TCP, CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4

_WRITES_V1 = REMOVE_DIR | REMOVE_FILE | MAKE_CHAR | MAKE_DIR | MAKE_REG | MAKE_SOCK | MAKE_FIFO | MAKE_BLOCK | MAKE_SYM
_ON_FILES = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE  # the rights a rule on a file (not a folder) may give


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class Unavailable(OSError):
    """This system cannot enforce Landlock (no such system call, or it is disabled)."""


_libc: ctypes.CDLL | None = None


def _syscall(*args: object) -> int:
    """libc's syscall(2); -1 with errno set on failure. Tests replace this to play a kernel
    without Landlock."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return int(_libc.syscall(*args))


def _call(*args: object) -> int:
    result = _syscall(*args)
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def abi() -> int:
    """The Landlock ABI version this kernel offers; Unavailable saying why when none."""
    if not os.uname().sysname == "Linux":
        raise Unavailable(errno.ENOSYS, "Landlock is a Linux feature; this system has none")
    try:
        return _call(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_VERSION))
    except OSError as exc:
        if exc.errno == errno.ENOSYS:
            raise Unavailable(exc.errno, "this kernel has no Landlock (Linux 5.13 or later has it)") from None
        if exc.errno == errno.EOPNOTSUPP:
            raise Unavailable(exc.errno, "Landlock is disabled in this kernel (see the lsm= boot option)") from None
        raise Unavailable(exc.errno or errno.EINVAL, f"Landlock cannot be used here ({exc.strerror})") from None


def handled_writes(version: int) -> int:
    """Every write right the kernel of ABI `version` knows."""
    rights = WRITE_FILE | _WRITES_V1
    if version >= 2:
        rights |= REFER
    if version >= 3:
        rights |= TRUNCATE
    return rights


def restrict(writable: Iterable[str], *, tcp: bool, version: int | None = None) -> int:
    """Confine this process for good: writes only beneath `writable` (folders or single files;
    those missing are skipped), TCP bind and connect refused unless `tcp` (kernels of ABI < 4 cannot
    refuse them). The ABI version used."""
    version = abi() if version is None else version
    fs = handled_writes(version)
    net = (BIND_TCP | CONNECT_TCP) if version >= 4 and not tcp else 0
    attr = _RulesetAttr(fs, net)
    size = ctypes.sizeof(attr) if version >= 4 else ctypes.sizeof(ctypes.c_uint64)
    ruleset = _call(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    try:
        for path in writable:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a folder that is not there cannot be written to anyway
            try:
                rights = fs if os.path.isdir(path) else fs & _ON_FILES
                rule = _PathBeneath(rights, fd)
                _call(_ADD_RULE, ruleset, ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0))
            finally:
                os.close(fd)
        _no_new_privs()
        _call(_RESTRICT_SELF, ruleset, ctypes.c_uint32(0))
    finally:
        os.close(ruleset)
    return version


def _no_new_privs() -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)):
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
