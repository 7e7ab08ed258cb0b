/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-model: libc interposition.  Every entry point below either hands the
 * call to the model (model fds, /dev/vfio/..., the sysfs tree of the
 * configured devices) or passes it to the next definition (libc) untouched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"

#define VM_EXPORT __attribute__((visibility("default")))

static int open_common(int dirfd, const char *path, int flags, mode_t mode,
                       bool at)
{
    char buf[PATH_MAX];
    int fd;

    vm_init();
    if (path && path[0] == '/') {
        bool handled = false;

        fd = vm_open_path(path, flags, &handled);
        if (handled) {
            return fd;
        }
        const char *p = vm_reroot(path, buf, sizeof(buf));
        if (p) {
            path = p;
        }
    }
    fd = at ? vm_real.openat(dirfd, path, flags, mode)
            : vm_real.open(path, flags, mode);
    if (fd >= 0) {
        vm_forget_fd(fd);
    }
    return fd;
}

static mode_t get_mode(int flags, va_list ap)
{
    if ((flags & O_CREAT) || (flags & __O_TMPFILE) == __O_TMPFILE) {
        return (mode_t)va_arg(ap, int);
    }
    return 0;
}

VM_EXPORT int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = get_mode(flags, ap);
    va_end(ap);
    return open_common(AT_FDCWD, path, flags, mode, false);
}

VM_EXPORT int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = get_mode(flags, ap);
    va_end(ap);
    return open_common(AT_FDCWD, path, flags, mode, false);
}

VM_EXPORT int __open_2(const char *path, int flags)
{
    return open_common(AT_FDCWD, path, flags, 0, false);
}

VM_EXPORT int __open64_2(const char *path, int flags)
{
    return open_common(AT_FDCWD, path, flags, 0, false);
}

VM_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = get_mode(flags, ap);
    va_end(ap);
    return open_common(dirfd, path, flags, mode, true);
}

VM_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = get_mode(flags, ap);
    va_end(ap);
    return open_common(dirfd, path, flags, mode, true);
}

VM_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
    return open_common(dirfd, path, flags, 0, true);
}

VM_EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
    return open_common(dirfd, path, flags, 0, true);
}

VM_EXPORT int close(int fd)
{
    vm_init();
    if (vm_fd_kind(fd)) {
        return vm_close(fd);
    }
    return vm_real.close(fd);
}

VM_EXPORT int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);

    vm_init();
    if (vm_fd_kind(fd)) {
        return vm_ioctl(fd, req, arg);
    }
    return vm_real.ioctl(fd, req, arg);
}

static ssize_t do_pread(int fd, void *buf, size_t n, off_t off)
{
    vm_init();
    if (vm_fd_kind(fd) == VM_FD_DEVICE) {
        return vm_pread(fd, buf, n, off);
    }
    return vm_real.pread(fd, buf, n, off);
}

static ssize_t do_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    vm_init();
    if (vm_fd_kind(fd) == VM_FD_DEVICE) {
        return vm_pwrite(fd, buf, n, off);
    }
    return vm_real.pwrite(fd, buf, n, off);
}

VM_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    return do_pread(fd, buf, n, off);
}

VM_EXPORT ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
    return do_pread(fd, buf, n, off);
}

VM_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off,
                              size_t buflen)
{
    if (n > buflen) {
        abort(); /* what glibc's __chk_fail does, minus the message */
    }
    return do_pread(fd, buf, n, off);
}

VM_EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off_t off,
                                size_t buflen)
{
    return __pread_chk(fd, buf, n, off, buflen);
}

VM_EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return do_pwrite(fd, buf, n, off);
}

VM_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    return do_pwrite(fd, buf, n, off);
}

/* ---- path based entry points: re-root the model's sysfs/dev paths ---- */

static const char *reroot_path(const char *path, char *buf, size_t len)
{
    vm_init();
    if (path && path[0] == '/') {
        const char *p = vm_reroot(path, buf, len);
        if (p) {
            return p;
        }
    }
    return path;
}

#define REROOT(path)                                            \
    char rr_buf_[PATH_MAX];                                     \
    (path) = reroot_path((path), rr_buf_, sizeof(rr_buf_))

VM_EXPORT ssize_t readlink(const char *path, char *buf, size_t len)
{
    REROOT(path);
    return vm_real.readlink(path, buf, len);
}

VM_EXPORT ssize_t __readlink_chk(const char *path, char *buf, size_t len,
                                 size_t buflen)
{
    if (len > buflen) {
        abort();
    }
    return readlink(path, buf, len);
}

VM_EXPORT ssize_t readlinkat(int dirfd, const char *path, char *buf,
                             size_t len)
{
    REROOT(path);
    return vm_real.readlinkat(dirfd, path, buf, len);
}

VM_EXPORT ssize_t __readlinkat_chk(int dirfd, const char *path, char *buf,
                                   size_t len, size_t buflen)
{
    if (len > buflen) {
        abort();
    }
    return readlinkat(dirfd, path, buf, len);
}

/*
 * realpath of a model path: resolve inside the shadow tree, then present the
 * result with the shadow prefix replaced by "" (so /sys/... again), which is
 * what the kernel's sysfs would have given.
 */
VM_EXPORT char *realpath(const char *path, char *resolved)
{
    const char *orig = path;
    REROOT(path);
    if (path == orig) {
        return vm_real.realpath(path, resolved);
    }
    char *r = vm_real.realpath(path, NULL);
    if (!r) {
        return NULL;
    }
    const char *root = vm_shadow_root();
    size_t rl = strlen(root);
    const char *out = r;
    if (strncmp(r, root, rl) == 0 && (r[rl] == '/' || r[rl] == '\0')) {
        out = r + rl;
        if (!*out) {
            out = "/";
        }
    }
    char *ret;
    if (resolved) {
        snprintf(resolved, PATH_MAX, "%s", out);
        ret = resolved;
    } else {
        ret = strdup(out);
        if (!ret) {
            errno = ENOMEM;
        }
    }
    free(r);
    return ret;
}

VM_EXPORT char *__realpath_chk(const char *path, char *resolved,
                               size_t resolvedlen)
{
    if (resolved && resolvedlen < PATH_MAX) {
        abort();
    }
    return realpath(path, resolved);
}

VM_EXPORT char *canonicalize_file_name(const char *path)
{
    return realpath(path, NULL);
}

VM_EXPORT int stat(const char *path, struct stat *st)
{
    REROOT(path);
    return vm_real.stat(path, st);
}

VM_EXPORT int stat64(const char *path, struct stat64 *st)
{
    REROOT(path);
    return vm_real.stat(path, st);
}

VM_EXPORT int lstat(const char *path, struct stat *st)
{
    REROOT(path);
    return vm_real.lstat(path, st);
}

VM_EXPORT int lstat64(const char *path, struct stat64 *st)
{
    REROOT(path);
    return vm_real.lstat(path, st);
}

VM_EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    REROOT(path);
    return vm_real.fstatat(dirfd, path, st, flags);
}

VM_EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st,
                        int flags)
{
    REROOT(path);
    return vm_real.fstatat(dirfd, path, st, flags);
}

VM_EXPORT int statx(int dirfd, const char *path, int flags, unsigned int mask,
                    struct statx *stx)
{
    REROOT(path);
    return vm_real.statx(dirfd, path, flags, mask, stx);
}

VM_EXPORT int access(const char *path, int mode)
{
    REROOT(path);
    return vm_real.access(path, mode);
}

VM_EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
    REROOT(path);
    return vm_real.faccessat(dirfd, path, mode, flags);
}

VM_EXPORT int euidaccess(const char *path, int mode)
{
    REROOT(path);
    return vm_real.faccessat(AT_FDCWD, path, mode, AT_EACCESS);
}

VM_EXPORT int eaccess(const char *path, int mode)
{
    return euidaccess(path, mode);
}

VM_EXPORT DIR *opendir(const char *path)
{
    REROOT(path);
    return vm_real.opendir(path);
}

VM_EXPORT FILE *fopen(const char *path, const char *mode)
{
    REROOT(path);
    return vm_real.fopen(path, mode);
}

VM_EXPORT FILE *fopen64(const char *path, const char *mode)
{
    REROOT(path);
    return vm_real.fopen(path, mode);
}
