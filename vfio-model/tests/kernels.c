/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The model against named kernels: each rule that differs between the
 * kernels (VFIO_MODEL_KERNEL), host flavours (VFIO_MODEL_FLAVOUR) and page
 * sizes (VFIO_MODEL_PAGE_SIZE) the model plays, with the kernel it holds
 * since and until, and the fail points (VFIO_MODEL_FAIL) with the errnos
 * and unwinding of the kernel functions they are named after.  The rules
 * and their sources: vfio-model/README.md.  Same harness as unit.c.
 */
#include "harness.h"

#define DEVS "0000:01:00.0@7,0000:02:00.0@8,0000:03:00.0@9"
#define K68 "VFIO_MODEL_KERNEL=6.8"
#define K612 "VFIO_MODEL_KERNEL=6.12"
#define K72 "VFIO_MODEL_KERNEL=7.2"
#define PSERIES "VFIO_MODEL_FLAVOUR=pseries"
#define MIB (1ULL << 20)
#define RO VFIO_DMA_MAP_FLAG_READ

/* Anonymous memory aligned to 64 KiB, a page of the modelled kernel */
static uint8_t *amap(size_t len, int prot)
{
    size_t a = 1 << 16;
    uint8_t *p = mmap(NULL, len + a, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        return NULL;
    }
    return (uint8_t *)(((uintptr_t)p + a - 1) & ~(uintptr_t)(a - 1));
}

static int count_in(const char *s, const char *prefix)
{
    int n = 0;

    for (const char *l = s; l && *l;) {
        n += !strncmp(l, prefix, strlen(prefix));
        l = strchr(l, '\n');
        l = l ? l + 1 : NULL;
    }
    return n;
}

/* The lines of @s that start with @prefix, in order */
static char *lines_with(const char *s, const char *prefix)
{
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);

    for (const char *l = s; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l + 1) : strlen(l);

        if (!strncmp(l, prefix, strlen(prefix))) {
            fwrite(l, 1, n, m);
        }
        l = e ? e + 1 : NULL;
    }
    fclose(m);
    return out;
}

static const char *kernel(void)
{
    const char *k = getenv("VFIO_MODEL_KERNEL");

    return k ? k : "6.12";
}

/* Is the modelled kernel 6.11 or later (TCEs cleared on detach)? */
static bool since_6_11(void)
{
    return strcmp(kernel(), "6.8") && strcmp(kernel(), "6.4");
}

/* A v2 container with group @g, the default window gone, and @mem */
static int v2_open(int g, int *pcfd, int *pgfd)
{
    int cfd = container_open(), gfd = group_open(g);

    CHECK(cfd >= 0 && gfd >= 0, "open: %s", strerror(errno));
    EXPECT_OK(set_container(gfd, cfd));
    EXPECT_OK(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU));
    EXPECT_OK(tce_remove(cfd, 0));
    *pcfd = cfd;
    *pgfd = gfd;
    return 0;
}

/* ============ rule 1: a sibling group leaves a shared container ======= */

/*
 * Two groups share a v2 container with two windows, both mapped; group 8
 * leaves (@how: UNSET_CONTAINER, or close of its group fd).  6.8 (before
 * 4ba2fdff2eb1): group 7 keeps every mapping; 6.11+: every TCE of every
 * window is cleared; the windows stay.  The last group's release clears
 * (6.8) and frees everything.
 */
static int sibling_leaves(bool unset)
{
    int cfd, gfd, gfd2 = group_open(8);
    uint64_t s0 = 1, s1 = 0;
    uint8_t *mem = amap(4 * MIB, PROT_READ | PROT_WRITE);

    if (v2_open(7, &cfd, &gfd)) {
        return 1;
    }
    EXPECT_OK(set_container(gfd2, cfd));
    EXPECT_OK(tce_create(cfd, 12, GIB, 2, &s0));
    EXPECT_OK(tce_create(cfd, 16, 1ULL << 32, 2, &s1));
    CHECK(s0 == 0 && s1 == 1ULL << 59, "windows at 0x%llx 0x%llx",
          (unsigned long long)s0, (unsigned long long)s1);
    EXPECT_OK(reg_mem(cfd, mem, 4 * MIB));
    EXPECT_OK(map(cfd, 0x3000, 0x2000, mem, RW));
    EXPECT_OK(map(cfd, 0x100000, 0x1000, mem + 0x10000, RO));
    EXPECT_OK(map(cfd, s1 + 0x30000, 0x20000, mem + 0x100000, RW));
    char *before = state_read();
    CHECK(count_in(before, "mapping c=1 ") == 3, "3 mappings:\n%s", before);

    if (unset) {
        EXPECT_OK(ioctl(gfd2, VFIO_GROUP_UNSET_CONTAINER));
    } else {
        close(gfd2);
    }
    char *after = state_read();
    CHECK(strstr(after, "group g=8") == NULL || !strstr(after, "group g=8 c=1"),
          "group 8 still attached:\n%s", after);
    CHECK(count_in(after, "window c=1 ") == 2, "windows kept:\n%s", after);
    if (since_6_11()) {
        CHECK(count_in(after, "mapping ") == 0,
              "%s: every TCE must be cleared:\n%s", kernel(), after);
        CHECK(file_has(logp, "table-clear c=1 start=0x0 entries=0x3 "
                       "reason=group-detach g=8\n") &&
              file_has(logp, "table-clear c=1 start=0x800000000000000 "
                       "entries=0x2 reason=group-detach g=8\n"),
              "table-clear lines");
    } else {
        /* the mapping lines, every one, are what they were */
        char *m0 = lines_with(before, "mapping "), *m1 = lines_with(after,
                                                                   "mapping ");
        bool same = !strcmp(m0, m1);

        CHECK(same, "%s: group 7 must keep its mappings:\nbefore\n%s\nafter\n%s",
              kernel(), m0, m1);
        free(m0);
        free(m1);
        CHECK(!file_has(logp, "table-clear"), "6.8 clears nothing on detach");
    }
    free(before);
    free(after);
    /* the remaining group goes on using the container */
    EXPECT_OK(map(cfd, 0x8000, 0x1000, mem, RW));
    CHECK(state_has("mapping c=1 iova=0x8000 size=0x1000"), "map after detach");
    /* the last group leaves: 6.8 clears in tce_iommu_release() */
    EXPECT_OK(ioctl(gfd, VFIO_GROUP_UNSET_CONTAINER));
    CHECK(since_6_11() ? file_has(logp, "table-clear c=1 start=0x0 entries=0x1 "
                                  "reason=group-detach g=7\n")
                       : file_has(logp, "table-clear c=1 start=0x0 entries=0x4 "
                                  "reason=release\n"),
          "last clear of %s", kernel());
    CHECK(!state_has("mapping ") && !state_has("window "), "all gone");
    close(gfd);
    close(cfd);
    return 0;
}

static int t_sibling_unset(void)
{
    return sibling_leaves(true);
}

static int t_sibling_close(void)
{
    return sibling_leaves(false);
}

/* ============ configuration: kernels and flavours ===================== */

static int t_config_error(void)
{
    const char *want = getenv("WANT");
    int cfd = container_open();

    CHECK(cfd >= 0, "container");
    close(cfd);
    EXPECT_ERR(group_open(7), ENOENT);       /* a host without devices */
    CHECK(file_has(logp, want), "log lacks \"%s\":\n%s", want, slurp(logp));
    return 0;
}

/* ============ pSeries L1 host, 6.11+ ================================== */

static int t_pseries_windows(void)
{
    int cfd, gfd;
    struct vfio_iommu_spapr_tce_info info = { .argsz = sizeof(info) };
    uint64_t s = 1;

    if (v2_open(7, &cfd, &gfd)) {
        return 1;
    }
    EXPECT_OK(ioctl(cfd, VFIO_IOMMU_SPAPR_TCE_GET_INFO, &info));
    CHECK(info.dma32_window_start == 0 && info.dma32_window_size == GIB,
          "dma32 0x%llx+0x%llx", (unsigned long long)info.dma32_window_start,
          (unsigned long long)info.dma32_window_size);
    CHECK(info.flags & VFIO_IOMMU_SPAPR_INFO_DDW, "DDW");
    CHECK(info.ddw.pgsizes == 0x1211000 &&
          info.ddw.max_dynamic_windows_supported == 2 && info.ddw.levels == 1,
          "ddw pgsizes 0x%llx windows %u levels %u",
          (unsigned long long)info.ddw.pgsizes,
          info.ddw.max_dynamic_windows_supported, info.ddw.levels);
    /* levels > 1: get_table_size() is ~0U; without a limit, EINVAL */
    EXPECT_ERR(tce_create(cfd, 12, GIB, 2, &s), EINVAL);
    EXPECT_ERR(tce_create(cfd, 28, GIB, 1, &s), EINVAL);   /* 256M not offered */
    /* window 0: the default window again, at dma_base */
    EXPECT_OK(tce_create(cfd, 12, GIB, 1, &s));
    CHECK(s == 0, "default window at 0x%llx", (unsigned long long)s);
    /* a DDW: largest_available_block 2^37 TCEs */
    EXPECT_ERR(tce_create(cfd, 12, 1ULL << 50, 1, &s), EINVAL);
    EXPECT_OK(tce_create(cfd, 16, 1ULL << 40, 0, &s));     /* levels 0 is fine */
    CHECK(s == 1ULL << 59, "DDW at 0x%llx while window 0 is active",
          (unsigned long long)s);
    EXPECT_ERR(tce_create(cfd, 16, GIB, 1, &s), ENOSPC);
    /* with a 64-bit window, window 0 can be neither kind */
    EXPECT_OK(tce_remove(cfd, 0));
    EXPECT_ERR(tce_create(cfd, 16, 1ULL << 36, 1, &s), EPERM);
    EXPECT_ERR(tce_create(cfd, 12, GIB, 1, &s), EPERM);
    CHECK(file_has(logp, "reason=64-bit-window-present"), "why");
    /* no window: the hypervisor places the next one at 0 */
    EXPECT_OK(tce_remove(cfd, 1ULL << 59));
    EXPECT_OK(tce_create(cfd, 21, 1ULL << 40, 1, &s));
    CHECK(s == 0, "DDW alone at 0x%llx", (unsigned long long)s);
    /* a second DDW: of_add_property() finds the first one's: EEXIST, and
     * the PE is on the failed list from now on */
    EXPECT_ERR(tce_create(cfd, 12, GIB, 1, &s), EEXIST);
    EXPECT_OK(tce_remove(cfd, 0));
    EXPECT_ERR(tce_create(cfd, 12, GIB, 1, &s), ENODEV);
    CHECK(file_has(logp, "reason=failed-ddw-pdn"), "sticky");
    close(gfd);
    close(cfd);
    return 0;
}

static int t_pseries_levels_memlock(void)
{
    int cfd, gfd;
    uint64_t s = 0;

    if (v2_open(7, &cfd, &gfd)) {
        return 1;
    }
    /* VFIO_MODEL_MEMLOCK=8G: each levels=2 try charges ~0U bytes and
     * leaks it (create_table fails after account_locked_vm) */
    EXPECT_ERR(tce_create(cfd, 12, GIB, 2, &s), EINVAL);
    EXPECT_ERR(tce_create(cfd, 12, GIB, 3, &s), EINVAL);
    EXPECT_ERR(tce_create(cfd, 12, GIB, 2, &s), ENOMEM);
    CHECK(file_has(logp, "reason=rlimit-memlock fn=tce_iommu_create_table"),
          "rlimit");
    close(gfd);
    close(cfd);
    return 0;
}

/* A second PE: EPERM at SET_CONTAINER if the container has a table */
static int t_pseries_second_pe(void)
{
    int cfd, gfd, gfd2 = group_open(8), gfd3 = group_open(9);
    uint64_t s = 0;

    if (v2_open(7, &cfd, &gfd)) {
        return 1;
    }
    /* no table yet: the attach works, the next TCE_CREATE fails EPERM */
    EXPECT_OK(set_container(gfd2, cfd));
    EXPECT_ERR(tce_create(cfd, 12, GIB, 1, &s), EPERM);
    CHECK(file_has(logp, "reason=not-this-pe-window g=7"),
          "the table is group 8's (the last attached), group 7 refuses it");
    CHECK(!state_has("window "), "no window left");
    EXPECT_OK(ioctl(gfd2, VFIO_GROUP_UNSET_CONTAINER));
    EXPECT_OK(tce_create(cfd, 12, GIB, 1, &s));
    /* a table: SET_CONTAINER fails, and QEMU opens another container */
    EXPECT_ERR(set_container(gfd2, cfd), EPERM);
    int cfd2 = container_open();
    EXPECT_OK(set_container(gfd2, cfd2));
    EXPECT_OK(ioctl(cfd2, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU));
    EXPECT_OK(tce_remove(cfd2, 0));
    EXPECT_OK(tce_create(cfd2, 12, GIB, 1, &s));
    CHECK(s == 0, "each PE has its own window at 0");
    /* v1 on a pSeries PE works too: the default window on first use */
    int cfd3 = container_open();
    uint8_t *mem = amap(MIB, PROT_READ | PROT_WRITE);
    EXPECT_OK(set_container(gfd3, cfd3));
    EXPECT_OK(ioctl(cfd3, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU));
    EXPECT_OK(ioctl(cfd3, VFIO_IOMMU_ENABLE));
    EXPECT_OK(map(cfd3, GIB - 0x1000, 0x1000, mem, RW));
    CHECK(file_has(logp, "window-create c=3 start=0x0 size=0x40000000 "
                   "page_shift=12 levels=1 default=1"), "v1 default window");
    EXPECT_ERR(map(cfd3, GIB, 0x1000, mem, RW), ENXIO);
    return 0;   /* released at exit */
}

/* query_ddw fails: the RTAS status, and ENODEV from then on */
static int t_pseries_ddw_failed(void)
{
    int cfd, gfd;
    uint64_t s = 0;

    if (v2_open(7, &cfd, &gfd)) {
        return 1;
    }
    EXPECT_ERR(tce_create(cfd, 16, 1ULL << 36, 1, &s), EPERM);
    CHECK(file_has(logp, "errno=EPERM injected=1 point=query_ddw"), "log");
    EXPECT_ERR(tce_create(cfd, 12, GIB, 1, &s), ENODEV);
    close(gfd);
    close(cfd);
    if (v2_open(7, &cfd, &gfd)) {
        return 1;
    }
    EXPECT_ERR(tce_create(cfd, 12, GIB, 1, &s), ENODEV);   /* until reboot */
    return 0;
}

/* ============ pSeries L1 on 6.8: the borrowing ops ==================== */

static int t_pseries_68(void)
{
    int cfd = container_open(), gfd = group_open(7), gfd2 = group_open(8);
    struct vfio_iommu_spapr_tce_info info = { .argsz = sizeof(info) };
    uint8_t *mem = amap(MIB, PROT_READ | PROT_WRITE);

    CHECK(ioctl(cfd, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_v2_IOMMU) == 1,
          "the driver always offers v2");
    EXPECT_OK(set_container(gfd, cfd));
    EXPECT_ERR(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU), EINVAL);
    EXPECT_OK(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU));
    EXPECT_OK(ioctl(cfd, VFIO_IOMMU_SPAPR_TCE_GET_INFO, &info));
    CHECK(info.flags == 0 && info.dma32_window_start == 0 &&
          info.dma32_window_size == GIB, "info");
    EXPECT_ERR(set_container(gfd2, cfd), EBUSY);
    EXPECT_ERR(tce_create(cfd, 12, GIB, 1, NULL), ENOTTY);
    EXPECT_OK(ioctl(cfd, VFIO_IOMMU_ENABLE));
    EXPECT_OK(map(cfd, 0x2000, 0x1000, mem, RW));
    CHECK(file_has(logp, "window-create c=1 start=0x0 size=0x40000000 "
                   "page_shift=12 levels=1 default=1"), "borrowed window");
    EXPECT_ERR(map(cfd, GIB, 0x1000, mem, RW), ENXIO);
    CHECK(state_has("mapping c=1 iova=0x2000 size=0x1000"), "mapped");
    close(gfd);
    close(cfd);
    close(gfd2);
    return 0;
}

/* ============ IODA1 (POWER7) on 6.4 =================================== */

static int t_ioda1(void)
{
    int cfd = container_open(), gfd = group_open(7), gfd2 = group_open(8);
    struct vfio_iommu_spapr_tce_info info = { .argsz = sizeof(info) };
    uint8_t *mem = amap(MIB, PROT_READ | PROT_WRITE);

    EXPECT_OK(set_container(gfd, cfd));
    EXPECT_ERR(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU), EINVAL);
    EXPECT_OK(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU));
    EXPECT_OK(ioctl(cfd, VFIO_IOMMU_SPAPR_TCE_GET_INFO, &info));
    /* 3 PEs share the 2 GiB of 32-bit DMA: 2 segments of 256 MiB each */
    CHECK(info.flags == 0 && info.dma32_window_start == 0 &&
          info.dma32_window_size == 512 * MIB, "PE 0: 0x%llx+0x%llx",
          (unsigned long long)info.dma32_window_start,
          (unsigned long long)info.dma32_window_size);
    EXPECT_ERR(set_container(gfd2, cfd), EBUSY);
    int cfd2 = container_open();
    EXPECT_OK(set_container(gfd2, cfd2));
    EXPECT_OK(ioctl(cfd2, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU));
    EXPECT_OK(ioctl(cfd2, VFIO_IOMMU_SPAPR_TCE_GET_INFO, &info));
    CHECK(info.dma32_window_start == 512 * MIB &&
          info.dma32_window_size == 512 * MIB, "PE 1: 0x%llx+0x%llx",
          (unsigned long long)info.dma32_window_start,
          (unsigned long long)info.dma32_window_size);
    EXPECT_OK(ioctl(cfd2, VFIO_IOMMU_ENABLE));
    EXPECT_ERR(map(cfd2, 0, 0x1000, mem, RW), ENXIO);
    EXPECT_OK(map(cfd2, 512 * MIB, 0x1000, mem, RW));
    CHECK(file_has(logp, "window-create c=2 start=0x20000000 size=0x20000000 "
                   "page_shift=12 levels=1 default=1"), "PE 1's own table");
    EXPECT_OK(ioctl(cfd, VFIO_IOMMU_ENABLE));
    EXPECT_OK(map(cfd, 0, 0x1000, mem, RW));
    CHECK(state_has("mapping c=1 iova=0x0 size=0x1000") &&
          state_has("mapping c=2 iova=0x20000000 size=0x1000"), "mappings");
    /* 6.4 has the pre-6.11 rule: nothing cleared until the release */
    close(gfd2);
    CHECK(file_has(logp, "table-clear c=2 start=0x20000000 entries=0x1 "
                   "reason=release"), "release clears");
    return 0;
}

/* ============ PAGE_SIZE: 64K (Debian/Ubuntu ppc64el) or 4K ============ */

static bool page_4k(void)
{
    const char *p = getenv("VFIO_MODEL_PAGE_SIZE");

    return p && !strcmp(p, "4K");
}

static int t_page_size(void)
{
    int cfd, gfd;
    uint64_t s = 0;
    uint8_t *mem = amap(2 * MIB, PROT_READ | PROT_WRITE);

    if (v2_open(7, &cfd, &gfd)) {
        return 1;
    }
    /* preregistration: PAGE_SIZE alignment */
    if (page_4k()) {
        EXPECT_OK(reg_mem(cfd, mem + 0x1000, 0x1000));
        EXPECT_OK(unreg_mem(cfd, mem + 0x1000, 0x1000));
    } else {
        EXPECT_ERR(reg_mem(cfd, mem + 0x1000, 0x10000), EINVAL);
        EXPECT_ERR(reg_mem(cfd, mem, 0x1000), EINVAL);
    }
    EXPECT_OK(reg_mem(cfd, mem, 2 * MIB));
    /* the prereg IOMMU page limit: 64K TCEs on plain memory, 64K kernel */
    EXPECT_OK(tce_create(cfd, 16, 1ULL << 32, 1, &s));
    if (page_4k()) {
        EXPECT_ERR(map(cfd, s, 0x10000, mem, RW), EINVAL);
        CHECK(file_has(logp, "reason=page-size"), "page-size");
    } else {
        EXPECT_OK(map(cfd, s, 0x10000, mem, RW));
    }
    /* the 55-bit rule counts levels of at least PAGE_SIZE */
    EXPECT_OK(tce_remove(cfd, s));
    if (page_4k()) {
        EXPECT_OK(tce_create(cfd, 12, 1ULL << 50, 4, &s));
    } else {
        EXPECT_ERR(tce_create(cfd, 12, 1ULL << 50, 4, &s), EINVAL);
        CHECK(file_has(logp, "reason=55-bit-rule"), "55-bit");
        EXPECT_OK(tce_create(cfd, 12, 1ULL << 50, 3, &s));
    }
    close(gfd);
    close(cfd);
    return 0;
}

/*
 * locked_vm is charged in pages: a small table takes a whole 64K page
 * per level on a 64K kernel (VFIO_MODEL_MEMLOCK=128K), 32K on 4K
 */
static int t_locked_vm_units(void)
{
    int cfd, gfd;
    uint64_t s = 0;

    if (v2_open(7, &cfd, &gfd)) {
        return 1;
    }
    /* 16 MiB of 4K pages: 4096 TCEs, 32 KiB a table, HW + userspace copy */
    EXPECT_OK(tce_create(cfd, 12, 16 * MIB, 1, &s));
    if (page_4k()) {
        EXPECT_OK(tce_create(cfd, 12, 16 * MIB, 1, &s));
    } else {
        EXPECT_ERR(tce_create(cfd, 12, 16 * MIB, 1, &s), ENOMEM);
        CHECK(file_has(logp, "reason=rlimit-memlock fn=tce_iommu_create_table "
                       "locked_vm=0x2 pages=0x2"), "charged 2 pages:\n%s",
              slurp(logp));
    }
    close(gfd);
    close(cfd);
    return 0;
}

/* ============ allocation rules ======================================== */

/* A level above MAX_PAGE_ORDER (16 MiB, both page sizes): ENOMEM */
static int t_level_max_order(void)
{
    int cfd, gfd;
    uint64_t s = 0;

    if (v2_open(7, &cfd, &gfd)) {
        return 1;
    }
    EXPECT_OK(tce_create(cfd, 12, 8 * GIB, 1, &s));        /* 2^21 TCEs */
    EXPECT_OK(tce_remove(cfd, s));
    EXPECT_ERR(tce_create(cfd, 12, 16 * GIB, 1, &s), ENOMEM);
    CHECK(file_has(logp, "reason=level-over-max-order level_shift=25"), "why");
    /* QEMU's levels loop: the next level count fits */
    EXPECT_OK(tce_create(cfd, 12, 16 * GIB, 2, &s));
    EXPECT_OK(tce_remove(cfd, s));
    EXPECT_ERR(tce_create(cfd, 16, 256 * GIB, 1, &s), ENOMEM);
    EXPECT_OK(tce_create(cfd, 16, 128 * GIB, 1, &s));
    close(gfd);
    close(cfd);
    return 0;
}

/* The failed create leaked its locked_vm charge (VFIO_MODEL_MEMLOCK=65M) */
static int t_create_leaks_locked_vm(void)
{
    int cfd, gfd;
    uint64_t s = 0;

    if (v2_open(7, &cfd, &gfd)) {
        return 1;
    }
    /* 16 GiB of 4K in one level: 64 MiB charged, then ENOMEM */
    EXPECT_ERR(tce_create(cfd, 12, 16 * GIB, 1, &s), ENOMEM);
    EXPECT_ERR(tce_create(cfd, 12, 512 * MIB, 1, &s), ENOMEM);
    CHECK(file_has(logp, "reason=rlimit-memlock"), "the limit, from the leak");
    close(gfd);
    close(cfd);
    return 0;
}

static int t_prereg_pin_rules(void)
{
    int cfd, gfd;
    uint8_t *rw = amap(4 * MIB, PROT_READ | PROT_WRITE);
    uint8_t *ro = amap(MIB, PROT_READ);
    uint8_t *none = amap(MIB, PROT_NONE);

    if (v2_open(7, &cfd, &gfd)) {
        return 1;
    }
    /* mm_iommu_do_alloc() pins with FOLL_WRITE | FOLL_LONGTERM */
    EXPECT_ERR(reg_mem(cfd, ro, MIB), EFAULT);
    EXPECT_ERR(reg_mem(cfd, none, MIB), EFAULT);
    /* vzalloc(0) */
    EXPECT_ERR(reg_mem(cfd, rw, 0), ENOMEM);
    CHECK(file_has(logp, "reason=vzalloc-0"), "size 0");
    /* a chunk pinned in part: the ioctl returns the count pinned */
    CHECK(mprotect(rw + MIB, MIB, PROT_READ) == 0, "mprotect");
    errno = 0;
    long r = reg_mem(cfd, rw, 2 * MIB);
    CHECK(r == (long)(MIB >> (page_4k() ? 12 : 16)),
          "partial pin must return the pages pinned, got %ld (%s)", r,
          strerror(errno));
    CHECK(file_has(logp, "error op=REGISTER_MEMORY errno=EFAULT ret="),
          "logged");
    CHECK(!state_has("memory "), "nothing registered");
    /* the first page refused: EFAULT */
    EXPECT_ERR(reg_mem(cfd, rw + MIB, MIB), EFAULT);
    EXPECT_OK(reg_mem(cfd, rw, MIB));
    /* pin first, overlap check after: an overlap that is read-only is
     * EFAULT, one that pins is EINVAL */
    EXPECT_OK(reg_mem(cfd, rw + 2 * MIB, MIB));
    CHECK(mprotect(rw + 2 * MIB + MIB / 2, MIB / 2, PROT_READ) == 0, "mprotect");
    EXPECT_ERR(reg_mem(cfd, rw + 2 * MIB + MIB / 2, MIB / 4), EFAULT);
    EXPECT_ERR(reg_mem(cfd, rw + 2 * MIB, MIB / 4), EINVAL);
    close(gfd);
    close(cfd);
    return 0;
}

static int t_v1_pin_rules(void)
{
    int cfd = container_open(), gfd = group_open(7);
    uint8_t *ro = amap(MIB, PROT_READ);

    EXPECT_OK(set_container(gfd, cfd));
    EXPECT_OK(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU));
    EXPECT_OK(ioctl(cfd, VFIO_IOMMU_ENABLE));
    /* the device may write: FOLL_WRITE on read-only memory, EFAULT */
    EXPECT_ERR(map(cfd, 0, 0x1000, ro, RW), EFAULT);
    EXPECT_ERR(map(cfd, 0, 0x1000, ro, VFIO_DMA_MAP_FLAG_WRITE), EFAULT);
    EXPECT_OK(map(cfd, 0, 0x1000, ro, RO));
    close(gfd);
    close(cfd);
    return 0;
}

static int t_unmap_past_end(void)
{
    int cfd, gfd;
    uint64_t s = 0;
    uint8_t *mem = amap(MIB, PROT_READ | PROT_WRITE);

    if (v2_open(7, &cfd, &gfd)) {
        return 1;
    }
    EXPECT_OK(tce_create(cfd, 12, GIB, 1, &s));
    EXPECT_OK(reg_mem(cfd, mem, MIB));
    EXPECT_OK(map(cfd, GIB - 0x1000, 0x1000, mem, RW));
    /* iommu_tce_clear_param_check() ORs -EINVAL into 1 */
    CHECK(unmap(cfd, GIB - 0x1000, 0x2000) == 1, "past the end must return 1");
    CHECK(state_has("mapping c=1 iova=0x3ffff000"), "nothing cleared");
    EXPECT_OK(unmap(cfd, GIB - 0x1000, 0x1000));
    EXPECT_OK(unmap(cfd, 0, 0));
    close(gfd);
    close(cfd);
    return 0;
}

/* ============ fail points ============================================= */

/*
 * pnv_tce: a 2-level table gets its lower levels on first use.  A map
 * whose third page needs a new level that cannot be had: the kernel clears
 * the two entries the call wrote (the mapping it replaced is lost), and
 * the region's mapped count taken for the failed page leaks.
 */
static int t_fail_pnv_tce_unwind(void)
{
    int cfd, gfd;
    uint64_t s = 0;
    uint8_t *mem = amap(MIB, PROT_READ | PROT_WRITE);
    /* a lower level holds 2^13 entries (64 KiB): entry 8190 is near the end */
    uint64_t iova = 8190ULL << 12;

    if (v2_open(7, &cfd, &gfd)) {
        return 1;
    }
    EXPECT_OK(tce_create(cfd, 12, GIB, 2, &s));
    EXPECT_OK(reg_mem(cfd, mem, MIB));
    EXPECT_OK(map(cfd, iova, 0x1000, mem + 0x8000, RO));      /* pnv_tce:1 */
    EXPECT_OK(map(cfd, 0x1000, 0x1000, mem, RW));             /* no new level */
    EXPECT_ERR(map(cfd, iova, 0x4000, mem, RW), ENOMEM);       /* pnv_tce:2 */
    CHECK(file_has(logp, "error op=MAP_DMA errno=ENOMEM injected=1 "
                   "point=pnv_tce c=1"), "log:\n%s", slurp(logp));
    CHECK(file_has(logp, "leaked-mapped=1 unwound=0x2"), "unwound 2");
    char *st = state_read();
    CHECK(count_in(st, "mapping ") == 1 && strstr(st, "mapping c=1 iova=0x1000 "),
          "only 0x1000 stays:\n%s", st);
    free(st);
    /* the leak: the region stays pinned when unregistered */
    EXPECT_OK(unmap(cfd, 0, GIB));
    EXPECT_OK(unreg_mem(cfd, mem, MIB));
    CHECK(file_has(logp, "unregister-memory c=1 vaddr=") &&
          file_has(logp, "still-mapped=1"), "still mapped");
    /* the level that failed is allocated by the next map */
    EXPECT_OK(reg_mem(cfd, mem, MIB));
    EXPECT_OK(map(cfd, iova, 0x4000, mem, RW));
    close(gfd);
    close(cfd);
    return 0;
}

/* Each point with its default errno, and what it leaves behind */
static int t_fail_points(void)
{
    int cfd = container_open(), gfd = group_open(7), gfd2 = group_open(8);
    uint64_t s = 0;
    uint8_t *mem = amap(MIB, PROT_READ | PROT_WRITE);

    /* iommu_group_claim_dma_owner:1 (EPERM: a host driver holds a device) */
    EXPECT_ERR(set_container(gfd, cfd), EPERM);
    EXPECT_OK(set_container(gfd, cfd));
    /* tce_iommu_open:1 */
    EXPECT_ERR(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU), ENOMEM);
    /* tce_iommu_attach_group:1: the driver goes, the group stays */
    EXPECT_ERR(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU), ENOMEM);
    CHECK(state_has("container c=1 iommu=none groups=7"), "unwound");
    EXPECT_OK(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU));
    /* pnv_pci_table_alloc:1, then pnv_alloc_tce_level:2 (the userspace
     * copy); the pending default window is made by TCE_CREATE first */
    EXPECT_ERR(tce_create(cfd, 16, 1ULL << 32, 1, &s), ENOMEM);
    CHECK(file_has(logp, "point=pnv_pci_table_alloc"), "table alloc");
    EXPECT_ERR(tce_create(cfd, 16, 1ULL << 32, 1, &s), ENOMEM);
    CHECK(file_has(logp, "point=pnv_alloc_tce_level"), "level alloc");
    CHECK(state_has("window c=1 start=0x0 size=0x80000000"),
          "the default window made on the way stays");
    EXPECT_OK(tce_create(cfd, 16, 1ULL << 32, 1, &s));
    /* pnv_pci_ioda2_set_window:1 at the second group's attach: OPAL's -1 */
    EXPECT_ERR(set_container(gfd2, cfd), EPERM);
    CHECK(file_has(logp, "error op=SET_CONTAINER errno=EPERM injected=1 "
                   "point=pnv_pci_ioda2_set_window g=8"), "set_window");
    EXPECT_OK(set_container(gfd2, cfd));
    /* account_locked_vm:5 (four were TCE_CREATE's) at REGISTER */
    EXPECT_ERR(reg_mem(cfd, mem, MIB), ENOMEM);
    /* mm_iommu_do_alloc:1, pin_user_pages:1, tce_iommu_register_pages:1 */
    EXPECT_ERR(reg_mem(cfd, mem, MIB), ENOMEM);
    EXPECT_ERR(reg_mem(cfd, mem, MIB), EBUSY);               /* :EBUSY given */
    EXPECT_ERR(reg_mem(cfd, mem, MIB), ENOMEM);
    CHECK(!state_has("memory "), "nothing registered");
    EXPECT_OK(reg_mem(cfd, mem, MIB));
    /* GET_DEVICE_FD: strndup_user, get_unused_fd_flags, ... */
    EXPECT_ERR(ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, "0000:01:00.0"), ENOMEM);
    EXPECT_ERR(ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, "0000:01:00.0"), EMFILE);
    EXPECT_ERR(ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, "0000:01:00.0"), ENOMEM);
    EXPECT_ERR(ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, "0000:01:00.0"), ENOMEM);
    CHECK(file_has(logp, "point=vfio_pci_core_enable"), "core enable");
    EXPECT_ERR(ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, "0000:01:00.0"), ENFILE);
    CHECK(!state_has("device "), "no device open");
    int dfd = ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, "0000:01:00.0");
    CHECK(dfd >= 0, "device: %s", strerror(errno));
    close(dfd);
    close(gfd2);
    close(gfd);
    close(cfd);
    return 0;
}

/* The default window made by the first MAP_DMA of a v1 container */
static int t_fail_default_window_on_map(void)
{
    int cfd = container_open(), gfd = group_open(7);
    uint8_t *mem = amap(MIB, PROT_READ | PROT_WRITE);

    EXPECT_OK(set_container(gfd, cfd));
    EXPECT_OK(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU));
    EXPECT_OK(ioctl(cfd, VFIO_IOMMU_ENABLE));      /* account_locked_vm:1 */
    EXPECT_ERR(map(cfd, 0, 0x1000, mem, RW), ENOMEM);   /* account_locked_vm:2 */
    CHECK(!state_has("window "), "still pending");
    EXPECT_ERR(map(cfd, 0, 0x1000, mem, RW), EFAULT);   /* pin_user_pages_fast:1 */
    CHECK(state_has("window c=1 start=0x0"), "made, and kept");
    EXPECT_OK(map(cfd, 0, 0x1000, mem, RW));
    close(gfd);
    close(cfd);
    return 0;
}

/* any:N counts the hits of every point; the log names the point */
static int t_fail_any(void)
{
    int cfd = container_open(), gfd = group_open(7);   /* vfio_fops_open: 1 */

    EXPECT_OK(set_container(gfd, cfd));          /* claim_dma_owner: 2 */
    /* tce_iommu_open: 3, tce_iommu_attach_group: 4 */
    EXPECT_ERR(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU), ENOMEM);
    CHECK(file_has(logp, "error op=SET_IOMMU errno=ENOMEM injected=1 "
                   "point=tce_iommu_attach_group c=1"), "log:\n%s", slurp(logp));
    /* calls that allocate nothing are no hits */
    struct vfio_group_status st = { .argsz = sizeof(st) };
    EXPECT_OK(ioctl(gfd, VFIO_GROUP_GET_STATUS, &st));
    CHECK(ioctl(cfd, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_IOMMU) == 1, "ext");
    EXPECT_OK(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU)); /* 5, 6 */
    EXPECT_ERR(ioctl(cfd, VFIO_IOMMU_ENABLE), ENOMEM);          /* 7 */
    CHECK(file_has(logp, "point=account_locked_vm"), "account");
    close(gfd);
    close(cfd);
    EXPECT_ERR(container_open(), ENOMEM);                       /* 8 */
    CHECK(file_has(logp, "error op=OPEN_CONTAINER errno=ENOMEM injected=1 "
                   "point=vfio_fops_open"), "open");
    return 0;
}

/* ================================================================== */
#define SIBLING(k) \
    { "sibling_leaves_unset_" k, t_sibling_unset, \
      { "VFIO_MODEL_DEVICES=" DEVS, "VFIO_MODEL_KERNEL=" k }, NULL }, \
    { "sibling_leaves_close_" k, t_sibling_close, \
      { "VFIO_MODEL_DEVICES=" DEVS, "VFIO_MODEL_KERNEL=" k }, NULL }
#define BAD(name, want, ...) \
    { "config_" name, t_config_error, \
      { "VFIO_MODEL_DEVICES=" DEVS, "WANT=" want, __VA_ARGS__ }, NULL }

static const struct tcase cases[] = {
    SIBLING("6.8"),
    SIBLING("6.12"),
    SIBLING("7.2"),
    BAD("kernel_unknown", "VFIO_MODEL_KERNEL: '6.1' is not a modelled kernel "
        "(6.4 (ioda1 only), 6.8, 6.12, 7.2)", "VFIO_MODEL_KERNEL=6.1"),
    BAD("kernel_6_4_powernv", "IODA1 is modelled on 6.4 only",
        "VFIO_MODEL_KERNEL=6.4"),
    BAD("ioda1_not_6_4", "VFIO_MODEL_FLAVOUR=ioda1 and VFIO_MODEL_KERNEL=6.4",
        "VFIO_MODEL_FLAVOUR=ioda1", K612),
    BAD("flavour_power8", "VFIO_MODEL_FLAVOUR: 'power8' is none of powernv, "
        "pseries, ioda1", "VFIO_MODEL_FLAVOUR=power8"),
    BAD("flavour_power7", "'power7' is none of", "VFIO_MODEL_FLAVOUR=power7"),
    BAD("page_size", "VFIO_MODEL_PAGE_SIZE: '16K'", "VFIO_MODEL_PAGE_SIZE=16K"),
    BAD("pgsizes_no_ddw", "VFIO_MODEL_PGSIZES: this host has no dynamic",
        PSERIES, K68, "VFIO_MODEL_PGSIZES=0x11000"),
    BAD("fail_ioctl_name", "'MAP_DMA' is an ioctl, not a kernel function; its "
        "fail points: pin_user_pages_fast, pnv_tce", "VFIO_MODEL_FAIL=MAP_DMA:1"),
    BAD("fail_no_alloc", "GET_STATUS cannot fail in the kernel",
        "VFIO_MODEL_FAIL=get_status:1"),
    BAD("fail_bad_errno", "pnv_tce cannot return EIO (it returns ENOMEM)",
        "VFIO_MODEL_FAIL=pnv_tce:1:EIO"),
    BAD("fail_any_errno", "any:3 fails with the errno of the point it hits",
        "VFIO_MODEL_FAIL=any:3:EIO"),
    BAD("fail_unknown", "'kmalloc' is no fail point", "VFIO_MODEL_FAIL=kmalloc:1"),
    { "pseries_6_12_windows", t_pseries_windows,
      { "VFIO_MODEL_DEVICES=" DEVS, PSERIES, K612 }, NULL },
    { "pseries_7_2_windows", t_pseries_windows,
      { "VFIO_MODEL_DEVICES=" DEVS, PSERIES, K72 }, NULL },
    { "pseries_levels_leak_locked_vm", t_pseries_levels_memlock,
      { "VFIO_MODEL_DEVICES=" DEVS, PSERIES, "VFIO_MODEL_MEMLOCK=8589934592" }, NULL },
    { "pseries_6_12_second_pe_eperm", t_pseries_second_pe,
      { "VFIO_MODEL_DEVICES=" DEVS, PSERIES, K612 }, NULL },
    { "pseries_7_2_second_pe_eperm", t_pseries_second_pe,
      { "VFIO_MODEL_DEVICES=" DEVS, PSERIES, K72 }, NULL },
    { "pseries_ddw_failure_sticks", t_pseries_ddw_failed,
      { "VFIO_MODEL_DEVICES=" DEVS, PSERIES, "VFIO_MODEL_FAIL=query_ddw:1" }, NULL },
    { "pseries_6_8_v1_only", t_pseries_68,
      { "VFIO_MODEL_DEVICES=" DEVS, PSERIES, K68 }, NULL },
    { "ioda1_6_4_own_tables", t_ioda1,
      { "VFIO_MODEL_DEVICES=" DEVS, "VFIO_MODEL_FLAVOUR=ioda1",
        "VFIO_MODEL_KERNEL=6.4" }, NULL },
    { "page_size_64k", t_page_size, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "page_size_4k", t_page_size,
      { "VFIO_MODEL_DEVICES=" DEVS, "VFIO_MODEL_PAGE_SIZE=4K" }, NULL },
    { "locked_vm_units_64k", t_locked_vm_units,
      { "VFIO_MODEL_DEVICES=" DEVS, "VFIO_MODEL_MEMLOCK=131072" }, NULL },
    { "locked_vm_units_4k", t_locked_vm_units,
      { "VFIO_MODEL_DEVICES=" DEVS, "VFIO_MODEL_MEMLOCK=131072",
        "VFIO_MODEL_PAGE_SIZE=4K" }, NULL },
    { "level_over_max_page_order_64k", t_level_max_order,
      { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "level_over_max_page_order_4k", t_level_max_order,
      { "VFIO_MODEL_DEVICES=" DEVS, "VFIO_MODEL_PAGE_SIZE=4K" }, NULL },
    { "failed_create_leaks_locked_vm", t_create_leaks_locked_vm,
      { "VFIO_MODEL_DEVICES=" DEVS, "VFIO_MODEL_MEMLOCK=68157440" }, NULL },
    { "prereg_pin_rules_64k", t_prereg_pin_rules, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "prereg_pin_rules_4k", t_prereg_pin_rules,
      { "VFIO_MODEL_DEVICES=" DEVS, "VFIO_MODEL_PAGE_SIZE=4K" }, NULL },
    { "v1_map_read_only_memory", t_v1_pin_rules, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "unmap_past_window_end_returns_1", t_unmap_past_end,
      { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "fail_pnv_tce_unwinds_the_call", t_fail_pnv_tce_unwind,
      { "VFIO_MODEL_DEVICES=" DEVS, "VFIO_MODEL_FAIL=pnv_tce:2" }, NULL },
    { "fail_points_errnos_and_unwind", t_fail_points,
      { "VFIO_MODEL_DEVICES=" DEVS,
        "VFIO_MODEL_FAIL=iommu_group_claim_dma_owner:1,tce_iommu_open:1,"
        "tce_iommu_attach_group:1,pnv_pci_table_alloc:1,pnv_alloc_tce_level:4,"
        "pnv_pci_ioda2_set_window:3,account_locked_vm:5,mm_iommu_do_alloc:1,"
        "pin_user_pages:1:EBUSY,tce_iommu_register_pages:1,strndup_user:1,"
        "get_unused_fd_flags:1,vfio_allocate_device_file:1,"
        "vfio_pci_core_enable:1,anon_inode_getfile:1:ENFILE" }, NULL },
    { "fail_default_window_on_first_map", t_fail_default_window_on_map,
      { "VFIO_MODEL_DEVICES=" DEVS,
        "VFIO_MODEL_FAIL=account_locked_vm:2,pin_user_pages_fast:1" }, NULL },
    { "fail_any_counts_every_point", t_fail_any,
      { "VFIO_MODEL_DEVICES=" DEVS, "VFIO_MODEL_FAIL=any:4,any:7,any:8" }, NULL },
};

int main(int argc, char **argv)
{
    return run_cases(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
