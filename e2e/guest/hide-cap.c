/*
 * LD_PRELOAD shim for L2's QEMU: KVM_CHECK_EXTENSION(KVM_CAP_SPAPR_TCE_VFIO)
 * answers 0, standing for a host without the capability (older kernels,
 * PR-KVM). Every other ioctl goes straight to the kernel.
 */
#include <stdarg.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kvm.h>      /* _IO() differs on powerpc: _IOC_NONE is 1 */

int ioctl(int fd, unsigned long req, ...)
{
    static int told;
    va_list ap;
    void *arg;

    va_start(ap, req);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (req == (unsigned long)KVM_CHECK_EXTENSION && (long)arg == KVM_CAP_SPAPR_TCE_VFIO) {
        if (!told++) {
            fprintf(stderr, "e2e-hide-cap: KVM_CAP_SPAPR_TCE_VFIO hidden\n");
        }
        return 0;
    }
    return syscall(SYS_ioctl, fd, req, arg);
}
