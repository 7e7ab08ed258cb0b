/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-model: userspace model of the Linux legacy VFIO container +
 * sPAPR TCE IOMMU uAPI (see README.md).  Internal header.
 */
#ifndef VFIO_MODEL_H
#define VFIO_MODEL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* fd kinds handed out by the model */
enum vm_fdkind { VM_FD_NONE = 0, VM_FD_CONTAINER, VM_FD_GROUP, VM_FD_DEVICE };

/* ---- real libc entry points (resolved with dlsym(RTLD_NEXT)) ---- */
struct vm_real {
    int (*open)(const char *, int, ...);
    int (*openat)(int, const char *, int, ...);
    int (*close)(int);
    int (*ioctl)(int, unsigned long, ...);
    ssize_t (*pread)(int, void *, size_t, off_t);
    ssize_t (*pwrite)(int, const void *, size_t, off_t);
    ssize_t (*readlink)(const char *, char *, size_t);
    ssize_t (*readlinkat)(int, const char *, char *, size_t);
    char *(*realpath)(const char *, char *);
    int (*stat)(const char *, void *);
    int (*lstat)(const char *, void *);
    int (*fstatat)(int, const char *, void *, int);
    int (*statx)(int, const char *, int, unsigned int, void *);
    int (*access)(const char *, int);
    int (*faccessat)(int, const char *, int, int);
    void *(*opendir)(const char *);
    void *(*fopen)(const char *, const char *);
};
extern struct vm_real vm_real;

/* model entry points used by the interposer (interpose.c) */
void vm_init(void);
int vm_fd_kind(int fd);                        /* lock-free fast check */
int vm_open_path(const char *path, int flags, bool *handled);
int vm_close(int fd);                          /* fd must be a model fd */
int vm_ioctl(int fd, unsigned long req, void *arg);
ssize_t vm_pread(int fd, void *buf, size_t n, off_t off);
ssize_t vm_pwrite(int fd, const void *buf, size_t n, off_t off);
void vm_forget_fd(int fd);                     /* a real fd reused a number */
/* sysfs re-rooting: returns buf if path is owned by the model, else NULL */
const char *vm_reroot(const char *path, char *buf, size_t len);
const char *vm_shadow_root(void);

#endif
