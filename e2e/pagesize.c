/*
 * LD_PRELOAD shim for case diff's x86 run (e2e/run.py): getpagesize()
 * answers E2E_PAGE_SIZE (65536 unless set), the page size of the L1 the
 * model stands for. QEMU takes its host page size from getpagesize()
 * (qemu_real_host_page_size()) and derives VFIO calls from it: the number
 * of levels of a TCE table it asks for (hw/vfio/spapr.c guesses one level
 * for a 1 GiB window of 4K IOMMU pages on 64K pages, two on 4K pages,
 * which a pSeries L1 refuses), and which BARs it mmaps. Loaded before the
 * model, which reads the page size the same way (BAR mmap support).
 */
#include <stdlib.h>

int getpagesize(void)
{
    const char *s = getenv("E2E_PAGE_SIZE");

    return s && atoi(s) > 0 ? atoi(s) : 65536;
}
