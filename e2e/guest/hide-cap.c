/*
 * LD_PRELOAD shim for L2's QEMU.
 * - KVM_CHECK_EXTENSION(KVM_CAP_SPAPR_TCE_VFIO) answers 0 (unless
 *   E2E_HIDE_CAP=0), standing for a host without the capability (older
 *   kernels, PR-KVM).
 * - With E2E_LOG_VFIO=1 it logs the result and errno of every
 *   VFIO_GROUP_SET_CONTAINER to stderr (case 7: does a second group join
 *   the first container?).
 * Every ioctl goes to the kernel otherwise unchanged.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kvm.h>      /* _IO() differs on powerpc: _IOC_NONE is 1 */
#include <linux/vfio.h>

int ioctl(int fd, unsigned long req, ...)
{
    static int told;
    const char *hide = getenv("E2E_HIDE_CAP"), *logv = getenv("E2E_LOG_VFIO");
    va_list ap;
    void *arg;
    long ret;

    va_start(ap, req);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (req == (unsigned long)KVM_CHECK_EXTENSION &&
        (long)arg == KVM_CAP_SPAPR_TCE_VFIO && !(hide && !strcmp(hide, "0"))) {
        if (!told++) {
            fprintf(stderr, "e2e-hide-cap: KVM_CAP_SPAPR_TCE_VFIO hidden\n");
        }
        return 0;
    }
    ret = syscall(SYS_ioctl, fd, req, arg);
    if (req == (unsigned long)VFIO_GROUP_SET_CONTAINER && logv && !strcmp(logv, "1")) {
        int e = errno;
        fprintf(stderr, "e2e-vfio: VFIO_GROUP_SET_CONTAINER group fd %d container fd %d: %s\n",
                fd, arg ? *(int *)arg : -1, ret ? strerror(e) : "ok");
        errno = e;
    }
    return ret;
}
