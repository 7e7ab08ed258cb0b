/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of libvfio-model, driven through the real libc entry points
 * (open("/dev/vfio/vfio"), ioctl(), pread(), readlink() ...): the test binary
 * is linked against the library, so the interposition itself is exercised.
 * The harness (harness.h) runs each case in its own process.
 */
#include "harness.h"

/*
 * Anonymous memory aligned to 64 KiB, the PAGE_SIZE of the modelled
 * kernel (VFIO_MODEL_PAGE_SIZE), as preregistration needs
 */
static uint8_t *amap(size_t len)
{
    size_t a = 1 << 16;
    uint8_t *p = mmap(NULL, len + a, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        return NULL;
    }
    return (uint8_t *)(((uintptr_t)p + a - 1) & ~(uintptr_t)(a - 1));
}

/* ================================================================== */
static int t_api_and_extensions(void)
{
    int cfd = container_open();
    CHECK(cfd >= 0, "open /dev/vfio/vfio: %s", strerror(errno));
    CHECK(ioctl(cfd, VFIO_GET_API_VERSION) == VFIO_API_VERSION, "api version");
    CHECK(ioctl(cfd, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_IOMMU) == 1, "v1 ext");
    CHECK(ioctl(cfd, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_v2_IOMMU) == 1, "v2 ext");
    CHECK(ioctl(cfd, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) == 0, "type1 offered");
    CHECK(ioctl(cfd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) == 0, "type1v2 offered");
    CHECK(ioctl(cfd, VFIO_CHECK_EXTENSION, VFIO_EEH) == 1, "EEH");
    /* no group yet: SET_IOMMU and driver ioctls are refused */
    EXPECT_ERR(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU), EINVAL);
    EXPECT_ERR(map(cfd, 0, 4096, &cfd, RW), EINVAL);
    int cfd2 = container_open();
    CHECK(cfd2 >= 0, "second container");
    close(cfd2);
    close(cfd);
    CHECK(file_has(logp, "container-open c=1\n") && file_has(logp, "container-open c=2\n")
          && file_has(logp, "container-close c=2\n"), "container ids/log");
    return 0;
}

/* VFIO_MODEL_CALLS=1: every call and its result, as strace would show it */
static int t_calls_log(void)
{
    int cfd = container_open();
    CHECK(cfd >= 0, "open /dev/vfio/vfio: %s", strerror(errno));
    CHECK(ioctl(cfd, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_v2_IOMMU) == 1, "v2 ext");
    EXPECT_ERR(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU), EINVAL);
    EXPECT_ERR(group_open(99), ENOENT);
    close(cfd);
    char *log = slurp(logp);
    CHECK(strstr(log, "call op=CHECK_EXTENSION ret=1\n") &&
          strstr(log, "call op=SET_IOMMU errno=EINVAL\n"
                      "call op=OPEN_GROUP errno=ENOENT\n") &&
          count_lines(logp, "call op=OPEN_CONTAINER ret=") == 1 &&
          count_lines(logp, "call ") == 4, "calls:\n%s", log);
    free(log);
    return 0;
}

static int t_iommu_v1_only(void)
{
    int cfd = container_open(), gfd = group_open(7);
    CHECK(ioctl(cfd, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_v2_IOMMU) == 0, "v2 offered");
    EXPECT_OK(set_container(gfd, cfd));
    EXPECT_ERR(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU), ENODEV);
    EXPECT_ERR(ioctl(cfd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), ENODEV);
    EXPECT_OK(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU));
    EXPECT_ERR(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU), EINVAL);
    CHECK(file_has(logp, "set-iommu c=1 type=spapr-v1"), "log");
    close(gfd);
    close(cfd);
    return 0;
}

static int t_group_rules(void)
{
    int cfd = container_open(), gfd = group_open(7);
    struct vfio_group_status st = { .argsz = sizeof(st) };
    CHECK(gfd >= 0, "open group");
    EXPECT_ERR(group_open(7), EBUSY);             /* vfio_group_fops_open */
    EXPECT_ERR(group_open(99), ENOENT);           /* no such group */
    EXPECT_OK(ioctl(gfd, VFIO_GROUP_GET_STATUS, &st));
    CHECK(st.flags == VFIO_GROUP_FLAGS_VIABLE, "flags 0x%x", st.flags);
    st.argsz = 4;
    EXPECT_ERR(ioctl(gfd, VFIO_GROUP_GET_STATUS, &st), EINVAL);
    EXPECT_ERR(set_container(gfd, 12345), EBADF);
    int devnull = open("/dev/null", O_RDWR);
    EXPECT_ERR(set_container(gfd, devnull), EBADFD);
    close(devnull);
    EXPECT_ERR(ioctl(gfd, VFIO_GROUP_UNSET_CONTAINER), EINVAL);
    EXPECT_ERR(ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, "0000:01:00.0"), EINVAL);
    EXPECT_OK(set_container(gfd, cfd));
    st.argsz = sizeof(st);
    EXPECT_OK(ioctl(gfd, VFIO_GROUP_GET_STATUS, &st));
    CHECK(st.flags == (VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET), "flags");
    EXPECT_ERR(set_container(gfd, cfd), EINVAL);
    /* container without IOMMU: no device fd yet */
    EXPECT_ERR(ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, "0000:01:00.0"), EINVAL);
    EXPECT_OK(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU));
    EXPECT_ERR(ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, "0000:09:00.0"), ENODEV);
    EXPECT_ERR(ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, "0000:02:00.0"), ENODEV); /* group 8's */
    EXPECT_ERR(ioctl(gfd, 0x3b99), ENOTTY);
    EXPECT_OK(ioctl(gfd, VFIO_GROUP_UNSET_CONTAINER));
    CHECK(file_has(logp, "group-detach g=7 c=1\niommu-release c=1 type=spapr-v2\n"),
          "detach of last group releases the IOMMU");
    /* back to an unset container */
    EXPECT_ERR(map(cfd, 0, 4096, &cfd, RW), EINVAL);
    close(gfd);
    close(cfd);
    return 0;
}

static int t_v2_windows(void)
{
    int cfd = container_open(), gfd = group_open(7);
    struct vfio_iommu_spapr_tce_info info = { .argsz = sizeof(info) };
    uint64_t s;
    EXPECT_OK(set_container(gfd, cfd));
    EXPECT_ERR(ioctl(cfd, VFIO_IOMMU_SPAPR_TCE_GET_INFO, &info), EINVAL); /* no iommu */
    EXPECT_OK(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU));
    EXPECT_OK(ioctl(cfd, VFIO_IOMMU_SPAPR_TCE_GET_INFO, &info));
    CHECK(info.dma32_window_start == 0 && info.dma32_window_size == 0x80000000ULL,
          "dma32 0x%llx+0x%llx", (unsigned long long)info.dma32_window_start,
          (unsigned long long)info.dma32_window_size);
    CHECK(info.flags & VFIO_IOMMU_SPAPR_INFO_DDW, "DDW flag");
    CHECK(info.ddw.pgsizes == (0x1000ULL | 0x10000 | 0x1000000 | 0x10000000),
          "pgsizes 0x%llx", (unsigned long long)info.ddw.pgsizes);
    CHECK(info.ddw.max_dynamic_windows_supported == 2 && info.ddw.levels == 5, "ddw");
    info.argsz = 8;
    EXPECT_ERR(ioctl(cfd, VFIO_IOMMU_SPAPR_TCE_GET_INFO, &info), EINVAL);
    EXPECT_ERR(ioctl(cfd, VFIO_IOMMU_ENABLE), ENOTTY);           /* v2 */
    /* without removing the default window first, creating a window makes
     * the default one (4K, dma32 size, 1 level) at 0 and the new one at 2^59 */
    EXPECT_OK(tce_create(cfd, 16, 1ULL << 34, 1, &s));
    CHECK(s == 1ULL << 59, "second window at 0x%llx", (unsigned long long)s);
    CHECK(file_has(logp, "window-create c=1 start=0x0 size=0x80000000 page_shift=12 levels=1 default=1"),
          "default window log");
    EXPECT_ERR(tce_create(cfd, 12, GIB, 1, &s), ENOSPC);          /* only 2 */
    EXPECT_OK(tce_remove(cfd, 0x1000));      /* any address inside the window */
    EXPECT_ERR(tce_remove(cfd, 0), EINVAL);
    /* rules of tce_iommu_create_window / pnv_pci_ioda2_table_alloc_pages */
    EXPECT_ERR(tce_create(cfd, 13, GIB, 1, &s), EINVAL);           /* page size */
    EXPECT_ERR(tce_create(cfd, 21, GIB, 1, &s), EINVAL);           /* 2M not offered */
    EXPECT_ERR(tce_create(cfd, 12, GIB + 4096, 1, &s), EINVAL);    /* not 2^n */
    EXPECT_ERR(tce_create(cfd, 12, GIB, 0, &s), EINVAL);           /* levels */
    EXPECT_ERR(tce_create(cfd, 12, GIB, 6, &s), EINVAL);
    EXPECT_ERR(tce_create(cfd, 12, 1ULL << 55, 1, &s), EINVAL);    /* >= 55 bits */
    EXPECT_ERR(tce_create(cfd, 12, 1ULL << 56, 5, &s), EINVAL);
    /* 64K kernel: a level is at least 64 KiB, so 4 levels break 55 bits */
    EXPECT_ERR(tce_create(cfd, 12, 1ULL << 50, 4, &s), EINVAL);
    EXPECT_OK(tce_create(cfd, 12, 1ULL << 50, 3, &s));
    CHECK(s == 0, "first free table -> bus offset 0");
    EXPECT_OK(tce_remove(cfd, 1ULL << 59));
    EXPECT_OK(tce_create(cfd, 24, 1ULL << 40, 2, &s));
    CHECK(s == 1ULL << 59, "at 2^59");
    struct vfio_iommu_spapr_tce_create bad = { .argsz = sizeof(bad), .flags = 1,
        .page_shift = 12, .window_size = GIB, .levels = 1 };
    EXPECT_ERR(ioctl(cfd, VFIO_IOMMU_SPAPR_TCE_CREATE, &bad), EINVAL);
    CHECK(state_has("window c=1 start=0x0 size=0x4000000000000 page_shift=12 levels=3\n")
          && state_has("window c=1 start=0x800000000000000 size=0x10000000000 page_shift=24 levels=2\n"),
          "state windows");
    close(gfd);
    close(cfd);
    return 0;
}

static int t_v2_map_rules(void)
{
    int cfd, gfd;
    if (setup_v2(&cfd, &gfd, 7)) {
        return 1;
    }
    size_t len = 1 << 20;
    uint8_t *mem = amap(len);
    uint8_t *other = amap(65536);
    EXPECT_ERR(map(cfd, 0, 4096, mem, RW), EPERM);     /* not enabled: no prereg */
    EXPECT_ERR(unmap(cfd, 0, 4096), EPERM);
    EXPECT_OK(reg_mem(cfd, mem, len));
    EXPECT_OK(map(cfd, 0x0, 0x1000, mem, RW));
    EXPECT_OK(map(cfd, 0x1000, 0x1000, mem + 0x1000, VFIO_DMA_MAP_FLAG_READ));
    EXPECT_OK(map(cfd, 0x2000, 0x2000, mem + 0x2000, VFIO_DMA_MAP_FLAG_WRITE));
    CHECK(file_has(logp, "map c=1 iova=0x1000 size=0x1000 vaddr=0x") &&
          file_has(logp, " perm=r\n") && file_has(logp, " perm=w\n"), "map log");
    EXPECT_ERR(map(cfd, 0x8000, 0x1000, other, RW), EINVAL);    /* not preregistered */
    EXPECT_ERR(map(cfd, 0x8000, 0x1000, mem + len - 0x1000 + 0x1000, RW), EINVAL);
    EXPECT_ERR(map(cfd, GIB, 0x1000, mem, RW), ENXIO);          /* outside window */
    EXPECT_ERR(map(cfd, 0x8000, 0x800, mem, RW), EINVAL);       /* size */
    EXPECT_ERR(map(cfd, 0x8000, 0x1000, mem + 8, RW), EINVAL);  /* vaddr */
    EXPECT_ERR(map(cfd, 0x8000, 0x1000, mem, 0), EINVAL);       /* no perm */
    EXPECT_ERR(map(cfd, 0x8000, 0x1000, mem, RW | 4), EINVAL);  /* flags */
    EXPECT_ERR(map(cfd, GIB - 0x1000, 0x2000, mem, RW), EINVAL);  /* past end */
    /* unaligned iova: iommu_tce_put_param_check() is a boolean -> ioctl returns 1 */
    errno = 0;
    CHECK(map(cfd, 0x8010, 0x1000, mem, RW) == 1, "unaligned iova must return 1");
    CHECK(file_has(logp, "error op=MAP_DMA errno=EINVAL ret=1"), "ret=1 logged");
    /* mapping over an existing entry replaces it (no EEXIST/EBUSY on sPAPR) */
    EXPECT_OK(map(cfd, 0x0, 0x1000, mem + 0x10000, VFIO_DMA_MAP_FLAG_READ));
    char want[160];
    snprintf(want, sizeof(want), "mapping c=1 iova=0x0 size=0x1000 vaddr=%p perm=r\n",
             (void *)(mem + 0x10000));
    CHECK(state_has(want), "replaced entry in state: want %s", want);
    /* unmap of nothing succeeds */
    EXPECT_OK(unmap(cfd, 0x100000, 0x10000));
    CHECK(file_has(logp, "unmap c=1 iova=0x100000 size=0x10000 cleared=0x0"), "unmap nothing");
    EXPECT_ERR(unmap(cfd, 0x0, 0x800), EINVAL);
    EXPECT_ERR(unmap(cfd, GIB, 0x1000), ENXIO);
    CHECK(unmap(cfd, 0x10, 0x1000) == 1, "unaligned unmap iova returns 1");
    struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof(u), .flags = 1, .iova = 0, .size = 4096 };
    EXPECT_ERR(ioctl(cfd, VFIO_IOMMU_UNMAP_DMA, &u), EINVAL);
    /* partial unmap of a 2-page entry run */
    EXPECT_OK(unmap(cfd, 0x3000, 0x1000));
    snprintf(want, sizeof(want), "mapping c=1 iova=0x2000 size=0x1000 vaddr=%p perm=w\n",
             (void *)(mem + 0x2000));
    CHECK(state_has(want) && !state_has("iova=0x3000"), "partial unmap");
    /* whole window, as QEMU does on region_del */
    EXPECT_OK(unmap(cfd, 0, GIB));
    CHECK(!state_has("mapping "), "all gone");
    close(gfd);
    close(cfd);
    munmap(mem, len);
    munmap(other, 65536);
    return 0;
}

static int t_prereg_rules(void)
{
    int cfd, gfd, cfd2 = container_open(), gfd2 = group_open(8);
    if (setup_v2(&cfd, &gfd, 7)) {
        return 1;
    }
    size_t len = 1 << 20;
    uint8_t *mem = amap(len);
    EXPECT_ERR(unreg_mem(cfd, mem, len), ENOENT);       /* nothing registered */
    EXPECT_ERR(reg_mem(cfd, mem + 8, len - 4096), EINVAL);
    EXPECT_ERR(reg_mem(cfd, mem, len - 8), EINVAL);
    EXPECT_OK(reg_mem(cfd, mem, len / 2));
    EXPECT_ERR(reg_mem(cfd, mem, len / 2), EBUSY);               /* same container */
    EXPECT_ERR(reg_mem(cfd, mem + 0x10000, len / 2), EINVAL);    /* overlap */
    EXPECT_ERR(reg_mem(cfd, mem, len), EINVAL);                  /* overlap */
    EXPECT_OK(reg_mem(cfd, mem + len / 2, len / 2));             /* adjacent */
    EXPECT_ERR(reg_mem(cfd, mem + 0x1000, 0x10000), EINVAL);     /* 64K pages */
    uint8_t *hole = amap(0x20000);
    munmap(hole, 0x20000);
    EXPECT_ERR(reg_mem(cfd, hole, 0x20000), EFAULT);             /* not mapped */
    /* the registration is mm-wide: another container may share it */
    EXPECT_OK(set_container(gfd2, cfd2));
    EXPECT_OK(ioctl(cfd2, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU));
    EXPECT_ERR(unreg_mem(cfd2, mem, len / 2), EPERM);   /* container->mm unset */
    EXPECT_OK(reg_mem(cfd2, mem, len / 2));
    EXPECT_ERR(unreg_mem(cfd2, mem + len / 2, len / 2), ENOENT); /* not this container's */
    EXPECT_ERR(unreg_mem(cfd, mem, 0x10000), ENOENT);            /* not an exact region */
    EXPECT_ERR(unreg_mem(cfd, mem + 1, 4096), EINVAL);
    /* a map may use memory registered by the other container (mm-wide lookup) */
    EXPECT_OK(map(cfd, 0, 4096, mem, RW));
    EXPECT_OK(unreg_mem(cfd2, mem, len / 2));
    /* unregistering while mapped: the kernel returns 0 and keeps the pages */
    EXPECT_OK(unreg_mem(cfd, mem, len / 2));
    CHECK(file_has(logp, "still-mapped=1"), "still-mapped");
    EXPECT_OK(map(cfd, 0x1000, 4096, mem + 0x1000, RW));        /* still pinned */
    EXPECT_OK(unreg_mem(cfd, mem + len / 2, len / 2));
    /* v1 has no preregistration */
    int cfd3 = container_open(), gfd3 = group_open(9);
    EXPECT_OK(set_container(gfd3, cfd3));
    EXPECT_OK(ioctl(cfd3, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU));
    EXPECT_ERR(reg_mem(cfd3, mem, len), ENOTTY);
    EXPECT_ERR(tce_create(cfd3, 12, GIB, 1, NULL), ENOTTY);
    close(gfd3);
    close(cfd3);
    close(gfd2);
    close(cfd2);
    close(gfd);
    close(cfd);
    munmap(mem, len);
    return 0;
}

static int t_powernv_sharing(void)
{
    int cfd, gfd, gfd2 = group_open(8);
    if (setup_v2(&cfd, &gfd, 7)) {
        return 1;
    }
    size_t len = 1 << 16;
    uint8_t *mem = amap(len);
    EXPECT_OK(reg_mem(cfd, mem, len));
    EXPECT_OK(map(cfd, 0x4000, 0x2000, mem, RW));
    EXPECT_OK(set_container(gfd2, cfd));                 /* groups share container */
    CHECK(state_has("container c=1 iommu=spapr-v2 groups=7,8"), "state groups");
    int dfd = ioctl(gfd2, VFIO_GROUP_GET_DEVICE_FD, "0000:02:00.0");
    CHECK(dfd >= 0, "device fd: %s", strerror(errno));
    EXPECT_ERR(ioctl(gfd2, VFIO_GROUP_UNSET_CONTAINER), EBUSY);  /* device open */
    close(dfd);
    /* 6.11+ (the default 6.12): detaching a group clears the shared table
     * (tce_iommu_release_ownership); kernels.c has every kernel's rule */
    EXPECT_OK(ioctl(gfd2, VFIO_GROUP_UNSET_CONTAINER));
    CHECK(file_has(logp, "table-clear c=1 start=0x0 entries=0x2 reason=group-detach g=8"),
          "table-clear");
    CHECK(!state_has("mapping ") && state_has("window c=1 start=0x0"),
          "window kept, entries cleared");
    close(gfd2);
    close(gfd);
    close(cfd);
    munmap(mem, len);
    return 0;
}

/*
 * pSeries L1 host (6.12): each PE keeps its own hypervisor windows, so a
 * PE cannot join a v2 container that has a table (EPERM) and QEMU opens a
 * second container; a v1 container takes one group (EBUSY)
 */
static int t_pseries_no_sharing(void)
{
    int cfd = container_open(), gfd = group_open(7);
    int gfd2 = group_open(8), gfd3 = group_open(9);
    struct vfio_iommu_spapr_tce_info info = { .argsz = sizeof(info) };
    uint64_t s = 1;
    EXPECT_OK(set_container(gfd, cfd));
    EXPECT_OK(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU));
    EXPECT_OK(tce_remove(cfd, 0));
    EXPECT_ERR(tce_create(cfd, 12, GIB, 2, &s), EINVAL);        /* levels 1 */
    EXPECT_OK(tce_create(cfd, 12, GIB, 1, &s));
    EXPECT_OK(ioctl(cfd, VFIO_IOMMU_SPAPR_TCE_GET_INFO, &info));
    CHECK(info.dma32_window_size == GIB && info.ddw.levels == 1 &&
          info.ddw.pgsizes == 0x1211000, "info");
    EXPECT_ERR(set_container(gfd2, cfd), EPERM);
    CHECK(file_has(logp, "error op=SET_CONTAINER errno=EPERM g=8 c=1"), "error log");
    /* so QEMU opens a second container for group 8 */
    int cfd2 = container_open();
    EXPECT_OK(set_container(gfd2, cfd2));
    EXPECT_OK(ioctl(cfd2, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU));
    EXPECT_OK(tce_remove(cfd2, 0));
    EXPECT_OK(tce_create(cfd2, 12, GIB, 1, &s));
    CHECK(s == 0, "its own window at 0");
    /* v1: one group per container */
    int cfd3 = container_open();
    uint8_t *mem = amap(65536);
    EXPECT_OK(set_container(gfd3, cfd3));
    EXPECT_OK(ioctl(cfd3, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU));
    EXPECT_ERR(map(cfd3, 0, 4096, mem, RW), EPERM);             /* not enabled */
    EXPECT_OK(ioctl(cfd3, VFIO_IOMMU_ENABLE));
    EXPECT_ERR(ioctl(cfd3, VFIO_IOMMU_ENABLE), EBUSY);
    EXPECT_OK(map(cfd3, 0, 4096, mem, RW));
    EXPECT_ERR(map(cfd3, GIB, 4096, mem, RW), ENXIO);           /* beyond dma32 */
    EXPECT_ERR(tce_remove(cfd3, 0), ENOTTY);
    EXPECT_OK(ioctl(cfd3, VFIO_IOMMU_DISABLE));
    EXPECT_ERR(map(cfd3, 0, 4096, mem, RW), EPERM);
    CHECK(count_lines(logp, "container-open") == 3, "three containers");
    close(gfd3);
    close(cfd3);
    close(gfd2);
    close(cfd2);
    close(gfd);
    close(cfd);
    return 0;
}

static int t_powernv_v1_rules(void)
{
    int cfd = container_open(), gfd = group_open(7), gfd2 = group_open(8);
    uint8_t *mem = amap(65536);
    EXPECT_ERR(ioctl(cfd, VFIO_IOMMU_ENABLE), EINVAL);          /* no driver */
    EXPECT_OK(set_container(gfd, cfd));
    EXPECT_OK(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU));
    EXPECT_ERR(set_container(gfd2, cfd), EBUSY);                /* v1: no sharing */
    EXPECT_OK(ioctl(cfd, VFIO_IOMMU_ENABLE));
    /* the default window is created on first use */
    EXPECT_OK(map(cfd, 0x7fff0000, 4096, mem, VFIO_DMA_MAP_FLAG_READ));
    CHECK(file_has(logp, "window-create c=1 start=0x0 size=0x80000000 page_shift=12 levels=1 default=1"),
          "lazy default window");
    void *hole = mmap(NULL, 8192, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(hole, 8192);
    EXPECT_ERR(map(cfd, 0x2000, 4096, hole, RW), EFAULT);       /* pin fails */
    close(gfd2);
    close(gfd);
    close(cfd);
    munmap(mem, 65536);
    return 0;
}

/*
 * VFIO_MODEL_FAIL names kernel functions: the NTH hit of one, or of any
 * (kernels.c tests each point and its unwinding)
 */
static int t_fail_nth(void)
{
    int cfd = container_open(), gfd = group_open(7);
    EXPECT_ERR(set_container(gfd, cfd), EBUSY);   /* claim_dma_owner:1:EBUSY */
    EXPECT_OK(set_container(gfd, cfd));
    EXPECT_OK(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU));
    EXPECT_OK(tce_remove(cfd, 0));
    EXPECT_OK(tce_create(cfd, 12, GIB, 2, NULL));  /* lower levels on demand */
    uint8_t *mem = amap(65536);
    /* any:14, the 14th hit of any point (vfio_fops_open was the first), is
     * this call's tcemem allocation */
    EXPECT_ERR(reg_mem(cfd, mem, 65536), ENOMEM);
    CHECK(file_has(logp, "error op=REGISTER_MEMORY errno=ENOMEM injected=1 "
                   "point=tce_iommu_register_pages c=1 vaddr="), "log3");
    EXPECT_OK(reg_mem(cfd, mem, 65536));
    EXPECT_OK(map(cfd, 0, 4096, mem, RW));          /* pnv_tce:1 */
    EXPECT_OK(map(cfd, 0x1000, 4096, mem, RW));     /* same level: no hit */
    EXPECT_ERR(map(cfd, 0x2000000, 0x2000, mem, RW), ENOMEM);   /* pnv_tce:2 */
    EXPECT_OK(map(cfd, 0x2000000, 0x2000, mem, RW));
    CHECK(file_has(logp, "error op=MAP_DMA errno=ENOMEM injected=1 point=pnv_tce "
                   "c=1 iova=0x2000000 "), "log");
    CHECK(file_has(logp, "error op=SET_CONTAINER errno=EBUSY injected=1 "
                   "point=iommu_group_claim_dma_owner g=7 c=1\n"), "log2");
    /* the failed map left nothing; the retry mapped it once */
    char p0[96], p1[96], p2[96];
    snprintf(p0, sizeof(p0), "mapping c=1 iova=0x0 size=0x1000 vaddr=%p perm=rw\n",
             (void *)mem);
    snprintf(p1, sizeof(p1), "mapping c=1 iova=0x1000 size=0x1000 vaddr=%p perm=rw\n",
             (void *)mem);
    snprintf(p2, sizeof(p2), "mapping c=1 iova=0x2000000 size=0x2000 vaddr=%p "
             "perm=rw\n", (void *)mem);
    CHECK(state_count("mapping ") == 3 && state_has(p0) && state_has(p1) &&
          state_has(p2), "state lacks \"%s\", \"%s\" or \"%s\"", p0, p1, p2);
    close(gfd);
    close(cfd);
    return 0;
}

static int t_bad_config(void)
{
    struct stat st;
    CHECK(file_has(logp, "error op=CONFIG errno=EINVAL msg="), "config error logged");
    EXPECT_ERR(group_open(7), ENOENT);
    EXPECT_ERR(stat("/sys/bus/pci/devices/0000:01:00.0", &st), ENOENT);
    int cfd = container_open();         /* the container node still exists */
    CHECK(cfd >= 0, "container");
    close(cfd);
    return 0;
}

static int t_sysfs(void)
{
    struct stat st;
    char buf[PATH_MAX];
    EXPECT_OK(stat("/sys/bus/pci/devices/0000:01:00.0", &st));
    CHECK(S_ISDIR(st.st_mode), "dir");
    ssize_t n = readlink("/sys/bus/pci/devices/0000:01:00.0/iommu_group", buf, sizeof(buf) - 1);
    CHECK(n > 0, "readlink: %s", strerror(errno));
    buf[n] = 0;
    CHECK(!strcmp(buf, "../../../kernel/iommu_groups/7"), "link %.200s", buf);
    char *rp = realpath("/sys/bus/pci/devices/0000:01:00.0/subsystem", NULL);
    CHECK(rp && !strcmp(rp, "/sys/bus/pci"), "realpath %s", rp ? rp : "NULL");
    free(rp);
    rp = realpath("/sys/bus/pci/devices/0000:01:00.0/iommu_group", buf);
    CHECK(rp && !strcmp(rp, "/sys/kernel/iommu_groups/7"), "realpath2 %.200s", rp ? rp : "NULL");
    EXPECT_OK(access("/sys/bus/pci/devices/0000:01:00.0/vendor", R_OK));
    EXPECT_OK(access("/sys/kernel/iommu_groups/7/devices/0000:01:00.0", F_OK));
    EXPECT_OK(stat("/dev/vfio/vfio", &st));
    EXPECT_OK(stat("/dev/vfio/7", &st));
    int fd = open("/sys/bus/pci/devices/0000:01:00.0/vendor", O_RDONLY);
    CHECK(fd >= 0, "open vendor");
    n = read(fd, buf, 16);
    close(fd);
    CHECK(n == 7 && !strncmp(buf, "0x15b3\n", 7), "vendor attr");
    DIR *d = opendir("/sys/bus/pci/devices/0000:01:00.0");
    CHECK(d, "opendir");
    int found = 0;
    for (struct dirent *e; (e = readdir(d));) {
        found += !strcmp(e->d_name, "iommu_group");
    }
    closedir(d);
    CHECK(found == 1, "iommu_group entry");
    /* what the model does not own passes through untouched */
    CHECK(stat("/sys/bus/pci/devices/0000:ee:1f.7", &st) == -1 && errno == ENOENT,
          "unconfigured device");
    fd = open("/proc/self/status", O_RDONLY);
    CHECK(fd >= 0, "passthrough open");
    n = pread(fd, buf, 5, 0);
    CHECK(n == 5 && !strncmp(buf, "Name:", 5), "passthrough pread");
    close(fd);
    /* an ioctl on an fd the model does not own reaches the kernel */
    int p[2], avail = -1;
    CHECK(pipe(p) == 0 && write(p[1], "abc", 3) == 3, "pipe");
    CHECK(ioctl(p[0], FIONREAD, &avail) == 0 && avail == 3,
          "passthrough ioctl: FIONREAD gave %d", avail);
    close(p[0]);
    close(p[1]);
    return 0;
}

static int t_device(void)
{
    int cfd, gfd;
    if (setup_v2(&cfd, &gfd, 7)) {
        return 1;
    }
    int dfd = ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, "0000:01:00.0");
    CHECK(dfd >= 0, "device fd %s", strerror(errno));
    CHECK(fcntl(dfd, F_GETFD) & FD_CLOEXEC, "cloexec");
    struct vfio_device_info di = { .argsz = sizeof(di) };
    EXPECT_OK(ioctl(dfd, VFIO_DEVICE_GET_INFO, &di));
    CHECK(di.flags == (VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET) &&
          di.num_regions == VFIO_PCI_NUM_REGIONS && di.num_irqs == VFIO_PCI_NUM_IRQS, "info");
    struct vfio_region_info ri = { .argsz = sizeof(ri), .index = VFIO_PCI_CONFIG_REGION_INDEX };
    EXPECT_OK(ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, &ri));
    CHECK(ri.size == 4096 && ri.flags == (VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE),
          "config region");
    uint64_t cfgoff = ri.offset;
    ri = (struct vfio_region_info){ .argsz = sizeof(ri), .index = 0 };
    EXPECT_OK(ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, &ri));
    CHECK(ri.size == 0x100000 && (ri.flags & VFIO_REGION_INFO_FLAG_MMAP), "bar0 0x%llx",
          (unsigned long long)ri.size);
    uint64_t bar0off = ri.offset;
    /* MSI-X BAR: capability chain needs a bigger argsz */
    ri = (struct vfio_region_info){ .argsz = sizeof(ri), .index = 4 };
    EXPECT_OK(ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, &ri));
    CHECK((ri.flags & VFIO_REGION_INFO_FLAG_CAPS) && ri.argsz > sizeof(ri) && !ri.cap_offset,
          "caps argsz");
    /* 16K, under the 64K page, but it starts a page: mmap (vfio_pci_probe_mmaps) */
    CHECK(ri.size == 0x4000 && (ri.flags & VFIO_REGION_INFO_FLAG_MMAP), "small bar4 mmap");
    struct { struct vfio_region_info i; struct vfio_info_cap_header h; } big =
        { .i = { .argsz = sizeof(big), .index = 4 } };
    EXPECT_OK(ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, &big));
    CHECK(big.i.cap_offset == sizeof(big.i) && big.h.id == VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
          "msix mappable cap");
    ri = (struct vfio_region_info){ .argsz = sizeof(ri), .index = 1 };
    EXPECT_OK(ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, &ri));
    CHECK(ri.size == 0 && ri.flags == 0, "bar1 is bar0's upper half");
    ri = (struct vfio_region_info){ .argsz = sizeof(ri), .index = VFIO_PCI_ROM_REGION_INDEX };
    EXPECT_OK(ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, &ri));
    CHECK(ri.size == 0x8000 && ri.flags == VFIO_REGION_INFO_FLAG_READ, "rom");
    uint8_t rom[2];
    CHECK(pread(dfd, rom, 2, ri.offset) == 2 && rom[0] == 0x55 && rom[1] == 0xaa, "rom sig");
    EXPECT_ERR(pwrite(dfd, rom, 2, ri.offset), EINVAL);
    ri = (struct vfio_region_info){ .argsz = sizeof(ri), .index = VFIO_PCI_VGA_REGION_INDEX };
    EXPECT_ERR(ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, &ri), EINVAL);
    ri.index = 9;
    EXPECT_ERR(ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, &ri), EINVAL);
    /* config space */
    uint32_t v = 0;
    CHECK(pread(dfd, &v, 4, cfgoff) == 4 && v == 0x101315b3, "ids 0x%08x", v);
    CHECK(pread(dfd, &v, 4, cfgoff + 8) == 4 && (v >> 8) == 0x020000, "class");
    v = 0xffffffff;
    CHECK(pwrite(dfd, &v, 4, cfgoff + 0x10) == 4, "bar write");
    CHECK(pwrite(dfd, &v, 4, cfgoff + 0x14) == 4, "bar write hi");
    CHECK(pread(dfd, &v, 4, cfgoff + 0x10) == 4 && v == 0xfff00004, "bar0 sizing 0x%08x", v);
    CHECK(pread(dfd, &v, 4, cfgoff + 0x14) == 4 && v == 0xffffffff, "bar0 hi 0x%08x", v);
    v = 0x12345678;
    CHECK(pwrite(dfd, &v, 4, cfgoff) == 4, "ro write");
    CHECK(pread(dfd, &v, 4, cfgoff) == 4 && v == 0x101315b3, "ids are read-only");
    EXPECT_ERR(pread(dfd, &v, 4, cfgoff + 4094), EFAULT);
    /* BAR mmap and pread see the same memory */
    uint32_t *bar = mmap(NULL, 0x100000, PROT_READ | PROT_WRITE, MAP_SHARED, dfd, bar0off);
    CHECK(bar != MAP_FAILED, "mmap bar0: %s", strerror(errno));
    bar[4] = 0xdeadbeef;
    CHECK(pread(dfd, &v, 4, bar0off + 16) == 4 && v == 0xdeadbeef, "bar rw");
    munmap(bar, 0x100000);
    EXPECT_ERR(pread(dfd, &v, 4, bar0off + 0x100000), EINVAL);
    /* interrupts */
    struct vfio_irq_info ii = { .argsz = sizeof(ii), .index = VFIO_PCI_MSIX_IRQ_INDEX };
    EXPECT_OK(ioctl(dfd, VFIO_DEVICE_GET_IRQ_INFO, &ii));
    CHECK(ii.count == 16 && (ii.flags & VFIO_IRQ_INFO_EVENTFD), "msix count %u", ii.count);
    ii = (struct vfio_irq_info){ .argsz = sizeof(ii), .index = VFIO_PCI_INTX_IRQ_INDEX };
    EXPECT_OK(ioctl(dfd, VFIO_DEVICE_GET_IRQ_INFO, &ii));
    CHECK(ii.count == 1 && (ii.flags & VFIO_IRQ_INFO_MASKABLE), "intx");
    ii.index = 7;
    EXPECT_ERR(ioctl(dfd, VFIO_DEVICE_GET_IRQ_INFO, &ii), EINVAL);
    struct { struct vfio_irq_set s; int32_t fd; } is = { .s = { .argsz = sizeof(is),
        .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
        .index = VFIO_PCI_INTX_IRQ_INDEX, .start = 0, .count = 1 } };
    is.fd = open("/dev/null", O_RDONLY);
    EXPECT_ERR(ioctl(dfd, VFIO_DEVICE_SET_IRQS, &is), EINVAL);   /* not an eventfd */
    close(is.fd);
    is.fd = eventfd(0, EFD_CLOEXEC);
    EXPECT_OK(ioctl(dfd, VFIO_DEVICE_SET_IRQS, &is));
    is.s.index = VFIO_PCI_MSIX_IRQ_INDEX;
    EXPECT_ERR(ioctl(dfd, VFIO_DEVICE_SET_IRQS, &is), EINVAL);   /* INTx active */
    struct vfio_irq_set off = { .argsz = sizeof(off), .flags = VFIO_IRQ_SET_DATA_NONE |
        VFIO_IRQ_SET_ACTION_TRIGGER, .index = VFIO_PCI_INTX_IRQ_INDEX };
    EXPECT_OK(ioctl(dfd, VFIO_DEVICE_SET_IRQS, &off));
    EXPECT_OK(ioctl(dfd, VFIO_DEVICE_SET_IRQS, &is));              /* now MSI-X */
    close(is.fd);
    EXPECT_OK(ioctl(dfd, VFIO_DEVICE_RESET));
    CHECK(file_has(logp, "device-reset dev=0000:01:00.0\n"), "reset log");
    struct vfio_device_feature feat = { .argsz = sizeof(feat),
        .flags = VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_MIGRATION };
    EXPECT_ERR(ioctl(dfd, VFIO_DEVICE_FEATURE, &feat), ENOTTY);
    EXPECT_ERR(ioctl(dfd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, &feat), ENODEV);
    EXPECT_ERR(ioctl(dfd, _IO(VFIO_TYPE, VFIO_BASE + 60)), ENOTTY);
    EXPECT_ERR(ioctl(gfd, VFIO_GROUP_UNSET_CONTAINER), EBUSY);
    close(gfd);                         /* device fd keeps the group alive */
    EXPECT_ERR(group_open(7), EBUSY);
    CHECK(state_has("group g=7 c=1 fd=closed"), "group kept");
    close(dfd);                         /* last reference: group released */
    CHECK(file_has(logp, "device-close dev=0000:01:00.0\ngroup-detach g=7 c=1\n"), "order");
    close(cfd);
    CHECK(!state_has("container "), "all gone: %s", state_read());
    return 0;
}

static int t_eeh(void)
{
    int cfd, gfd;
    if (setup_v2(&cfd, &gfd, 7)) {
        return 1;
    }
    struct vfio_eeh_pe_op op = { .argsz = sizeof(op), .op = VFIO_EEH_PE_ENABLE };
    CHECK(ioctl(cfd, VFIO_EEH_PE_OP, &op) == 0, "enable");
    op.op = VFIO_EEH_PE_GET_STATE;
    CHECK(ioctl(cfd, VFIO_EEH_PE_OP, &op) == VFIO_EEH_PE_STATE_NORMAL, "state");
    op.op = 77;
    EXPECT_ERR(ioctl(cfd, VFIO_EEH_PE_OP, &op), EINVAL);
    CHECK(file_has(logp, "eeh c=1 op=ENABLE ret=0"), "log");
    close(gfd);
    close(cfd);
    return 0;
}

static int t_eeh_off(void)
{
    int cfd, gfd;
    CHECK(ioctl(container_open(), VFIO_CHECK_EXTENSION, VFIO_EEH) == 0, "EEH offered");
    if (setup_v2(&cfd, &gfd, 7)) {
        return 1;
    }
    struct vfio_eeh_pe_op op = { .argsz = sizeof(op), .op = VFIO_EEH_PE_ENABLE };
    EXPECT_ERR(ioctl(cfd, VFIO_EEH_PE_OP, &op), ENODEV);
    return 0;  /* fds intentionally left open: released at exit */
}

static int t_exit_release(void)
{
    int cfd, gfd;
    if (setup_v2(&cfd, &gfd, 7)) {
        return 1;
    }
    int dfd = ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, "0000:01:00.0");
    CHECK(dfd >= 0, "dev");
    close(cfd);             /* the group keeps the container alive */
    CHECK(state_has("container c=1 iommu=spapr-v2 groups=7 fd=closed"), "kept");
    exit(0);                /* checked by the runner: exit closes are logged */
}

struct thr {
    int cfd;
    uint8_t *mem;
    int idx;
    int errors;
};

static void *thr_fn(void *p)
{
    struct thr *t = p;
    for (int i = 0; i < 500; i++) {
        uint64_t iova = ((uint64_t)t->idx << 20) + ((uint64_t)(i % 64) << 12);
        if (map(t->cfd, iova, 4096, t->mem + ((i % 64) << 12), RW) ||
            (i % 3 == 0 && unmap(t->cfd, iova, 4096))) {
            t->errors++;
        }
    }
    return NULL;
}

static int t_threads(void)
{
    int cfd, gfd;
    if (setup_v2(&cfd, &gfd, 7)) {
        return 1;
    }
    size_t len = 64 << 12;
    uint8_t *mem = amap(len);
    EXPECT_OK(reg_mem(cfd, mem, len));
    pthread_t th[4];
    struct thr t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (struct thr){ cfd, mem, i, 0 };
        pthread_create(&th[i], NULL, thr_fn, &t[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(!t[i].errors, "thread %d: %d errors", i, t[i].errors);
    }
    CHECK(count_lines(logp, "map c=1") == 2000, "2000 maps logged, got %d",
          count_lines(logp, "map c=1"));
    close(gfd);
    close(cfd);
    munmap(mem, len);
    return 0;
}

/* ================================================================== */
#define DEVS "0000:01:00.0@7+vendor=0x15b3+device=0x1013+bar0=0x100000:m64+rom=0x8000+msix=16," \
             "0000:02:00.0@8,0000:03:00.0@9"
static const struct tcase cases[] = {
    { "api_version_and_extensions", t_api_and_extensions, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "calls_log", t_calls_log, { "VFIO_MODEL_DEVICES=" DEVS, "VFIO_MODEL_CALLS=1" }, NULL },
    { "iommu_v1_only_host", t_iommu_v1_only, { "VFIO_MODEL_DEVICES=" DEVS, "VFIO_MODEL_IOMMU=v1" }, NULL },
    { "group_container_rules", t_group_rules, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "v2_window_placement_and_limits", t_v2_windows, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "v2_map_unmap_rules", t_v2_map_rules, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "v2_preregistration_rules", t_prereg_rules, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "powernv_groups_share_container", t_powernv_sharing, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "pseries_no_sharing_set_container_eperm", t_pseries_no_sharing,
      { "VFIO_MODEL_DEVICES=" DEVS, "VFIO_MODEL_FLAVOUR=pseries" }, NULL },
    { "powernv_v1_enable_and_default_window", t_powernv_v1_rules, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "fail_nth_injection", t_fail_nth,
      { "VFIO_MODEL_DEVICES=" DEVS,
        "VFIO_MODEL_FAIL=iommu_group_claim_dma_owner:1:EBUSY,pnv_tce:2,any:14" }, NULL },
    { "sysfs_interposition", t_sysfs, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "device_regions_config_irqs", t_device, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "eeh_pe_op", t_eeh, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "eeh_disabled", t_eeh_off, { "VFIO_MODEL_DEVICES=" DEVS, "VFIO_MODEL_EEH=0" },
      "group-close g=7 exit=1\n" },
    { "exit_releases_fds_in_kernel_order", t_exit_release, { "VFIO_MODEL_DEVICES=" DEVS },
      "device-close dev=0000:01:00.0 exit=1\ngroup-detach g=7 c=1\niommu-release c=1 type=spapr-v2\n" },
    { "threads_map_unmap", t_threads, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "malformed_devices_no_group", t_bad_config, { "VFIO_MODEL_DEVICES=0000:01:00.0" }, NULL },
    { "malformed_devices_bad_bdf", t_bad_config, { "VFIO_MODEL_DEVICES=01:00.0@7" }, NULL },
    { "malformed_devices_bad_group", t_bad_config, { "VFIO_MODEL_DEVICES=0000:01:00.0@x7" }, NULL },
    { "malformed_devices_bad_option", t_bad_config,
      { "VFIO_MODEL_DEVICES=0000:01:00.0@7+colour=red" }, NULL },
    { "malformed_devices_bad_bar", t_bad_config,
      { "VFIO_MODEL_DEVICES=0000:01:00.0@7+bar0=0x3000" }, NULL },
    { "malformed_devices_duplicate", t_bad_config,
      { "VFIO_MODEL_DEVICES=0000:01:00.0@7,0000:01:00.0@8" }, NULL },
    { "malformed_devices_msix_no_room", t_bad_config,
      { "VFIO_MODEL_DEVICES=0000:01:00.0@7+bar4=0" }, NULL },
    { "malformed_flavour", t_bad_config,
      { "VFIO_MODEL_DEVICES=0000:01:00.0@7", "VFIO_MODEL_FLAVOUR=power9" }, NULL },
    { "malformed_fail_rule", t_bad_config,
      { "VFIO_MODEL_DEVICES=0000:01:00.0@7", "VFIO_MODEL_FAIL=MAP_DMA:zero" }, NULL },
    { "malformed_fail_errno", t_bad_config,
      { "VFIO_MODEL_DEVICES=0000:01:00.0@7", "VFIO_MODEL_FAIL=pnv_tce:1:EWHAT" }, NULL },
};

int main(int argc, char **argv)
{
    return run_cases(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
