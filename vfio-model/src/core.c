/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-model: the model proper.  Configuration, event log, state snapshot,
 * fault injection, and the semantics of the legacy VFIO container / group /
 * device uAPI with the sPAPR TCE IOMMU backend, following the Linux kernel
 * (drivers/vfio/{container,group,vfio_main}.c, drivers/vfio/vfio_iommu_spapr_tce.c,
 * arch/powerpc/platforms/powernv/pci-ioda{,-tce}.c,
 * arch/powerpc/mm/book3s64/iommu_api.c, drivers/vfio/pci/vfio_pci_{core,intrs,config}.c).
 * README.md lists which kernel function each rule follows.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "model.h"

struct vm_real vm_real;

/* ------------------------------------------------------------------ */
/* constants of the modelled host                                     */
/* ------------------------------------------------------------------ */
#define VM_MAX_FD            65536
#define VM_MAX_DEVICES       32
#define VM_MAX_GROUPS        32
#define IOMMU_TABLE_GROUP_MAX_TABLES 2      /* arch/powerpc/include/asm/iommu.h */
#define POWERNV_IOMMU_MAX_LEVELS     5      /* powernv/pci.h */
#define TCE_BYPASS_BASE      (1ULL << 59)   /* pnv_pci_ioda2_setup_dma_pe */
#define VFIO_PCI_OFFSET_SHIFT 40            /* drivers/vfio/pci/vfio_pci_priv.h */
#define VFIO_PCI_OFFSET_MASK ((1ULL << VFIO_PCI_OFFSET_SHIFT) - 1)
#define SZ_4K   0x1000ULL
#define SZ_64K  0x10000ULL
#define SZ_16M  0x1000000ULL
#define SZ_256M 0x10000000ULL

enum { IOMMU_NONE = 0, IOMMU_V1 = VFIO_SPAPR_TCE_IOMMU,
       IOMMU_V2 = VFIO_SPAPR_TCE_v2_IOMMU };
enum { PERM_R = 1, PERM_W = 2 };
enum { IRQ_NONE = -1 };
enum { BAR_NONE = 0, BAR_MEM32, BAR_MEM64, BAR_IO };

/* ------------------------------------------------------------------ */
/* objects                                                             */
/* ------------------------------------------------------------------ */
struct prereg {                 /* mm_iommu_table_group_mem_t (mm-wide) */
    uint64_t ua, entries;
    uint64_t used;
    int64_t mapped;             /* starts at 1, like the kernel */
    unsigned pageshift;
    struct prereg *next;
};

struct cprereg {                /* tce_iommu_prereg (per container) */
    struct prereg *mem;
    struct cprereg *next;
};

struct tce {
    uint64_t idx;               /* absolute entry index (it_offset based) */
    uint64_t ua;
    uint8_t perm;
    struct prereg *mem;
};

struct table {                  /* iommu_table */
    bool used;
    bool platform;              /* POWER7-like: owned by the group */
    uint64_t offset;            /* it_offset (entries) */
    uint64_t size;              /* it_size (entries) */
    unsigned page_shift, levels;
    struct tce *e;
    size_t n, cap;
};

struct group;

struct container {
    int id;
    bool fd_open;
    int iommu;                  /* IOMMU_NONE / V1 / V2 */
    bool enabled, def_window_pending;
    bool mm_set;                /* tce_iommu_mm_set() happened */
    struct table tables[IOMMU_TABLE_GROUP_MAX_TABLES];
    struct group *groups[VM_MAX_GROUPS];   /* vfio core group_list */
    int ngroups;
    struct cprereg *prereg;
    struct container *next;
};

struct bar {
    int type;
    bool pref;
    uint64_t size;
};

struct device {
    char bdf[16];
    unsigned dom, bus, slot, fn;
    int group_id;
    struct group *group;
    uint16_t vendor, devid, subven, subdev;
    uint32_t class;
    uint8_t rev;
    struct bar bars[6];
    uint64_t rom_size;
    int msix_vec, msix_bar;
    int intx_pin;
    bool pcie, msi, reset_works;
    uint32_t cfg_size;
    uint8_t cfg[4096];
    uint8_t wmask[4096];
    uint16_t msi_cap, msix_cap, pcie_cap;
    int memfd;
    int open_count;
    int irq_type, num_ctx;
    bool err_trig, req_trig;
};

struct group {
    int id;
    bool file_open;             /* /dev/vfio/N is open */
    bool drv_attached;          /* attached to the container's IOMMU driver */
    int dev_fds;                /* device fds (each holds the group file) */
    int container_users;        /* 1 + devices opened (vfio core) */
    struct container *c;
};

/* ------------------------------------------------------------------ */
/* global state                                                        */
/* ------------------------------------------------------------------ */
static pthread_mutex_t vm_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t vm_once = PTHREAD_ONCE_INIT;

static struct {
    int kind;
    void *obj;
} fdtab[VM_MAX_FD];

static struct device devices[VM_MAX_DEVICES];
static int ndevices;
static struct group groups[VM_MAX_GROUPS];
static int ngroups;
static struct container *containers;
static struct prereg *mm_prereg;      /* mm->context.iommu_group_mem_list */
static int next_container_id = 1;

static char config_error[512];
static bool flavour_power7;
static bool offer_v2 = true;
static bool eeh_enabled = true;
static uint64_t dma32_size = 0x80000000ULL;  /* phb->ioda.m32_pci_base */
static uint64_t ddw_pgsizes = SZ_4K | SZ_64K | SZ_16M | SZ_256M;
static int log_fd = -1;
static char *state_path;
static char shadow_root[512];
static unsigned host_page_shift = 12;

#define MAX_FAIL_RULES 16
static struct fail_rule {
    char op[32];
    unsigned long nth;
    int err;
} fail_rules[MAX_FAIL_RULES];
static int nfail_rules;
#define MAX_OPS 64
static struct {
    char op[32];
    unsigned long count;
} op_counts[MAX_OPS];
static int nop_counts;
static unsigned long any_count;

/* ------------------------------------------------------------------ */
/* errno names                                                         */
/* ------------------------------------------------------------------ */
static const struct {
    int e;
    const char *n;
} errnames[] = {
    { EPERM, "EPERM" }, { ENOENT, "ENOENT" }, { ESRCH, "ESRCH" },
    { EINTR, "EINTR" }, { EIO, "EIO" }, { ENXIO, "ENXIO" },
    { E2BIG, "E2BIG" }, { EBADF, "EBADF" }, { EAGAIN, "EAGAIN" },
    { ENOMEM, "ENOMEM" }, { EACCES, "EACCES" }, { EFAULT, "EFAULT" },
    { EBUSY, "EBUSY" }, { EEXIST, "EEXIST" }, { ENODEV, "ENODEV" },
    { EINVAL, "EINVAL" }, { ENFILE, "ENFILE" }, { EMFILE, "EMFILE" },
    { ENOTTY, "ENOTTY" }, { ENOSPC, "ENOSPC" }, { ERANGE, "ERANGE" },
    { ENOSYS, "ENOSYS" }, { EBADFD, "EBADFD" }, { EOPNOTSUPP, "EOPNOTSUPP" },
    { ETIMEDOUT, "ETIMEDOUT" }, { EOVERFLOW, "EOVERFLOW" },
    { ENOSPC, "ENOSPC" }, { EROFS, "EROFS" }, { ENAMETOOLONG, "ENAMETOOLONG" },
};

static const char *errname(int e, char *buf, size_t len)
{
    for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++) {
        if (errnames[i].e == e) {
            return errnames[i].n;
        }
    }
    snprintf(buf, len, "%d", e);
    return buf;
}

static int parse_errno(const char *s)
{
    for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++) {
        if (strcmp(errnames[i].n, s) == 0) {
            return errnames[i].e;
        }
    }
    char *end;
    long v = strtol(s, &end, 0);
    if (*s && !*end && v > 0 && v < 4096) {
        return (int)v;
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* event log and state snapshot                                        */
/* ------------------------------------------------------------------ */
static void vm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void vm_log(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n;

    if (log_fd < 0) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t)n > sizeof(line) - 2) {
        n = sizeof(line) - 2;
    }
    line[n++] = '\n';
    /* O_APPEND + one write per line: lines from concurrent writers never mix */
    ssize_t r = write(log_fd, line, n);
    (void)r;
}

struct sbuf {
    char *p;
    size_t n, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->n;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, room, fmt, ap);
        va_end(ap);
        if (k < 0) {
            return;
        }
        if ((size_t)k < room) {
            b->n += k;
            return;
        }
        size_t ncap = b->cap ? b->cap * 2 : 4096;
        while (ncap < b->n + k + 1) {
            ncap *= 2;
        }
        char *np = realloc(b->p, ncap);
        if (!np) {
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

static const char *iommu_name(int t)
{
    return t == IOMMU_V2 ? "spapr-v2" : t == IOMMU_V1 ? "spapr-v1" : "none";
}

static const char *perm_name(int p)
{
    return p == (PERM_R | PERM_W) ? "rw" : p == PERM_R ? "r" : p == PERM_W ? "w" : "none";
}

static void state_write(void)
{
    struct sbuf b = { 0 };
    char tmp[PATH_MAX + 32];

    if (!state_path) {
        return;
    }
    for (struct container *c = containers; c; c = c->next) {
        sb_printf(&b, "container c=%d iommu=%s groups=", c->id, iommu_name(c->iommu));
        for (int i = 0; i < c->ngroups; i++) {
            sb_printf(&b, "%s%d", i ? "," : "", c->groups[i]->id);
        }
        sb_printf(&b, " fd=%s enabled=%d\n", c->fd_open ? "open" : "closed",
                  c->enabled ? 1 : 0);
        for (struct cprereg *r = c->prereg; r; r = r->next) {
            sb_printf(&b, "memory c=%d vaddr=0x%" PRIx64 " size=0x%" PRIx64 "\n",
                      c->id, r->mem->ua, r->mem->entries << host_page_shift);
        }
        for (int t = 0; t < IOMMU_TABLE_GROUP_MAX_TABLES; t++) {
            struct table *tb = &c->tables[t];
            if (!tb->used) {
                continue;
            }
            sb_printf(&b, "window c=%d start=0x%" PRIx64 " size=0x%" PRIx64
                      " page_shift=%u levels=%u\n", c->id,
                      tb->offset << tb->page_shift, tb->size << tb->page_shift,
                      tb->page_shift, tb->levels);
        }
        for (int t = 0; t < IOMMU_TABLE_GROUP_MAX_TABLES; t++) {
            struct table *tb = &c->tables[t];
            size_t i = 0;
            if (!tb->used) {
                continue;
            }
            /* coalesce runs of entries contiguous in iova and vaddr */
            while (i < tb->n) {
                size_t j = i + 1;
                while (j < tb->n && tb->e[j].idx == tb->e[j - 1].idx + 1 &&
                       tb->e[j].ua == tb->e[j - 1].ua + (1ULL << tb->page_shift) &&
                       tb->e[j].perm == tb->e[i].perm) {
                    j++;
                }
                sb_printf(&b, "mapping c=%d iova=0x%" PRIx64 " size=0x%" PRIx64
                          " vaddr=0x%" PRIx64 " perm=%s\n", c->id,
                          tb->e[i].idx << tb->page_shift,
                          (uint64_t)(j - i) << tb->page_shift, tb->e[i].ua,
                          perm_name(tb->e[i].perm));
                i = j;
            }
        }
    }
    for (int i = 0; i < ngroups; i++) {
        struct group *g = &groups[i];
        if (!g->file_open && !g->c && !g->dev_fds) {
            continue;
        }
        sb_printf(&b, "group g=%d", g->id);
        if (g->c) {
            sb_printf(&b, " c=%d", g->c->id);
        }
        sb_printf(&b, " fd=%s\n", g->file_open ? "open" : "closed");
    }
    for (int i = 0; i < ndevices; i++) {
        struct device *d = &devices[i];
        if (d->open_count) {
            sb_printf(&b, "device dev=%s g=%d opens=%d\n", d->bdf, d->group_id,
                      d->open_count);
        }
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", state_path, (int)getpid());
    int fd = vm_real.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        size_t off = 0;
        while (off < b.n) {
            ssize_t w = write(fd, b.p + off, b.n - off);
            if (w <= 0) {
                break;
            }
            off += w;
        }
        vm_real.close(fd);
        rename(tmp, state_path);
    }
    free(b.p);
}

/* ------------------------------------------------------------------ */
/* configuration                                                       */
/* ------------------------------------------------------------------ */
static void cfg_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void cfg_err(const char *fmt, ...)
{
    va_list ap;
    if (config_error[0]) {
        return;         /* keep the first */
    }
    va_start(ap, fmt);
    vsnprintf(config_error, sizeof(config_error), fmt, ap);
    va_end(ap);
}

static bool parse_u64(const char *s, uint64_t *v)
{
    char *end;
    if (!*s || *s == '-') {
        return false;
    }
    errno = 0;
    unsigned long long x = strtoull(s, &end, 0);
    if (errno || *end) {
        return false;
    }
    *v = x;
    return true;
}

static bool is_pow2(uint64_t x)
{
    return x && !(x & (x - 1));
}

static struct group *group_get(int id, bool create)
{
    for (int i = 0; i < ngroups; i++) {
        if (groups[i].id == id) {
            return &groups[i];
        }
    }
    if (!create || ngroups >= VM_MAX_GROUPS) {
        return NULL;
    }
    groups[ngroups].id = id;
    return &groups[ngroups++];
}

static void dev_defaults(struct device *d)
{
    d->vendor = 0x8086;          /* an 82599-like 10GbE function */
    d->devid = 0x10fb;
    d->subven = 0x8086;
    d->subdev = 0x000c;
    d->class = 0x020000;
    d->rev = 0x01;
    memset(d->bars, 0, sizeof(d->bars));
    d->bars[0] = (struct bar){ BAR_MEM64, false, 0x80000 };
    d->bars[4] = (struct bar){ BAR_MEM64, false, 0x4000 };
    d->rom_size = 0;
    d->msix_vec = 64;
    d->msix_bar = 4;
    d->intx_pin = 1;
    d->pcie = true;
    d->msi = true;
    d->reset_works = true;
    d->memfd = -1;
    d->irq_type = IRQ_NONE;
}

/* "0000:01:00.0" */
static bool parse_bdf(const char *s, struct device *d)
{
    unsigned dom, bus, slot, fn;
    char tail;
    if (strlen(s) != 12 ||
        sscanf(s, "%4x:%2x:%2x.%1x%c", &dom, &bus, &slot, &fn, &tail) != 4 ||
        s[4] != ':' || s[7] != ':' || s[10] != '.' || slot > 0x1f || fn > 7) {
        return false;
    }
    for (int i = 0; i < 12; i++) {
        if (i != 4 && i != 7 && i != 10 && !isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    d->dom = dom;
    d->bus = bus;
    d->slot = slot;
    d->fn = fn;
    snprintf(d->bdf, sizeof(d->bdf), "%04x:%02x:%02x.%x", dom, bus, slot, fn);
    return true;
}

static bool parse_bar(struct device *d, int idx, char *val)
{
    char *save = NULL;
    char *tok = strtok_r(val, ":", &save);
    struct bar b = { BAR_MEM32, false, 0 };
    if (!tok || !parse_u64(tok, &b.size)) {
        return false;
    }
    while ((tok = strtok_r(NULL, ":", &save))) {
        if (!strcmp(tok, "m32")) {
            b.type = BAR_MEM32;
        } else if (!strcmp(tok, "m64")) {
            b.type = BAR_MEM64;
        } else if (!strcmp(tok, "io")) {
            b.type = BAR_IO;
        } else if (!strcmp(tok, "pref")) {
            b.pref = true;
        } else {
            return false;
        }
    }
    if (b.size == 0) {
        d->bars[idx] = (struct bar){ 0 };
        return true;
    }
    if (!is_pow2(b.size) || (b.type == BAR_IO && (b.size < 4 || b.size > 0x10000)) ||
        (b.type != BAR_IO && b.size < 16) ||
        (b.type == BAR_MEM32 && b.size > 0x80000000ULL) ||
        b.size > (1ULL << VFIO_PCI_OFFSET_SHIFT) ||
        (b.type == BAR_MEM64 && idx == 5) || (b.pref && b.type == BAR_IO)) {
        return false;
    }
    d->bars[idx] = b;
    return true;
}

static bool parse_dev_key(struct device *d, char *kv)
{
    char *eq = strchr(kv, '=');
    uint64_t v;
    if (!eq) {
        return false;
    }
    *eq = 0;
    char *k = kv, *val = eq + 1;
    if (!strncmp(k, "bar", 3) && k[3] >= '0' && k[3] <= '5' && !k[4]) {
        return parse_bar(d, k[3] - '0', val);
    }
    if (!parse_u64(val, &v)) {
        return false;
    }
    if (!strcmp(k, "vendor") && v <= 0xffff) {
        d->vendor = v;
    } else if (!strcmp(k, "device") && v <= 0xffff) {
        d->devid = v;
    } else if (!strcmp(k, "subvendor") && v <= 0xffff) {
        d->subven = v;
    } else if (!strcmp(k, "subdevice") && v <= 0xffff) {
        d->subdev = v;
    } else if (!strcmp(k, "class") && v <= 0xffffff) {
        d->class = v;
    } else if (!strcmp(k, "rev") && v <= 0xff) {
        d->rev = v;
    } else if (!strcmp(k, "rom") && (v == 0 || (is_pow2(v) && v >= 2048 &&
                                                 v <= 0x1000000))) {
        d->rom_size = v;
    } else if (!strcmp(k, "msix") && v <= 2048) {
        d->msix_vec = v;
    } else if (!strcmp(k, "msix_bar") && v <= 5) {
        d->msix_bar = v;
    } else if (!strcmp(k, "intx") && v <= 4) {
        d->intx_pin = v;
    } else if (!strcmp(k, "pcie") && v <= 1) {
        d->pcie = v;
    } else if (!strcmp(k, "msi") && v <= 1) {
        d->msi = v;
    } else if (!strcmp(k, "reset") && v <= 1) {
        d->reset_works = v;
    } else {
        return false;
    }
    return true;
}

static void build_config_space(struct device *d);

static void parse_devices(const char *spec)
{
    char *copy = strdup(spec);
    char *save = NULL;
    if (!copy) {
        cfg_err("out of memory");
        return;
    }
    for (char *ent = strtok_r(copy, ",", &save); ent;
         ent = strtok_r(NULL, ",", &save)) {
        char *save2 = NULL;
        char *head = strtok_r(ent, "+", &save2);
        char *at = head ? strchr(head, '@') : NULL;
        struct device *d;
        uint64_t gid;

        if (ndevices >= VM_MAX_DEVICES) {
            cfg_err("VFIO_MODEL_DEVICES: more than %d devices", VM_MAX_DEVICES);
            break;
        }
        d = &devices[ndevices];
        memset(d, 0, sizeof(*d));
        dev_defaults(d);
        if (!at) {
            cfg_err("VFIO_MODEL_DEVICES: entry '%s': expected "
                    "DDDD:BB:DD.F@GROUP[+key=value...]", head ? head : "");
            break;
        }
        *at = 0;
        if (!parse_bdf(head, d)) {
            cfg_err("VFIO_MODEL_DEVICES: '%s' is not a PCI address "
                    "(expected DDDD:BB:DD.F, hex)", head);
            break;
        }
        if (!parse_u64(at + 1, &gid) || gid > 0x7fffffff ||
            !isdigit((unsigned char)at[1]) || (at[1] == '0' && at[2] == 'x')) {
            cfg_err("VFIO_MODEL_DEVICES: %s: group '%s' is not a decimal "
                    "IOMMU group number", d->bdf, at + 1);
            break;
        }
        for (int i = 0; i < ndevices; i++) {
            if (!strcmp(devices[i].bdf, d->bdf)) {
                cfg_err("VFIO_MODEL_DEVICES: %s listed twice", d->bdf);
            }
        }
        d->group_id = (int)gid;
        for (char *kv = strtok_r(NULL, "+", &save2); kv;
             kv = strtok_r(NULL, "+", &save2)) {
            char shown[128];
            snprintf(shown, sizeof(shown), "%s", kv);
            if (!parse_dev_key(d, kv)) {
                cfg_err("VFIO_MODEL_DEVICES: %s: bad option '%s' (see "
                        "README: vendor,device,subvendor,subdevice,class,rev,"
                        "barN=SIZE[:m32|:m64|:io][:pref],rom,msix,msix_bar,"
                        "intx,pcie,msi,reset)", d->bdf, shown);
            }
        }
        if (d->bars[0].type == BAR_MEM64 && d->bars[1].type) {
            /* a 64-bit BAR consumes the next slot */
        }
        for (int i = 0; i < 5; i++) {
            if (d->bars[i].type == BAR_MEM64 && d->bars[i + 1].type) {
                cfg_err("VFIO_MODEL_DEVICES: %s: bar%d is 64-bit so bar%d "
                        "must be unset", d->bdf, i, i + 1);
            }
            if (d->bars[i].type == BAR_MEM64) {
                i++;
            }
        }
        if (d->msix_vec) {
            struct bar *b = &d->bars[d->msix_bar];
            uint64_t need = ((uint64_t)d->msix_vec * 16 + 0xfff) & ~0xfffULL;
            need += (((uint64_t)d->msix_vec + 63) / 64 * 8 + 0xfff) & ~0xfffULL;
            if (b->type == BAR_NONE || b->type == BAR_IO || b->size < need) {
                cfg_err("VFIO_MODEL_DEVICES: %s: msix table (%d vectors) needs a "
                        "memory bar%d of at least 0x%" PRIx64, d->bdf,
                        d->msix_vec, d->msix_bar, need);
            }
        }
        if (config_error[0]) {
            break;
        }
        if (!(d->group = group_get(d->group_id, true))) {
            cfg_err("VFIO_MODEL_DEVICES: more than %d groups", VM_MAX_GROUPS);
            break;
        }
        build_config_space(d);
        ndevices++;
    }
    free(copy);
}

static void parse_fail(const char *spec)
{
    char *copy = strdup(spec);
    char *save = NULL;
    if (!copy) {
        return;
    }
    for (char *ent = strtok_r(copy, ",", &save); ent;
         ent = strtok_r(NULL, ",", &save)) {
        char *f[4] = { 0 };
        int n = 0;
        char *save2 = NULL;
        for (char *t = strtok_r(ent, ":", &save2); t && n < 4;
             t = strtok_r(NULL, ":", &save2)) {
            f[n++] = t;
        }
        uint64_t nth;
        if (n < 2 || n > 3 || !parse_u64(f[1], &nth) || nth == 0 ||
            strlen(f[0]) >= sizeof(fail_rules[0].op)) {
            cfg_err("VFIO_MODEL_FAIL: bad rule '%s' (expected OP:NTH[:ERRNO])",
                    f[0] ? f[0] : "");
            break;
        }
        int e = ENOMEM;
        if (n == 3 && (e = parse_errno(f[2])) < 0) {
            cfg_err("VFIO_MODEL_FAIL: unknown errno '%s'", f[2]);
            break;
        }
        if (nfail_rules >= MAX_FAIL_RULES) {
            cfg_err("VFIO_MODEL_FAIL: more than %d rules", MAX_FAIL_RULES);
            break;
        }
        struct fail_rule *r = &fail_rules[nfail_rules++];
        for (size_t i = 0; f[0][i]; i++) {
            r->op[i] = toupper((unsigned char)f[0][i]);
        }
        if (!strcmp(r->op, "ANY")) {
            strcpy(r->op, "any");
        }
        r->nth = nth;
        r->err = e;
    }
    free(copy);
}

/* ------------------------------------------------------------------ */
/* sysfs shadow tree                                                   */
/* ------------------------------------------------------------------ */
static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void write_file(const char *path, const char *content)
{
    int fd = vm_real.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        ssize_t r = write(fd, content, strlen(content));
        (void)r;
        vm_real.close(fd);
    }
}

static void mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    }
    mkdir(tmp, 0755);
}

static void build_shadow(void)
{
    const char *base = getenv("VFIO_MODEL_TMPDIR");
    char p[2048], q[512], v[64];

    if (!base || !*base) {
        base = getenv("TMPDIR");
    }
    if (!base || !*base || strlen(base) > 400) {
        base = "/tmp";
    }
    snprintf(shadow_root, sizeof(shadow_root), "%.400s/vfio-model.XXXXXX", base);
    if (!mkdtemp(shadow_root)) {
        cfg_err("cannot create the model's sysfs directory under %s: %.400s", base,
                strerror(errno));
        shadow_root[0] = 0;
        return;
    }
    snprintf(p, sizeof(p), "%.400s/sys/bus/pci/drivers/vfio-pci", shadow_root);
    mkdirs(p);
    snprintf(p, sizeof(p), "%.400s/sys/bus/pci/devices", shadow_root);
    mkdirs(p);
    snprintf(p, sizeof(p), "%.400s/dev/vfio", shadow_root);
    mkdirs(p);
    snprintf(p, sizeof(p), "%.400s/dev/vfio/vfio", shadow_root);
    write_file(p, "");
    for (int i = 0; i < ngroups; i++) {
        snprintf(p, sizeof(p), "%.400s/dev/vfio/%d", shadow_root, groups[i].id);
        write_file(p, "");
        snprintf(p, sizeof(p), "%.400s/sys/kernel/iommu_groups/%d/devices",
                 shadow_root, groups[i].id);
        mkdirs(p);
    }
    for (int i = 0; i < ndevices; i++) {
        struct device *d = &devices[i];
        char devdir[1024];
        snprintf(devdir, sizeof(devdir), "%s/sys/devices/pci%04x:%02x/%.400s",
                 shadow_root, d->dom, d->bus, (const char *)d->bdf);
        mkdirs(devdir);
        snprintf(p, sizeof(p), "%s/sys/bus/pci/devices/%.400s", shadow_root, d->bdf);
        snprintf(q, sizeof(q), "../../../devices/pci%04x:%02x/%.400s", d->dom,
                 d->bus, d->bdf);
        if (symlink(q, p)) {
            cfg_err("symlink %s: %.400s", p, strerror(errno));
        }
        snprintf(p, sizeof(p), "%s/sys/kernel/iommu_groups/%d/devices/%.400s",
                 shadow_root, d->group_id, d->bdf);
        snprintf(q, sizeof(q), "../../../../devices/pci%04x:%02x/%.400s", d->dom,
                 d->bus, d->bdf);
        if (symlink(q, p)) {
            cfg_err("symlink %s: %.400s", p, strerror(errno));
        }
#define LINK(name, target) do { \
        snprintf(p, sizeof(p), "%s/%.400s", devdir, name); \
        if (symlink(target, p)) { cfg_err("symlink %s: %.400s", p, strerror(errno)); } \
    } while (0)
#define ATTR(name, ...) do { \
        snprintf(p, sizeof(p), "%s/%.400s", devdir, name); \
        snprintf(v, sizeof(v), __VA_ARGS__); write_file(p, v); \
    } while (0)
        snprintf(q, sizeof(q), "../../../kernel/iommu_groups/%d", d->group_id);
        LINK("iommu_group", q);
        LINK("subsystem", "../../../bus/pci");
        LINK("driver", "../../../bus/pci/drivers/vfio-pci");
        ATTR("vendor", "0x%04x\n", d->vendor);
        ATTR("device", "0x%04x\n", d->devid);
        ATTR("subsystem_vendor", "0x%04x\n", d->subven);
        ATTR("subsystem_device", "0x%04x\n", d->subdev);
        ATTR("class", "0x%06x\n", d->class);
        ATTR("revision", "0x%02x\n", d->rev);
        ATTR("numa_node", "-1\n");
        ATTR("enable", "0\n");
        ATTR("reset_method", "%.400s\n", d->reset_works ? "flr" : "");
#undef LINK
#undef ATTR
    }
}

static void vm_destroy(void);
static bool exit_close;     /* vm_close() called for process exit */

static void do_init(void)
{
#define RESOLVE(field, name) vm_real.field = (__typeof__(vm_real.field))dlsym(RTLD_NEXT, name)
    RESOLVE(open, "open");
    RESOLVE(openat, "openat");
    RESOLVE(close, "close");
    RESOLVE(ioctl, "ioctl");
    RESOLVE(pread, "pread");
    RESOLVE(pwrite, "pwrite");
    RESOLVE(readlink, "readlink");
    RESOLVE(readlinkat, "readlinkat");
    RESOLVE(realpath, "realpath");
    RESOLVE(stat, "stat");
    RESOLVE(lstat, "lstat");
    RESOLVE(fstatat, "fstatat");
    RESOLVE(statx, "statx");
    RESOLVE(access, "access");
    RESOLVE(faccessat, "faccessat");
    RESOLVE(opendir, "opendir");
    RESOLVE(fopen, "fopen");
#undef RESOLVE

    long ps = sysconf(_SC_PAGESIZE);
    host_page_shift = ps > 0 ? (unsigned)__builtin_ctzl(ps) : 12;

    const char *s;
    if ((s = getenv("VFIO_MODEL_LOG")) && *s) {
        log_fd = vm_real.open(s, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (log_fd < 0) {
            fprintf(stderr, "vfio-model: cannot open VFIO_MODEL_LOG %s: %s\n", s,
                    strerror(errno));
        }
    }
    if ((s = getenv("VFIO_MODEL_STATE")) && *s) {
        state_path = strdup(s);
    }
    if ((s = getenv("VFIO_MODEL_FLAVOUR")) && *s) {
        if (!strcmp(s, "power7")) {
            flavour_power7 = true;
        } else if (strcmp(s, "power8")) {
            cfg_err("VFIO_MODEL_FLAVOUR: '%s' is neither power8 nor power7", s);
        }
    }
    if ((s = getenv("VFIO_MODEL_IOMMU")) && *s) {
        if (!strcmp(s, "v1")) {
            offer_v2 = false;
        } else if (strcmp(s, "v2")) {
            cfg_err("VFIO_MODEL_IOMMU: '%s' is neither v2 nor v1", s);
        }
    }
    if ((s = getenv("VFIO_MODEL_EEH")) && *s) {
        if (!strcmp(s, "0")) {
            eeh_enabled = false;
        } else if (strcmp(s, "1")) {
            cfg_err("VFIO_MODEL_EEH: '%s' is neither 0 nor 1", s);
        }
    }
    if ((s = getenv("VFIO_MODEL_DMA32_SIZE")) && *s) {
        uint64_t v;
        if (!parse_u64(s, &v) || !is_pow2(v) || v < SZ_256M || v > 0x80000000ULL) {
            cfg_err("VFIO_MODEL_DMA32_SIZE: '%s' must be a power of two "
                    "between 0x10000000 and 0x80000000", s);
        } else {
            dma32_size = v;
        }
    }
    if ((s = getenv("VFIO_MODEL_PGSIZES")) && *s) {
        uint64_t v;
        if (!parse_u64(s, &v) || !(v & SZ_4K)) {
            cfg_err("VFIO_MODEL_PGSIZES: '%s' must be a bitmap including 4K", s);
        } else {
            ddw_pgsizes = v;
        }
    }
    if ((s = getenv("VFIO_MODEL_FAIL")) && *s) {
        parse_fail(s);
    }
    if ((s = getenv("VFIO_MODEL_DEVICES")) && *s) {
        parse_devices(s);
    }
    if (config_error[0]) {
        /* a bad configuration models a host with no VFIO devices at all */
        ndevices = 0;
        ngroups = 0;
        fprintf(stderr, "vfio-model: configuration error: %s\n", config_error);
        vm_log("error op=CONFIG errno=EINVAL msg=\"%s\"", config_error);
    }
    state_write();
    atexit(vm_destroy);
}

void vm_init(void)
{
    pthread_once(&vm_once, do_init);
}

__attribute__((constructor)) static void vm_ctor(void)
{
    vm_init();
}

/*
 * The sysfs tree is made on first use, not at load: a shell that is
 * preloaded too and only execs QEMU must not leave one behind.
 */
const char *vm_shadow_root(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, build_shadow);
    return shadow_root;
}

/* ------------------------------------------------------------------ */
/* path ownership                                                      */
/* ------------------------------------------------------------------ */
static struct device *dev_by_name(const char *s, size_t len)
{
    for (int i = 0; i < ndevices; i++) {
        if (strlen(devices[i].bdf) == len && !strncmp(devices[i].bdf, s, len)) {
            return &devices[i];
        }
    }
    return NULL;
}

/* does @path start with @prefix followed by a configured BDF (or group)? */
static bool owned(const char *path)
{
    static const char *pfx_dev = "/sys/bus/pci/devices/";
    static const char *pfx_grp = "/sys/kernel/iommu_groups/";
    static const char *pfx_pci = "/sys/devices/pci";
    size_t l;
    const char *rest, *end;

    if (!strncmp(path, pfx_dev, (l = strlen(pfx_dev)))) {
        rest = path + l;
        end = strchrnul(rest, '/');
        return dev_by_name(rest, end - rest) != NULL;
    }
    if (!strncmp(path, pfx_grp, (l = strlen(pfx_grp)))) {
        char *e;
        rest = path + l;
        if (!isdigit((unsigned char)*rest)) {
            return false;
        }
        long g = strtol(rest, &e, 10);
        return (*e == '/' || !*e) && group_get((int)g, false) != NULL;
    }
    if (!strncmp(path, pfx_pci, (l = strlen(pfx_pci)))) {
        /* /sys/devices/pciDDDD:BB/<bdf>... */
        rest = strchr(path + l, '/');
        if (!rest) {
            return false;
        }
        rest++;
        end = strchrnul(rest, '/');
        struct device *d = dev_by_name(rest, end - rest);
        char want[32];
        if (!d) {
            return false;
        }
        snprintf(want, sizeof(want), "%04x:%02x/", d->dom, d->bus);
        return !strncmp(path + l, want, strlen(want));
    }
    if (!strcmp(path, "/dev/vfio/vfio")) {
        return true;
    }
    if (!strncmp(path, "/dev/vfio/", 10) && isdigit((unsigned char)path[10])) {
        char *e;
        long g = strtol(path + 10, &e, 10);
        return !*e && group_get((int)g, false) != NULL;
    }
    return false;
}

const char *vm_reroot(const char *path, char *buf, size_t len)
{
    if (strncmp(path, "/sys/", 5) != 0 && strncmp(path, "/dev/vfio/", 10) != 0) {
        return NULL;
    }
    if (!owned(path) || !vm_shadow_root()[0]) {
        return NULL;
    }
    if ((size_t)snprintf(buf, len, "%s%s", shadow_root, path) >= len) {
        return NULL;
    }
    return buf;
}

/* ------------------------------------------------------------------ */
/* fd table                                                            */
/* ------------------------------------------------------------------ */
int vm_fd_kind(int fd)
{
    if (fd < 0 || fd >= VM_MAX_FD) {
        return VM_FD_NONE;
    }
    return __atomic_load_n(&fdtab[fd].kind, __ATOMIC_ACQUIRE);
}

static void fd_set_kind(int fd, int kind, void *obj)
{
    fdtab[fd].obj = obj;
    __atomic_store_n(&fdtab[fd].kind, kind, __ATOMIC_RELEASE);
}

void vm_forget_fd(int fd)
{
    if (vm_fd_kind(fd)) {
        /* the fd was closed behind our back (close_range, dup2...) */
        pthread_mutex_lock(&vm_lock);
        fd_set_kind(fd, VM_FD_NONE, NULL);
        pthread_mutex_unlock(&vm_lock);
    }
}

static int new_anon_fd(const char *name, bool cloexec)
{
    int fd = (int)syscall(SYS_memfd_create, name, cloexec ? MFD_CLOEXEC : 0);
    if (fd >= VM_MAX_FD) {
        vm_real.close(fd);
        errno = EMFILE;
        return -1;
    }
    return fd;
}

/* ------------------------------------------------------------------ */
/* fault injection                                                     */
/* ------------------------------------------------------------------ */
static int fail_check(const char *op)
{
    int i;
    unsigned long cnt = 0;

    any_count++;
    for (i = 0; i < nop_counts; i++) {
        if (!strcmp(op_counts[i].op, op)) {
            break;
        }
    }
    if (i == nop_counts && nop_counts < MAX_OPS) {
        snprintf(op_counts[i].op, sizeof(op_counts[i].op), "%s", op);
        nop_counts++;
    }
    if (i < nop_counts) {
        cnt = ++op_counts[i].count;
    }
    for (int r = 0; r < nfail_rules; r++) {
        if (!strcmp(fail_rules[r].op, "any") ? fail_rules[r].nth == any_count
                                             : (!strcmp(fail_rules[r].op, op) &&
                                                fail_rules[r].nth == cnt)) {
            return fail_rules[r].err;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* sPAPR TCE IOMMU model                                               */
/* ------------------------------------------------------------------ */
static bool tbl_has_groups(struct container *c)
{
    for (int i = 0; i < c->ngroups; i++) {
        if (c->groups[i]->drv_attached) {
            return true;
        }
    }
    return false;
}

/* lower bound of @idx in the sorted entry array */
static size_t tce_lb(struct table *t, uint64_t idx)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->e[mid].idx < idx) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static void tce_unuse(struct container *c, struct tce *e)
{
    /* tce_iommu_unuse_page_v2 -> mm_iommu_mapped_dec */
    if (c->iommu == IOMMU_V2 && e->mem && e->mem->mapped > 1) {
        e->mem->mapped--;
    }
}

/* tce_iommu_clear(): drop entries [idx, idx+pages); returns count dropped */
static uint64_t tce_clear(struct container *c, struct table *t, uint64_t idx,
                          uint64_t pages)
{
    size_t lo = tce_lb(t, idx);
    size_t hi = tce_lb(t, idx + pages);
    if (lo == hi) {
        return 0;
    }
    for (size_t i = lo; i < hi; i++) {
        tce_unuse(c, &t->e[i]);
    }
    memmove(&t->e[lo], &t->e[hi], (t->n - hi) * sizeof(t->e[0]));
    t->n -= hi - lo;
    return hi - lo;
}

static int tce_set(struct table *t, uint64_t idx, uint64_t ua, int perm,
                   struct prereg *mem, struct tce *old, bool *had_old)
{
    size_t pos = tce_lb(t, idx);
    *had_old = false;
    if (pos < t->n && t->e[pos].idx == idx) {
        *old = t->e[pos];
        *had_old = true;
        t->e[pos] = (struct tce){ idx, ua, (uint8_t)perm, mem };
        return 0;
    }
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 64;
        struct tce *ne = realloc(t->e, ncap * sizeof(*ne));
        if (!ne) {
            return -ENOMEM;
        }
        t->e = ne;
        t->cap = ncap;
    }
    memmove(&t->e[pos + 1], &t->e[pos], (t->n - pos) * sizeof(t->e[0]));
    t->e[pos] = (struct tce){ idx, ua, (uint8_t)perm, mem };
    t->n++;
    return 0;
}

static void table_free(struct table *t)
{
    free(t->e);
    memset(t, 0, sizeof(*t));
}

/* tce_iommu_find_table() */
static int find_table(struct container *c, uint64_t ioba, struct table **pt)
{
    for (int i = 0; i < IOMMU_TABLE_GROUP_MAX_TABLES; i++) {
        struct table *t = &c->tables[i];
        if (t->used) {
            uint64_t entry = ioba >> t->page_shift;
            if (t->offset <= entry && entry < t->offset + t->size) {
                *pt = t;
                return i;
            }
        }
    }
    return -1;
}

static unsigned ilog2_u64(uint64_t v)
{
    return 63 - __builtin_clzll(v);
}

/* pnv_pci_ioda2_get_table_size() */
static uint64_t get_table_size(unsigned page_shift, uint64_t window_size,
                               unsigned levels)
{
    uint64_t bytes = 0;
    if (!levels || levels > POWERNV_IOMMU_MAX_LEVELS || !is_pow2(window_size)) {
        return 0;
    }
    unsigned window_shift = ilog2_u64(window_size);
    if (window_shift < page_shift) {
        return 0;     /* model: the kernel's unsigned arithmetic is undefined here */
    }
    unsigned entries_shift = window_shift - page_shift;
    unsigned table_shift = entries_shift + 3;
    uint64_t tce_table_size = table_shift >= 63 ? (1ULL << 62) : (1ULL << table_shift);
    if (tce_table_size < 0x1000) {
        tce_table_size = 0x1000;
    }
    entries_shift = (entries_shift + levels - 1) / levels;
    table_shift = entries_shift + 3;
    if (table_shift < host_page_shift) {
        table_shift = host_page_shift;
    }
    uint64_t direct = 1ULL << table_shift;
    for (; levels; --levels) {
        bytes += (tce_table_size + direct - 1) & ~(direct - 1);
        tce_table_size /= direct;
        tce_table_size <<= 3;
        if (tce_table_size < direct) {
            tce_table_size = direct;
        }
    }
    return bytes + bytes;
}

/* tce_iommu_create_window() + pnv_pci_ioda2_create_table() */
static long create_window(struct container *c, unsigned page_shift,
                          uint64_t window_size, unsigned levels,
                          uint64_t *start_addr)
{
    int num = -1;
    for (int i = 0; i < IOMMU_TABLE_GROUP_MAX_TABLES; i++) {
        if (!c->tables[i].used) {
            num = i;
            break;
        }
    }
    if (num < 0) {
        return -ENOSPC;                     /* tce_iommu_find_free_table */
    }
    if (page_shift >= 64 || !(ddw_pgsizes & (1ULL << page_shift))) {
        return -EINVAL;
    }
    if (flavour_power7) {
        return -EPERM;                      /* no create_table/set_window ops */
    }
    if (!get_table_size(page_shift, window_size, levels)) {
        return -EINVAL;                     /* tce_iommu_create_table */
    }
    /* pnv_pci_ioda2_table_alloc_pages() */
    unsigned entries_shift = ilog2_u64(window_size) - page_shift;
    unsigned level_shift = (entries_shift + levels - 1) / levels + 3;
    if (level_shift < host_page_shift) {
        level_shift = host_page_shift;
    }
    if ((level_shift - 3) * levels + page_shift >= 55) {
        return -EINVAL;
    }
    uint64_t bus_offset = num ? TCE_BYPASS_BASE : 0 /* tce32_start */;
    struct table *t = &c->tables[num];
    memset(t, 0, sizeof(*t));
    t->used = true;
    t->page_shift = page_shift;
    t->offset = bus_offset >> page_shift;
    t->size = window_size >> page_shift;
    t->levels = levels;
    *start_addr = bus_offset;
    return 0;
}

/* tce_iommu_create_default_window() */
static long create_default_window(struct container *c)
{
    uint64_t start = 0;
    long ret;
    if (!c->def_window_pending) {
        return 0;
    }
    if (!tbl_has_groups(c)) {
        return -ENODEV;
    }
    ret = create_window(c, 12, dma32_size, 1, &start);
    if (!ret) {
        c->def_window_pending = false;
        vm_log("window-create c=%d start=0x%" PRIx64 " size=0x%" PRIx64
               " page_shift=12 levels=1 default=1", c->id, start, dma32_size);
    }
    return ret;
}

static void log_table_clear(struct container *c, struct table *t, uint64_t n,
                            const char *why, int gid)
{
    if (n) {
        vm_log("table-clear c=%d start=0x%" PRIx64 " entries=0x%" PRIx64
               " reason=%s g=%d", c->id, t->offset << t->page_shift, n, why, gid);
    }
}

/* tce_iommu_attach_group() */
static long attach_group(struct container *c, struct group *g)
{
    bool v2 = c->iommu == IOMMU_V2;
    /* v2 requires full support of dynamic DMA windows */
    if (v2 && flavour_power7) {
        return -EINVAL;
    }
    /* v1 reuses TCE tables and does not share them among PEs */
    if (!v2 && tbl_has_groups(c)) {
        return -EBUSY;
    }
    if (g->drv_attached) {
        return -EBUSY;
    }
    if (!tbl_has_groups(c)) {
        if (flavour_power7) {
            /* the group's platform table becomes the container's (v1) */
            struct table *t = &c->tables[0];
            memset(t, 0, sizeof(*t));
            t->used = true;
            t->platform = true;
            t->page_shift = 12;
            t->offset = 0;
            t->size = dma32_size >> 12;
            t->levels = 1;
        } else if (!c->tables[0].used) {
            c->def_window_pending = true;
        }
    }
    g->drv_attached = true;
    return 0;
}

/* tce_iommu_detach_group() -> tce_iommu_release_ownership() */
static void detach_group_drv(struct container *c, struct group *g)
{
    if (!g->drv_attached) {
        return;
    }
    g->drv_attached = false;
    for (int i = 0; i < IOMMU_TABLE_GROUP_MAX_TABLES; i++) {
        struct table *t = &c->tables[i];
        if (t->used) {
            uint64_t n = tce_clear(c, t, t->offset, t->size);
            log_table_clear(c, t, n, "group-detach", g->id);
            if (t->platform) {
                table_free(t);
            }
        }
    }
}

static void prereg_release(struct prereg *m)
{
    for (struct prereg **pp = &mm_prereg; *pp; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            free(m);
            return;
        }
    }
}

/* mm_iommu_put() */
static long prereg_put(struct prereg *m)
{
    if (m->used == 0) {
        return -ENOENT;
    }
    if (--m->used) {
        return 0;
    }
    if (m->mapped != 1) {
        ++m->used;
        return -EBUSY;
    }
    m->mapped = 0;
    prereg_release(m);
    return 0;
}

/* tce_iommu_release() */
static void iommu_release(struct container *c)
{
    for (int i = 0; i < IOMMU_TABLE_GROUP_MAX_TABLES; i++) {
        struct table *t = &c->tables[i];
        if (t->used) {
            tce_clear(c, t, t->offset, t->size);
            table_free(t);
        }
    }
    while (c->prereg) {
        struct cprereg *r = c->prereg;
        c->prereg = r->next;
        prereg_put(r->mem);         /* WARN_ON in the kernel if it fails */
        free(r);
    }
    vm_log("iommu-release c=%d type=%s", c->id, iommu_name(c->iommu));
    c->iommu = IOMMU_NONE;
    c->enabled = false;
    c->def_window_pending = false;
    c->mm_set = false;
}

static void container_maybe_free(struct container *c)
{
    if (c->fd_open || c->ngroups) {
        return;
    }
    if (c->iommu != IOMMU_NONE) {
        iommu_release(c);
    }
    for (struct container **pp = &containers; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    free(c);
}

/* vfio_group_detach_container() */
static void group_detach(struct group *g)
{
    struct container *c = g->c;
    if (c->iommu != IOMMU_NONE) {
        detach_group_drv(c, g);
    }
    for (int i = 0; i < c->ngroups; i++) {
        if (c->groups[i] == g) {
            memmove(&c->groups[i], &c->groups[i + 1],
                    (c->ngroups - i - 1) * sizeof(c->groups[0]));
            c->ngroups--;
            break;
        }
    }
    g->c = NULL;
    g->container_users = 0;
    vm_log("group-detach g=%d c=%d", g->id, c->id);
    /* Detaching the last group deprivileges a container, remove iommu */
    if (c->iommu != IOMMU_NONE && c->ngroups == 0) {
        iommu_release(c);
    }
    container_maybe_free(c);
}

/* ------------------------------------------------------------------ */
/* ioctl plumbing                                                      */
/* ------------------------------------------------------------------ */
struct call {
    const char *op;
    char ctx[384];
    size_t len;
};

static void ctx_add(struct call *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ctx_add(struct call *k, const char *fmt, ...)
{
    va_list ap;
    if (k->len >= sizeof(k->ctx) - 1) {
        return;
    }
    va_start(ap, fmt);
    int n = vsnprintf(k->ctx + k->len, sizeof(k->ctx) - k->len, fmt, ap);
    va_end(ap);
    if (n > 0) {
        k->len += n;
        if (k->len >= sizeof(k->ctx)) {
            k->len = sizeof(k->ctx) - 1;
        }
    }
}

static int fd_valid(int fd)
{
    return fd >= 0 && fcntl(fd, F_GETFD) >= 0;
}

/* eventfd_ctx_fdget(): -EBADF if not an fd, -EINVAL if not an eventfd */
static int check_eventfd(int fd)
{
    char path[64], target[64];
    if (!fd_valid(fd)) {
        return -EBADF;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ssize_t n = vm_real.readlink(path, target, sizeof(target) - 1);
    if (n < 0) {
        return 0;       /* no /proc: be lenient */
    }
    target[n] = 0;
    return strcmp(target, "anon_inode:[eventfd]") ? -EINVAL : 0;
}

/* ---- container ---- */
static long tce_check_extension(unsigned long arg)
{
    switch (arg) {
    case VFIO_SPAPR_TCE_IOMMU:
        return 1;
    case VFIO_SPAPR_TCE_v2_IOMMU:
        return offer_v2 ? 1 : 0;
    case VFIO_EEH:
        return eeh_enabled ? 1 : 0;
    default:
        return 0;
    }
}

static long c_set_iommu(struct container *c, unsigned long arg, struct call *k)
{
    ctx_add(k, " type=%s", arg == IOMMU_V2 ? "spapr-v2" : arg == IOMMU_V1 ?
            "spapr-v1" : arg == VFIO_TYPE1_IOMMU ? "type1" :
            arg == VFIO_TYPE1v2_IOMMU ? "type1v2" : "other");
    /* vfio_ioctl_set_iommu() */
    if (c->ngroups == 0 || c->iommu != IOMMU_NONE) {
        return -EINVAL;
    }
    if (tce_check_extension(arg) <= 0 || arg == VFIO_EEH) {
        return -ENODEV;             /* no driver claims it */
    }
    c->iommu = (int)arg;            /* tce_iommu_open() */
    for (int i = 0; i < c->ngroups; i++) {
        long ret = attach_group(c, c->groups[i]);
        if (ret) {
            for (int j = 0; j < c->ngroups; j++) {
                c->groups[j]->drv_attached = false;
            }
            for (int t = 0; t < IOMMU_TABLE_GROUP_MAX_TABLES; t++) {
                table_free(&c->tables[t]);
            }
            c->iommu = IOMMU_NONE;
            c->def_window_pending = false;
            return ret;
        }
    }
    vm_log("set-iommu c=%d type=%s", c->id, iommu_name(c->iommu));
    return 0;
}

static long c_get_info(struct container *c, void *arg, struct call *k)
{
    (void)k;
    struct vfio_iommu_spapr_tce_info info;
    size_t minsz = offsetof(struct vfio_iommu_spapr_tce_info, dma32_window_size) +
                   sizeof(info.dma32_window_size);
    size_t ddwsz = offsetof(struct vfio_iommu_spapr_tce_info, ddw) + sizeof(info.ddw);
    if (!tbl_has_groups(c)) {
        return -ENXIO;
    }
    if (!arg) {
        return -EFAULT;
    }
    memcpy(&info, arg, minsz);
    if (info.argsz < minsz) {
        return -EINVAL;
    }
    info.dma32_window_start = 0;
    info.dma32_window_size = dma32_size;
    info.flags = 0;
    memset(&info.ddw, 0, sizeof(info.ddw));
    if (!flavour_power7 && c->iommu == IOMMU_V2) {
        info.flags |= VFIO_IOMMU_SPAPR_INFO_DDW;
        info.ddw.pgsizes = ddw_pgsizes;
        info.ddw.max_dynamic_windows_supported = IOMMU_TABLE_GROUP_MAX_TABLES;
        info.ddw.levels = POWERNV_IOMMU_MAX_LEVELS;
    }
    if (info.argsz >= ddwsz) {
        minsz = ddwsz;
    }
    memcpy(arg, &info, minsz);
    return 0;
}

/* is [ua, ua+len) mapped in this process? (pin_user_pages would fail) */
static bool range_mapped(uint64_t ua, uint64_t len)
{
    long ps = 1L << host_page_shift;
    unsigned char vec;
    for (uint64_t p = ua & ~(uint64_t)(ps - 1); p < ua + len; p += ps) {
        if (mincore((void *)(uintptr_t)p, ps, &vec) && errno == ENOMEM) {
            return false;
        }
        if (p + ps < p) {
            break;
        }
    }
    return true;
}

/*
 * The entries of @t that [iova, iova + size) covers. The iova check follows
 * iommu_tce_{put,clear}_param_check(), a boolean '||' of -EINVALs, so an
 * unaligned iova returns 1. The kernel does not check the window's end and
 * would index past the table; the model refuses.
 */
static long tce_entries(struct table *t, uint64_t iova, uint64_t size,
                        struct call *k, uint64_t *entry, uint64_t *pages)
{
    if (iova & ((1ULL << t->page_shift) - 1)) {
        ctx_add(k, " ret=1");
        return 1;
    }
    *entry = iova >> t->page_shift;
    *pages = size >> t->page_shift;
    if (*entry + *pages > t->offset + t->size || *entry + *pages < *entry) {
        ctx_add(k, " reason=past-window-end");
        return -EINVAL;
    }
    return 0;
}

static long c_map(struct container *c, void *arg, struct call *k)
{
    struct vfio_iommu_type1_dma_map p;
    size_t minsz = offsetof(struct vfio_iommu_type1_dma_map, size) + sizeof(p.size);
    struct table *t;
    long ret;

    if (!arg) {
        return -EFAULT;
    }
    memcpy(&p, arg, minsz);
    ctx_add(k, " iova=0x%llx size=0x%llx vaddr=0x%llx perm=%s",
            (unsigned long long)p.iova, (unsigned long long)p.size,
            (unsigned long long)p.vaddr,
            perm_name((p.flags & VFIO_DMA_MAP_FLAG_READ ? PERM_R : 0) |
                      (p.flags & VFIO_DMA_MAP_FLAG_WRITE ? PERM_W : 0)));
    if (!c->enabled) {
        return -EPERM;
    }
    if (p.argsz < minsz) {
        return -EINVAL;
    }
    if (p.flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)) {
        return -EINVAL;
    }
    if ((ret = create_default_window(c))) {
        return ret;
    }
    if (find_table(c, p.iova, &t) < 0) {
        return -ENXIO;
    }
    uint64_t pmask = (1ULL << t->page_shift) - 1;
    if ((p.size & pmask) || (p.vaddr & pmask)) {
        return -EINVAL;
    }
    int perm = (p.flags & VFIO_DMA_MAP_FLAG_READ ? PERM_R : 0) |
               (p.flags & VFIO_DMA_MAP_FLAG_WRITE ? PERM_W : 0);
    if (!perm) {
        return -EINVAL;
    }
    uint64_t entry, pages;
    if ((ret = tce_entries(t, p.iova, p.size, k, &entry, &pages))) {
        return ret;
    }
    uint64_t i;
    ret = 0;
    for (i = 0; i < pages; i++) {
        uint64_t ua = p.vaddr + (i << t->page_shift);
        struct prereg *mem = NULL;
        if (c->iommu == IOMMU_V2) {
            /* tce_iommu_build_v2 -> tce_iommu_prereg_ua_to_hpa */
            for (struct prereg *m = mm_prereg; m; m = m->next) {
                if (m->ua <= ua && ua + (1ULL << t->page_shift) <=
                                   m->ua + (m->entries << host_page_shift)) {
                    mem = m;
                    break;
                }
            }
            if (!mem || t->page_shift > mem->pageshift) {
                ctx_add(k, " reason=%s", mem ? "page-size" : "not-preregistered");
                ret = -EINVAL;
                break;
            }
            if (mem->mapped == 0) {
                break;      /* mm_iommu_mapped_inc failed: stops, returns 0 */
            }
            mem->mapped++;
        } else {
            /* tce_iommu_build -> tce_iommu_use_page (pin_user_pages_fast) */
            if (!range_mapped(ua, 1ULL << t->page_shift)) {
                ret = -EFAULT;
                break;
            }
            if (t->page_shift > host_page_shift) {
                ret = -EPERM;   /* tce_page_is_contained() */
                break;
            }
        }
        struct tce old;
        bool had_old;
        long r = tce_set(t, entry + i, ua, perm, mem, &old, &had_old);
        if (r) {
            if (mem) {
                mem->mapped--;
            }
            ret = r;
            break;
        }
        if (had_old) {
            tce_unuse(c, &old);
        }
    }
    if (ret) {
        tce_clear(c, t, entry, i);
        return ret;
    }
    vm_log("map c=%d iova=0x%llx size=0x%llx vaddr=0x%llx perm=%s", c->id,
           (unsigned long long)p.iova, (unsigned long long)(i << t->page_shift),
           (unsigned long long)p.vaddr, perm_name(perm));
    return 0;
}

static long c_unmap(struct container *c, void *arg, struct call *k)
{
    struct vfio_iommu_type1_dma_unmap p;
    size_t minsz = offsetof(struct vfio_iommu_type1_dma_unmap, size) + sizeof(p.size);
    struct table *t;
    long ret;

    if (!arg) {
        return -EFAULT;
    }
    memcpy(&p, arg, minsz);
    ctx_add(k, " iova=0x%llx size=0x%llx", (unsigned long long)p.iova,
            (unsigned long long)p.size);
    if (!c->enabled) {
        return -EPERM;
    }
    if (p.argsz < minsz) {
        return -EINVAL;
    }
    if (p.flags) {
        return -EINVAL;
    }
    if ((ret = create_default_window(c))) {
        return ret;
    }
    if (find_table(c, p.iova, &t) < 0) {
        return -ENXIO;
    }
    uint64_t pmask = (1ULL << t->page_shift) - 1;
    if (p.size & pmask) {
        return -EINVAL;
    }
    uint64_t entry, pages;
    if ((ret = tce_entries(t, p.iova, p.size, k, &entry, &pages))) {
        return ret;
    }
    uint64_t n = tce_clear(c, t, entry, pages);
    vm_log("unmap c=%d iova=0x%llx size=0x%llx cleared=0x%" PRIx64, c->id,
           (unsigned long long)p.iova, (unsigned long long)p.size, n);
    return 0;
}

static long c_register(struct container *c, void *arg, bool reg, struct call *k)
{
    struct vfio_iommu_spapr_register_memory p;
    size_t minsz = offsetof(struct vfio_iommu_spapr_register_memory, size) +
                   sizeof(p.size);
    uint64_t pmask = (1ULL << host_page_shift) - 1;

    if (c->iommu != IOMMU_V2) {
        return -ENOTTY;
    }
    if (reg) {
        c->mm_set = true;
    }
    if (!arg) {
        return -EFAULT;
    }
    memcpy(&p, arg, minsz);
    ctx_add(k, " vaddr=0x%llx size=0x%llx", (unsigned long long)p.vaddr,
            (unsigned long long)p.size);
    if (p.argsz < minsz) {
        return -EINVAL;
    }
    if (p.flags) {
        return -EINVAL;
    }
    uint64_t entries = p.size >> host_page_shift;
    struct prereg *mem = NULL;
    for (struct prereg *m = mm_prereg; m; m = m->next) {  /* mm_iommu_get */
        if (m->ua == p.vaddr && m->entries == entries) {
            mem = m;
            break;
        }
    }
    if (!reg) {
        /* tce_iommu_unregister_pages() */
        if ((p.vaddr & pmask) || (p.size & pmask)) {
            return -EINVAL;
        }
        if (!mem) {
            return -ENOENT;
        }
        struct cprereg **pp;
        for (pp = &c->prereg; *pp; pp = &(*pp)->next) {
            if ((*pp)->mem == mem) {
                break;
            }
        }
        if (!*pp) {
            return -ENOENT;
        }
        /* mm_iommu_get() took a reference; tce_iommu_prereg_free() drops one */
        mem->used++;
        long ret = prereg_put(mem);
        if (!ret) {
            struct cprereg *r = *pp;
            *pp = r->next;
            free(r);
        }
        long r2 = prereg_put(mem);  /* result ignored by the kernel */
        if (r2 == -EBUSY) {
            ctx_add(k, " still-mapped=1");
        }
        if (ret) {
            return ret;
        }
        vm_log("unregister-memory c=%d vaddr=0x%llx size=0x%llx%s", c->id,
               (unsigned long long)p.vaddr, (unsigned long long)p.size,
               r2 == -EBUSY ? " still-mapped=1" : "");
        return 0;
    }
    /* tce_iommu_register_pages() */
    if ((p.vaddr & pmask) || (p.size & pmask) || p.vaddr + p.size < p.vaddr) {
        return -EINVAL;
    }
    if (mem) {
        for (struct cprereg *r = c->prereg; r; r = r->next) {
            if (r->mem == mem) {
                return -EBUSY;
            }
        }
        mem->used++;
    } else {
        /* mm_iommu_new() -> mm_iommu_do_alloc() */
        if (!range_mapped(p.vaddr, p.size)) {
            return -EFAULT;
        }
        for (struct prereg *m = mm_prereg; m; m = m->next) {
            if (m->ua < p.vaddr + (entries << host_page_shift) &&
                p.vaddr < m->ua + (m->entries << host_page_shift)) {
                ctx_add(k, " reason=overlap");
                return -EINVAL;
            }
        }
        mem = calloc(1, sizeof(*mem));
        if (!mem) {
            return -ENOMEM;
        }
        mem->ua = p.vaddr;
        mem->entries = entries;
        mem->used = 1;
        mem->mapped = 1;
        mem->pageshift = host_page_shift;   /* no hugetlb backing modelled */
        mem->next = mm_prereg;
        mm_prereg = mem;
    }
    struct cprereg *r = calloc(1, sizeof(*r));
    if (!r) {
        prereg_put(mem);
        return -ENOMEM;
    }
    r->mem = mem;
    r->next = c->prereg;
    c->prereg = r;
    c->enabled = true;
    vm_log("register-memory c=%d vaddr=0x%llx size=0x%llx", c->id,
           (unsigned long long)p.vaddr, (unsigned long long)p.size);
    return 0;
}

static long c_tce_create(struct container *c, void *arg, struct call *k)
{
    struct vfio_iommu_spapr_tce_create p;
    size_t minsz = offsetof(struct vfio_iommu_spapr_tce_create, start_addr) +
                   sizeof(p.start_addr);
    long ret;
    if (c->iommu != IOMMU_V2) {
        return -ENOTTY;
    }
    c->mm_set = true;
    if (!tbl_has_groups(c)) {
        return -ENXIO;
    }
    if (!arg) {
        return -EFAULT;
    }
    memcpy(&p, arg, minsz);
    ctx_add(k, " size=0x%llx page_shift=%u levels=%u",
            (unsigned long long)p.window_size, p.page_shift, p.levels);
    if (p.argsz < minsz) {
        return -EINVAL;
    }
    if (p.flags) {
        return -EINVAL;
    }
    ret = create_default_window(c);
    if (!ret) {
        uint64_t start = 0;
        ret = create_window(c, p.page_shift, p.window_size, p.levels, &start);
        if (!ret) {
            p.start_addr = start;
            memcpy(arg, &p, minsz);
            vm_log("window-create c=%d start=0x%" PRIx64 " size=0x%llx "
                   "page_shift=%u levels=%u", c->id, start,
                   (unsigned long long)p.window_size, p.page_shift, p.levels);
        }
    }
    return ret;
}

static long c_tce_remove(struct container *c, void *arg, struct call *k)
{
    struct vfio_iommu_spapr_tce_remove p;
    size_t minsz = offsetof(struct vfio_iommu_spapr_tce_remove, start_addr) +
                   sizeof(p.start_addr);
    struct table *t;
    if (c->iommu != IOMMU_V2) {
        return -ENOTTY;
    }
    c->mm_set = true;
    if (!tbl_has_groups(c)) {
        return -ENXIO;
    }
    if (!arg) {
        return -EFAULT;
    }
    memcpy(&p, arg, minsz);
    ctx_add(k, " start=0x%llx", (unsigned long long)p.start_addr);
    if (p.argsz < minsz) {
        return -EINVAL;
    }
    if (p.flags) {
        return -EINVAL;
    }
    if (c->def_window_pending && !p.start_addr) {
        c->def_window_pending = false;
        vm_log("window-remove c=%d start=0x0 default=1", c->id);
        return 0;
    }
    int num = find_table(c, p.start_addr, &t);
    if (num < 0) {
        return -EINVAL;
    }
    uint64_t start = t->offset << t->page_shift;
    tce_clear(c, t, t->offset, t->size);
    table_free(t);
    vm_log("window-remove c=%d start=0x%" PRIx64, c->id, start);
    return 0;
}

static const char *eeh_op_name(unsigned op)
{
    static const char *n[] = { "DISABLE", "ENABLE", "UNFREEZE_IO", "UNFREEZE_DMA",
                               "GET_STATE", "RESET_DEACTIVATE", "RESET_HOT",
                               "RESET_FUNDAMENTAL", "CONFIGURE", "INJECT_ERR" };
    return op < sizeof(n) / sizeof(n[0]) ? n[op] : "unknown";
}

static long c_eeh(struct container *c, void *arg, struct call *k)
{
    struct vfio_eeh_pe_op op;
    size_t minsz = offsetof(struct vfio_eeh_pe_op, op) + sizeof(op.op);
    long ret = 0;
    /* vfio_spapr_ioctl_eeh_pe_op() for each group */
    for (int i = 0; i < c->ngroups; i++) {
        if (!c->groups[i]->drv_attached) {
            continue;
        }
        if (!eeh_enabled) {
            return -ENODEV;             /* eeh_iommu_group_to_pe() == NULL */
        }
        if (!arg) {
            return -EFAULT;
        }
        memcpy(&op, arg, minsz);
        if (i == 0) {
            ctx_add(k, " op=%s", eeh_op_name(op.op));
        }
        if (op.argsz < minsz || op.flags) {
            return -EINVAL;
        }
        switch (op.op) {
        case VFIO_EEH_PE_DISABLE: case VFIO_EEH_PE_ENABLE:
        case VFIO_EEH_PE_UNFREEZE_IO: case VFIO_EEH_PE_UNFREEZE_DMA:
        case VFIO_EEH_PE_RESET_DEACTIVATE: case VFIO_EEH_PE_RESET_HOT:
        case VFIO_EEH_PE_RESET_FUNDAMENTAL: case VFIO_EEH_PE_CONFIGURE:
            ret = 0;
            break;
        case VFIO_EEH_PE_GET_STATE:
            ret = VFIO_EEH_PE_STATE_NORMAL;
            break;
        case VFIO_EEH_PE_INJECT_ERR:
            if (op.argsz < offsetof(struct vfio_eeh_pe_op, err) + sizeof(op.err)) {
                return -EINVAL;
            }
            ret = 0;
            break;
        default:
            return -EINVAL;
        }
    }
    if (c->ngroups) {
        vm_log("eeh c=%d op=%s ret=%ld", c->id, eeh_op_name(op.op), ret);
    }
    return ret;
}

static long container_ioctl(struct container *c, unsigned long req, void *arg,
                            struct call *k)
{
    switch (req) {
    case VFIO_GET_API_VERSION:
        return VFIO_API_VERSION;
    case VFIO_CHECK_EXTENSION:
        ctx_add(k, " ext=%lu", (unsigned long)arg);
        return tce_check_extension((unsigned long)arg);
    case VFIO_SET_IOMMU:
        return c_set_iommu(c, (unsigned long)arg, k);
    }
    if (c->iommu == IOMMU_NONE) {
        return -EINVAL;             /* vfio_fops_unl_ioctl: no driver */
    }
    bool v2 = c->iommu == IOMMU_V2;
    switch (req) {
    case VFIO_IOMMU_SPAPR_TCE_GET_INFO:
        return c_get_info(c, arg, k);
    case VFIO_IOMMU_MAP_DMA:
        return c_map(c, arg, k);
    case VFIO_IOMMU_UNMAP_DMA:
        return c_unmap(c, arg, k);
    case VFIO_IOMMU_SPAPR_REGISTER_MEMORY:
        return c_register(c, arg, true, k);
    case VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY:
        if (v2 && !c->mm_set) {
            return -EPERM;          /* !container->mm */
        }
        return c_register(c, arg, false, k);
    case VFIO_IOMMU_ENABLE:
        if (v2) {
            return -ENOTTY;
        }
        /* tce_iommu_enable() */
        if (c->enabled) {
            return -EBUSY;
        }
        if (!tbl_has_groups(c)) {
            return -ENODEV;
        }
        c->mm_set = true;
        c->enabled = true;
        vm_log("enable c=%d", c->id);
        return 0;
    case VFIO_IOMMU_DISABLE:
        if (v2) {
            return -ENOTTY;
        }
        if (c->enabled) {
            c->enabled = false;
            vm_log("disable c=%d", c->id);
        }
        return 0;
    case VFIO_EEH_PE_OP:
        return c_eeh(c, arg, k);
    case VFIO_IOMMU_SPAPR_TCE_CREATE:
        return c_tce_create(c, arg, k);
    case VFIO_IOMMU_SPAPR_TCE_REMOVE:
        return c_tce_remove(c, arg, k);
    }
    return -ENOTTY;
}

/* ---- group ---- */
static struct container *container_of_fd(int fd)
{
    if (fd >= 0 && fd < VM_MAX_FD && vm_fd_kind(fd) == VM_FD_CONTAINER) {
        return fdtab[fd].obj;
    }
    return NULL;
}

static int device_fd_open(struct device *d, struct call *k);

static long group_ioctl(struct group *g, unsigned long req, void *arg,
                        struct call *k)
{
    switch (req) {
    case VFIO_GROUP_GET_STATUS: {
        struct vfio_group_status st;
        size_t minsz = offsetof(struct vfio_group_status, flags) + sizeof(st.flags);
        if (!arg) {
            return -EFAULT;
        }
        memcpy(&st, arg, minsz);
        if (st.argsz < minsz) {
            return -EINVAL;
        }
        st.flags = g->c ? VFIO_GROUP_FLAGS_CONTAINER_SET | VFIO_GROUP_FLAGS_VIABLE
                        : VFIO_GROUP_FLAGS_VIABLE;
        memcpy(arg, &st, minsz);
        return 0;
    }
    case VFIO_GROUP_SET_CONTAINER: {
        int cfd;
        if (!arg) {
            return -EFAULT;
        }
        memcpy(&cfd, arg, sizeof(cfd));
        struct container *c = container_of_fd(cfd);
        if (c) {
            ctx_add(k, " c=%d", c->id);
        }
        if (!fd_valid(cfd)) {
            return -EBADF;
        }
        if (g->c) {
            return -EINVAL;
        }
        if (!c) {
            return -EBADFD;
        }
        if (c->ngroups >= VM_MAX_GROUPS) {
            return -ENOMEM;
        }
        if (c->iommu != IOMMU_NONE) {
            long ret = attach_group(c, g);
            if (ret) {
                return ret;
            }
        }
        g->c = c;
        g->container_users = 1;
        c->groups[c->ngroups++] = g;
        vm_log("group-attach g=%d c=%d", g->id, c->id);
        return 0;
    }
    case VFIO_GROUP_UNSET_CONTAINER:
        if (g->c) {
            ctx_add(k, " c=%d", g->c->id);
        }
        if (!g->c) {
            return -EINVAL;
        }
        if (g->container_users != 1) {
            return -EBUSY;
        }
        group_detach(g);
        return 0;
    case VFIO_GROUP_GET_DEVICE_FD: {
        char name[4096];
        if (!arg) {
            return -EFAULT;
        }
        snprintf(name, sizeof(name), "%s", (const char *)arg);
        ctx_add(k, " dev=%s", name);
        struct device *d = NULL;
        for (int i = 0; i < ndevices; i++) {
            if (devices[i].group == g && !strcmp(devices[i].bdf, name)) {
                d = &devices[i];
            }
        }
        if (!d) {
            return -ENODEV;
        }
        if (!g->c || g->c->iommu == IOMMU_NONE) {
            return -EINVAL;
        }
        return device_fd_open(d, k);
    }
    }
    return -ENOTTY;
}

/* ---- device ---- */
static uint16_t cfg_rd16(struct device *d, unsigned off)
{
    return d->cfg[off] | (d->cfg[off + 1] << 8);
}

static void cfg_wr16(uint8_t *p, unsigned off, uint16_t v)
{
    p[off] = v;
    p[off + 1] = v >> 8;
}

static void cfg_wr32(uint8_t *p, unsigned off, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[off + i] = v >> (8 * i);
    }
}

static uint32_t cfg_rd32(struct device *d, unsigned off)
{
    return d->cfg[off] | (d->cfg[off + 1] << 8) | (d->cfg[off + 2] << 16) |
           ((uint32_t)d->cfg[off + 3] << 24);
}

static void build_config_space(struct device *d)
{
    uint8_t *c = d->cfg, *w = d->wmask;
    memset(c, 0, sizeof(d->cfg));
    memset(w, 0, sizeof(d->wmask));
    d->cfg_size = d->pcie ? 4096 : 256;
    cfg_wr16(c, 0x00, d->vendor);
    cfg_wr16(c, 0x02, d->devid);
    cfg_wr16(c, 0x04, 0);
    cfg_wr16(w, 0x04, 0x0547);                  /* io mem master perr serr intx-dis */
    cfg_wr16(c, 0x06, 0x0010);                  /* capability list */
    c[0x08] = d->rev;
    c[0x09] = d->class;
    c[0x0a] = d->class >> 8;
    c[0x0b] = d->class >> 16;
    w[0x0c] = 0xff;                             /* cache line */
    w[0x0d] = 0xff;                             /* latency */
    c[0x0e] = 0x00;                             /* type 0 */
    cfg_wr16(c, 0x2c, d->subven);
    cfg_wr16(c, 0x2e, d->subdev);
    c[0x3c] = 0xff;
    w[0x3c] = 0xff;
    c[0x3d] = d->intx_pin;
    /* BARs and ROM are normalised by cfg_fixup_bars() */
    unsigned pos = 0x40;
    unsigned prevoff = 0x34;
#define LINK_CAP(at) do { c[prevoff] = (at); prevoff = (at) + 1; } while (0)
    /* power management */
    LINK_CAP(pos);
    c[pos] = 0x01;
    cfg_wr16(c, pos + 2, 0x0003);
    cfg_wr16(c, pos + 4, 0x0008);               /* no soft reset */
    cfg_wr16(w, pos + 4, 0x0103);
    pos = 0x50;
    if (d->msi) {
        LINK_CAP(pos);
        d->msi_cap = pos;
        c[pos] = 0x05;
        cfg_wr16(c, pos + 2, 0x0080);           /* 64-bit, 1 vector */
        cfg_wr16(w, pos + 2, 0x0071);
        cfg_wr32(w, pos + 4, 0xfffffffc);
        cfg_wr32(w, pos + 8, 0xffffffff);
        cfg_wr16(w, pos + 12, 0xffff);
    }
    pos = 0x70;
    if (d->pcie) {
        LINK_CAP(pos);
        d->pcie_cap = pos;
        c[pos] = 0x10;
        cfg_wr16(c, pos + 2, 0x0002);           /* v2, endpoint */
        cfg_wr32(c, pos + 4, 0x10008000 | 0x2); /* FLR, role-based err, 512B */
        cfg_wr16(c, pos + 8, 0x2810);
        cfg_wr16(w, pos + 8, 0x7eff);
        cfg_wr32(c, pos + 12, 0x00412c82);      /* x8 5GT/s */
        cfg_wr16(w, pos + 16, 0x01c3);
        cfg_wr16(c, pos + 18, 0x1082);
        cfg_wr32(c, pos + 36, 0x0000001f);      /* devcap2 */
        cfg_wr16(w, pos + 40, 0x040f);
        cfg_wr32(c, pos + 44, 0x00000006);      /* linkcap2 */
    }
    pos = 0xb0;
    if (d->msix_vec) {
        LINK_CAP(pos);
        d->msix_cap = pos;
        c[pos] = 0x11;
        cfg_wr16(c, pos + 2, d->msix_vec - 1);
        cfg_wr16(w, pos + 2, 0xc000);
        uint32_t tbl_size = ((uint32_t)d->msix_vec * 16 + 0xfff) & ~0xfffu;
        cfg_wr32(c, pos + 4, 0 | d->msix_bar);
        cfg_wr32(c, pos + 8, tbl_size | d->msix_bar);
    }
    c[prevoff] = 0;
#undef LINK_CAP
    d->num_ctx = 0;
}

/* virtualised BAR/ROM registers: keep only the size-aligned address bits */
static void cfg_fixup_bars(struct device *d)
{
    for (int i = 0; i < 6; i++) {
        struct bar *b = &d->bars[i];
        unsigned off = 0x10 + 4 * i;
        uint32_t v = cfg_rd32(d, off);
        switch (b->type) {
        case BAR_MEM32:
            v = (v & ~(uint32_t)(b->size - 1) & 0xfffffff0u) | (b->pref ? 8 : 0);
            break;
        case BAR_IO:
            v = (v & ~(uint32_t)(b->size - 1) & 0xfffffffcu) | 1;
            break;
        case BAR_MEM64: {
            uint32_t hi = cfg_rd32(d, off + 4);
            v = (v & ~(uint32_t)(b->size - 1) & 0xfffffff0u) | 4 | (b->pref ? 8 : 0);
            hi &= (uint32_t)(~(b->size - 1) >> 32);
            cfg_wr32(d->cfg, off + 4, hi);
            cfg_wr32(d->cfg, off, v);
            i++;
            continue;
        }
        default:
            v = 0;
        }
        cfg_wr32(d->cfg, off, v);
    }
    uint32_t rom = cfg_rd32(d, 0x30);
    rom = d->rom_size ? (rom & ~(uint32_t)(d->rom_size - 1) & 0xfffff801u) : 0;
    cfg_wr32(d->cfg, 0x30, rom);
}

static bool in_bar_regs(unsigned off)
{
    return (off >= 0x10 && off < 0x28) || (off >= 0x30 && off < 0x34);
}

static int device_memfd(struct device *d)
{
    if (d->memfd >= 0) {
        return 0;
    }
    int fd = new_anon_fd("vfio-model-device", true);
    if (fd < 0) {
        return -errno;
    }
    if (ftruncate(fd, (off_t)(VFIO_PCI_CONFIG_REGION_INDEX) << VFIO_PCI_OFFSET_SHIFT)) {
        int e = errno;
        vm_real.close(fd);
        return -e;
    }
    if (d->rom_size) {
        /* a minimal option ROM image: 55 AA, PCIR structure with our ids */
        uint8_t hdr[0x40] = { 0 };
        hdr[0] = 0x55;
        hdr[1] = 0xaa;
        hdr[2] = d->rom_size / 512 > 255 ? 255 : d->rom_size / 512;
        hdr[0x18] = 0x20;
        memcpy(hdr + 0x20, "PCIR", 4);
        cfg_wr16(hdr, 0x24, d->vendor);
        cfg_wr16(hdr, 0x26, d->devid);
        cfg_wr16(hdr, 0x2a, 0x18);
        hdr[0x2d] = d->class;
        hdr[0x2e] = d->class >> 8;
        hdr[0x2f] = d->class >> 16;
        cfg_wr16(hdr, 0x30, hdr[2]);
        hdr[0x35] = 0x80;                       /* last image */
        off_t off = (off_t)VFIO_PCI_ROM_REGION_INDEX << VFIO_PCI_OFFSET_SHIFT;
        if (vm_real.pwrite(fd, hdr, sizeof(hdr), off) != (ssize_t)sizeof(hdr)) {
            vm_real.close(fd);
            return -EIO;
        }
    }
    d->memfd = fd;
    return 0;
}

static int device_fd_open(struct device *d, struct call *k)
{
    (void)k;
    int ret = device_memfd(d);
    if (ret) {
        return ret;
    }
    int fd = fcntl(d->memfd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) {
        return -errno;
    }
    if (fd >= VM_MAX_FD) {
        vm_real.close(fd);
        return -EMFILE;
    }
    if (d->open_count++ == 0) {
        d->group->container_users++;    /* vfio_group_use_container */
        cfg_fixup_bars(d);
    }
    d->group->dev_fds++;
    fd_set_kind(fd, VM_FD_DEVICE, d);
    vm_log("device-open dev=%s g=%d", d->bdf, d->group_id);
    return fd;
}

static unsigned irq_count(struct device *d, unsigned index)
{
    switch (index) {
    case VFIO_PCI_INTX_IRQ_INDEX:
        return d->cfg[0x3d] ? 1 : 0;
    case VFIO_PCI_MSI_IRQ_INDEX:
        if (!d->msi_cap) {
            return 0;
        }
        return 1u << ((cfg_rd16(d, d->msi_cap + 2) & 0x000e) >> 1);
    case VFIO_PCI_MSIX_IRQ_INDEX:
        return d->msix_cap ? (cfg_rd16(d, d->msix_cap + 2) & 0x07ff) + 1 : 0;
    case VFIO_PCI_ERR_IRQ_INDEX:
        return d->pcie ? 1 : 0;
    case VFIO_PCI_REQ_IRQ_INDEX:
        return 1;
    }
    return 0;
}

static const char *irq_name(unsigned i)
{
    static const char *n[] = { "intx", "msi", "msix", "err", "req" };
    return i < 5 ? n[i] : "?";
}

static long d_set_irqs(struct device *d, void *arg, struct call *k)
{
    struct vfio_irq_set hdr;
    size_t minsz = offsetof(struct vfio_irq_set, count) + sizeof(hdr.count);
    size_t size = 0;
    if (!arg) {
        return -EFAULT;
    }
    memcpy(&hdr, arg, minsz);
    uint32_t action = hdr.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    uint32_t dtype = hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
    ctx_add(k, " index=%s action=%s start=%u count=%u", irq_name(hdr.index),
            action == VFIO_IRQ_SET_ACTION_MASK ? "mask" :
            action == VFIO_IRQ_SET_ACTION_UNMASK ? "unmask" : "trigger",
            hdr.start, hdr.count);
    /* vfio_set_irqs_validate_and_prepare() */
    if (hdr.argsz < minsz || hdr.index >= VFIO_PCI_NUM_IRQS ||
        hdr.count >= (UINT32_MAX - hdr.start) ||
        (hdr.flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK))) {
        return -EINVAL;
    }
    unsigned max = irq_count(d, hdr.index);
    if (hdr.start >= max || hdr.start + hdr.count > max) {
        return -EINVAL;
    }
    switch (dtype) {
    case VFIO_IRQ_SET_DATA_NONE: size = 0; break;
    case VFIO_IRQ_SET_DATA_BOOL: size = 1; break;
    case VFIO_IRQ_SET_DATA_EVENTFD: size = 4; break;
    default: return -EINVAL;
    }
    if (size && hdr.argsz - minsz < hdr.count * size) {
        return -EINVAL;
    }
    const uint8_t *data = (const uint8_t *)arg + minsz;
    int32_t fd0 = -1;
    if (dtype == VFIO_IRQ_SET_DATA_EVENTFD && hdr.count) {
        memcpy(&fd0, data, 4);
    }
    /* vfio_pci_set_irqs_ioctl() */
    switch (hdr.index) {
    case VFIO_PCI_INTX_IRQ_INDEX:
        if (action != VFIO_IRQ_SET_ACTION_TRIGGER) {
            /* vfio_pci_set_intx_mask() / vfio_pci_set_intx_unmask() */
            if (d->irq_type != VFIO_PCI_INTX_IRQ_INDEX || hdr.start || hdr.count != 1) {
                return -EINVAL;
            }
            if (dtype == VFIO_IRQ_SET_DATA_EVENTFD && fd0 >= 0) {
                int r = check_eventfd(fd0);
                if (r) {
                    return r;
                }
            }
            break;
        }
        /* vfio_pci_set_intx_trigger() */
        if (d->irq_type == VFIO_PCI_INTX_IRQ_INDEX && !hdr.count &&
            dtype == VFIO_IRQ_SET_DATA_NONE) {
            d->irq_type = IRQ_NONE;
            break;
        }
        if (!(d->irq_type == VFIO_PCI_INTX_IRQ_INDEX || d->irq_type == IRQ_NONE) ||
            hdr.start != 0 || hdr.count != 1) {
            return -EINVAL;
        }
        if (dtype == VFIO_IRQ_SET_DATA_EVENTFD) {
            if (fd0 >= 0) {
                int r = check_eventfd(fd0);
                if (r) {
                    return r;
                }
                d->irq_type = VFIO_PCI_INTX_IRQ_INDEX;
            } else if (d->irq_type == VFIO_PCI_INTX_IRQ_INDEX) {
                d->irq_type = IRQ_NONE;
            } else {
                d->irq_type = VFIO_PCI_INTX_IRQ_INDEX;
            }
        } else if (d->irq_type != VFIO_PCI_INTX_IRQ_INDEX) {
            return -EINVAL;
        }
        break;
    case VFIO_PCI_MSI_IRQ_INDEX:
    case VFIO_PCI_MSIX_IRQ_INDEX:
        if (action != VFIO_IRQ_SET_ACTION_TRIGGER) {
            return -ENOTTY;     /* "XXX Need masking support exported" */
        }
        /* vfio_pci_set_msi_trigger() */
        if (d->irq_type == (int)hdr.index && !hdr.count &&
            dtype == VFIO_IRQ_SET_DATA_NONE) {
            d->irq_type = IRQ_NONE;
            d->num_ctx = 0;
            break;
        }
        if (!(d->irq_type == (int)hdr.index || d->irq_type == IRQ_NONE)) {
            return -EINVAL;
        }
        if (dtype == VFIO_IRQ_SET_DATA_EVENTFD) {
            for (uint32_t i = 0; i < hdr.count; i++) {
                int32_t fd;
                memcpy(&fd, data + 4 * i, 4);
                if (fd >= 0) {
                    int r = check_eventfd(fd);
                    if (r) {
                        return r;
                    }
                }
            }
            if (d->irq_type == (int)hdr.index) {
                if (hdr.start + hdr.count > (unsigned)d->num_ctx) {
                    return -EINVAL;
                }
                break;
            }
            d->irq_type = hdr.index;
            d->num_ctx = hdr.start + hdr.count;
            break;
        }
        if (d->irq_type != (int)hdr.index || hdr.start + hdr.count > (unsigned)d->num_ctx) {
            return -EINVAL;
        }
        break;
    case VFIO_PCI_ERR_IRQ_INDEX:
    case VFIO_PCI_REQ_IRQ_INDEX: {
        bool *trig = hdr.index == VFIO_PCI_ERR_IRQ_INDEX ? &d->err_trig : &d->req_trig;
        if (action != VFIO_IRQ_SET_ACTION_TRIGGER) {
            return -ENOTTY;
        }
        if (hdr.start != 0 || hdr.count > 1) {
            return -EINVAL;
        }
        /* vfio_pci_set_ctx_trigger_single() */
        if (dtype == VFIO_IRQ_SET_DATA_EVENTFD) {
            if (!hdr.count) {
                return -EINVAL;
            }
            if (fd0 == -1) {
                *trig = false;
            } else if (fd0 >= 0) {
                int r = check_eventfd(fd0);
                if (r) {
                    return r;
                }
                *trig = true;
            }
            break;
        }
        if (*trig) {
            if (dtype == VFIO_IRQ_SET_DATA_NONE && !hdr.count) {
                *trig = false;
            }
            break;
        }
        return -EINVAL;
    }
    }
    vm_log("set-irqs dev=%s index=%s action=%s start=%u count=%u data=%s%s", d->bdf,
           irq_name(hdr.index),
           action == VFIO_IRQ_SET_ACTION_MASK ? "mask" :
           action == VFIO_IRQ_SET_ACTION_UNMASK ? "unmask" : "trigger",
           hdr.start, hdr.count,
           dtype == VFIO_IRQ_SET_DATA_NONE ? "none" :
           dtype == VFIO_IRQ_SET_DATA_BOOL ? "bool" : "eventfd",
           dtype == VFIO_IRQ_SET_DATA_EVENTFD && hdr.count && fd0 < 0 ? " fd=-1" : "");
    return 0;
}

static long d_region_info(struct device *d, void *arg, struct call *k)
{
    struct vfio_region_info info;
    size_t minsz = offsetof(struct vfio_region_info, offset) + sizeof(info.offset);
    if (!arg) {
        return -EFAULT;
    }
    memcpy(&info, arg, minsz);
    ctx_add(k, " index=%u", info.index);
    if (info.argsz < minsz) {
        return -EINVAL;
    }
    bool msix_cap = false;
    info.cap_offset = 0;
    info.flags = 0;
    info.size = 0;
    switch (info.index) {
    case VFIO_PCI_CONFIG_REGION_INDEX:
        info.offset = (uint64_t)info.index << VFIO_PCI_OFFSET_SHIFT;
        info.size = d->cfg_size;
        info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
        break;
    case VFIO_PCI_BAR0_REGION_INDEX ... VFIO_PCI_BAR5_REGION_INDEX: {
        struct bar *b = &d->bars[info.index];
        info.offset = (uint64_t)info.index << VFIO_PCI_OFFSET_SHIFT;
        info.size = b->type ? b->size : 0;
        if (!info.size) {
            info.flags = 0;
            break;
        }
        info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
        /* bar_mmap_supported: memory BARs of at least a page */
        if (b->type != BAR_IO && b->size >= (1ULL << host_page_shift)) {
            info.flags |= VFIO_REGION_INFO_FLAG_MMAP;
            if (d->msix_cap && (int)info.index == d->msix_bar) {
                msix_cap = true;        /* msix_mmappable_cap() */
            }
        }
        break;
    }
    case VFIO_PCI_ROM_REGION_INDEX:
        info.offset = (uint64_t)info.index << VFIO_PCI_OFFSET_SHIFT;
        info.size = d->rom_size;
        info.flags = d->rom_size ? VFIO_REGION_INFO_FLAG_READ : 0;
        break;
    case VFIO_PCI_VGA_REGION_INDEX:
        return -EINVAL;                 /* !vdev->has_vga */
    default:
        return -EINVAL;
    }
    if (msix_cap) {
        struct vfio_info_cap_header cap = { VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1, 0 };
        info.flags |= VFIO_REGION_INFO_FLAG_CAPS;
        if (info.argsz < sizeof(info) + sizeof(cap)) {
            info.argsz = sizeof(info) + sizeof(cap);
            info.cap_offset = 0;
        } else {
            memcpy((uint8_t *)arg + sizeof(info), &cap, sizeof(cap));
            info.cap_offset = sizeof(info);
        }
    }
    memcpy(arg, &info, minsz);
    return 0;
}

static long device_ioctl(struct device *d, unsigned long req, void *arg,
                         struct call *k)
{
    switch (req) {
    case VFIO_DEVICE_GET_INFO: {
        struct vfio_device_info info;
        size_t minsz = offsetof(struct vfio_device_info, num_irqs) + sizeof(info.num_irqs);
        if (!arg) {
            return -EFAULT;
        }
        memcpy(&info, arg, minsz);
        if (info.argsz < minsz) {
            return -EINVAL;
        }
        info.flags = VFIO_DEVICE_FLAGS_PCI | (d->reset_works ? VFIO_DEVICE_FLAGS_RESET : 0);
        info.num_regions = VFIO_PCI_NUM_REGIONS;
        info.num_irqs = VFIO_PCI_NUM_IRQS;
        memcpy(arg, &info, minsz);
        return 0;
    }
    case VFIO_DEVICE_GET_REGION_INFO:
        return d_region_info(d, arg, k);
    case VFIO_DEVICE_GET_IRQ_INFO: {
        struct vfio_irq_info info;
        size_t minsz = offsetof(struct vfio_irq_info, count) + sizeof(info.count);
        if (!arg) {
            return -EFAULT;
        }
        memcpy(&info, arg, minsz);
        ctx_add(k, " index=%u", info.index);
        if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_IRQS) {
            return -EINVAL;
        }
        if (info.index == VFIO_PCI_ERR_IRQ_INDEX && !d->pcie) {
            return -EINVAL;
        }
        info.flags = VFIO_IRQ_INFO_EVENTFD;
        info.count = irq_count(d, info.index);
        if (info.index == VFIO_PCI_INTX_IRQ_INDEX) {
            info.flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
        } else {
            info.flags |= VFIO_IRQ_INFO_NORESIZE;
        }
        memcpy(arg, &info, minsz);
        return 0;
    }
    case VFIO_DEVICE_SET_IRQS:
        return d_set_irqs(d, arg, k);
    case VFIO_DEVICE_RESET:
        if (!d->reset_works) {
            return -EINVAL;
        }
        vm_log("device-reset dev=%s", d->bdf);
        return 0;
    case VFIO_DEVICE_GET_PCI_HOT_RESET_INFO:
    case VFIO_DEVICE_PCI_HOT_RESET:
        return -ENODEV;                 /* no slot or bus reset modelled */
    case VFIO_DEVICE_FEATURE: {
        struct vfio_device_feature f;
        size_t minsz = offsetof(struct vfio_device_feature, flags) + sizeof(f.flags);
        if (!arg) {
            return -EFAULT;
        }
        memcpy(&f, arg, minsz);
        ctx_add(k, " feature=%u", f.flags & VFIO_DEVICE_FEATURE_MASK);
        if (f.argsz < minsz) {
            return -EINVAL;
        }
        if (f.flags & ~(VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_SET |
                        VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_PROBE)) {
            return -EINVAL;
        }
        if (!(f.flags & VFIO_DEVICE_FEATURE_PROBE) &&
            (f.flags & VFIO_DEVICE_FEATURE_SET) && (f.flags & VFIO_DEVICE_FEATURE_GET)) {
            return -EINVAL;
        }
        return -ENOTTY;                 /* no migration/logging/low-power ops */
    }
    }
    return -ENOTTY;
}

static const char *op_name(int kind, unsigned long req, char *buf, size_t len)
{
    if (kind == VM_FD_CONTAINER) {
        switch (req) {
        case VFIO_GET_API_VERSION: return "GET_API_VERSION";
        case VFIO_CHECK_EXTENSION: return "CHECK_EXTENSION";
        case VFIO_SET_IOMMU: return "SET_IOMMU";
        case VFIO_IOMMU_SPAPR_TCE_GET_INFO: return "TCE_GET_INFO";
        case VFIO_IOMMU_MAP_DMA: return "MAP_DMA";
        case VFIO_IOMMU_UNMAP_DMA: return "UNMAP_DMA";
        case VFIO_IOMMU_ENABLE: return "ENABLE";
        case VFIO_IOMMU_DISABLE: return "DISABLE";
        case VFIO_IOMMU_SPAPR_REGISTER_MEMORY: return "REGISTER_MEMORY";
        case VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY: return "UNREGISTER_MEMORY";
        case VFIO_IOMMU_SPAPR_TCE_CREATE: return "TCE_CREATE";
        case VFIO_IOMMU_SPAPR_TCE_REMOVE: return "TCE_REMOVE";
        case VFIO_EEH_PE_OP: return "EEH_PE_OP";
        }
    } else if (kind == VM_FD_GROUP) {
        switch (req) {
        case VFIO_GROUP_GET_STATUS: return "GET_STATUS";
        case VFIO_GROUP_SET_CONTAINER: return "SET_CONTAINER";
        case VFIO_GROUP_UNSET_CONTAINER: return "UNSET_CONTAINER";
        case VFIO_GROUP_GET_DEVICE_FD: return "GET_DEVICE_FD";
        }
    } else {
        switch (req) {
        case VFIO_DEVICE_GET_INFO: return "GET_INFO";
        case VFIO_DEVICE_GET_REGION_INFO: return "GET_REGION_INFO";
        case VFIO_DEVICE_GET_IRQ_INFO: return "GET_IRQ_INFO";
        case VFIO_DEVICE_SET_IRQS: return "SET_IRQS";
        case VFIO_DEVICE_RESET: return "RESET";
        case VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: return "GET_PCI_HOT_RESET_INFO";
        case VFIO_DEVICE_PCI_HOT_RESET: return "PCI_HOT_RESET";
        case VFIO_DEVICE_FEATURE: return "DEVICE_FEATURE";
        }
    }
    snprintf(buf, len, "IOCTL_0x%lx", req);
    return buf;
}

static void log_error(struct call *k, int err, bool injected)
{
    char eb[16];
    vm_log("error op=%s errno=%s%s%s", k->op, errname(err, eb, sizeof(eb)),
           injected ? " injected=1" : "", k->ctx);
}

int vm_ioctl(int fd, unsigned long req, void *arg)
{
    struct call k = { 0 };
    char nb[32];
    long ret;
    int kind;

    if (fd < 0 || fd >= VM_MAX_FD) {
        errno = EBADF;
        return -1;
    }
    pthread_mutex_lock(&vm_lock);
    kind = vm_fd_kind(fd);
    void *obj = fdtab[fd].obj;
    k.op = op_name(kind, req, nb, sizeof(nb));
    if (kind == VM_FD_CONTAINER) {
        ctx_add(&k, " c=%d", ((struct container *)obj)->id);
    } else if (kind == VM_FD_GROUP) {
        ctx_add(&k, " g=%d", ((struct group *)obj)->id);
    } else if (kind == VM_FD_DEVICE) {
        ctx_add(&k, " dev=%s", ((struct device *)obj)->bdf);
    }
    int inj = fail_check(k.op);
    if (inj) {
        log_error(&k, inj, true);
        pthread_mutex_unlock(&vm_lock);
        errno = inj;
        return -1;
    }
    switch (kind) {
    case VM_FD_CONTAINER:
        ret = container_ioctl(obj, req, arg, &k);
        break;
    case VM_FD_GROUP:
        ret = group_ioctl(obj, req, arg, &k);
        break;
    default:
        ret = device_ioctl(obj, req, arg, &k);
        break;
    }
    if (ret < 0) {
        log_error(&k, (int)-ret, false);
    } else if (ret == 1 && (req == VFIO_IOMMU_MAP_DMA || req == VFIO_IOMMU_UNMAP_DMA)) {
        /* the kernel's boolean param check leaks out as a return value of 1 */
        vm_log("error op=%s errno=EINVAL ret=1%s", k.op, k.ctx);
    }
    state_write();
    pthread_mutex_unlock(&vm_lock);
    if (ret < 0) {
        errno = (int)-ret;
        return -1;
    }
    return (int)ret;
}

/* ------------------------------------------------------------------ */
/* open / close                                                        */
/* ------------------------------------------------------------------ */
int vm_open_path(const char *path, int flags, bool *handled)
{
    int g = -1;
    struct call k = { 0 };

    if (strncmp(path, "/dev/vfio/", 10) != 0) {
        return -1;
    }
    if (!strcmp(path + 10, "vfio")) {
        k.op = "OPEN_CONTAINER";
    } else {
        char *e;
        if (!isdigit((unsigned char)path[10])) {
            return -1;
        }
        long v = strtol(path + 10, &e, 10);
        if (*e || v < 0 || v > INT32_MAX) {
            return -1;
        }
        g = (int)v;
        k.op = "OPEN_GROUP";
    }
    *handled = true;
    pthread_mutex_lock(&vm_lock);
    int err = 0, fd = -1, inj;
    struct group *grp = NULL;
    if (g >= 0) {
        ctx_add(&k, " g=%d", g);
        grp = group_get(g, false);
        if (!grp) {
            /* no such device node */
            pthread_mutex_unlock(&vm_lock);
            errno = ENOENT;
            return -1;
        }
    }
    if ((inj = fail_check(k.op))) {
        log_error(&k, inj, true);
        pthread_mutex_unlock(&vm_lock);
        errno = inj;
        return -1;
    }
    if (grp && (grp->file_open || grp->dev_fds)) {
        err = EBUSY;                    /* vfio_group_fops_open */
    } else if ((fd = new_anon_fd(grp ? "vfio-model-group" : "vfio-model-container",
                                 flags & O_CLOEXEC)) < 0) {
        err = errno;
    }
    if (err) {
        log_error(&k, err, false);
        pthread_mutex_unlock(&vm_lock);
        errno = err;
        return -1;
    }
    if (grp) {
        grp->file_open = true;
        fd_set_kind(fd, VM_FD_GROUP, grp);
        vm_log("group-open g=%d", grp->id);
    } else {
        struct container *c = calloc(1, sizeof(*c));
        if (!c) {
            vm_real.close(fd);
            pthread_mutex_unlock(&vm_lock);
            errno = ENOMEM;
            return -1;
        }
        c->id = next_container_id++;
        c->fd_open = true;
        struct container **pp = &containers;
        while (*pp) {
            pp = &(*pp)->next;
        }
        *pp = c;
        fd_set_kind(fd, VM_FD_CONTAINER, c);
        vm_log("container-open c=%d", c->id);
    }
    state_write();
    pthread_mutex_unlock(&vm_lock);
    return fd;
}

/* vfio_group_fops_release() */
static void group_release(struct group *g)
{
    if (g->c) {
        group_detach(g);
    }
}

int vm_close(int fd)
{
    if (fd < 0 || fd >= VM_MAX_FD) {
        return vm_real.close(fd);
    }
    pthread_mutex_lock(&vm_lock);
    int kind = vm_fd_kind(fd);
    void *obj = fdtab[fd].obj;
    fd_set_kind(fd, VM_FD_NONE, NULL);
    switch (kind) {
    case VM_FD_CONTAINER: {
        struct container *c = obj;
        c->fd_open = false;
        vm_log("container-close c=%d%s", c->id, exit_close ? " exit=1" : "");
        container_maybe_free(c);
        break;
    }
    case VM_FD_GROUP: {
        struct group *g = obj;
        g->file_open = false;
        vm_log("group-close g=%d%s", g->id, exit_close ? " exit=1" : "");
        if (!g->dev_fds) {
            group_release(g);
        }
        break;
    }
    case VM_FD_DEVICE: {
        struct device *d = obj;
        struct group *g = d->group;
        vm_log("device-close dev=%s%s", d->bdf, exit_close ? " exit=1" : "");
        if (--d->open_count == 0) {
            /* vfio_pci_core_close_device: interrupts torn down */
            d->irq_type = IRQ_NONE;
            d->num_ctx = 0;
            d->err_trig = d->req_trig = false;
            if (g->c) {
                g->container_users--;
            }
        }
        if (--g->dev_fds == 0 && !g->file_open) {
            group_release(g);
        }
        break;
    }
    }
    state_write();
    pthread_mutex_unlock(&vm_lock);
    return vm_real.close(fd);
}

/* ------------------------------------------------------------------ */
/* device region access                                                */
/* ------------------------------------------------------------------ */
static ssize_t dev_rw(int fd, void *buf, size_t n, off_t off, bool write)
{
    if (fd < 0 || fd >= VM_MAX_FD) {
        errno = EBADF;
        return -1;
    }
    pthread_mutex_lock(&vm_lock);
    struct device *d = fdtab[fd].obj;
    uint64_t index = (uint64_t)off >> VFIO_PCI_OFFSET_SHIFT;
    uint64_t pos = (uint64_t)off & VFIO_PCI_OFFSET_MASK;
    ssize_t ret;

    if (off < 0 || index >= VFIO_PCI_NUM_REGIONS) {
        ret = -EINVAL;
    } else if (index == VFIO_PCI_CONFIG_REGION_INDEX) {
        /* vfio_config_do_rw() */
        if (pos >= d->cfg_size || pos + n > d->cfg_size) {
            ret = -EFAULT;
        } else if (!write) {
            memcpy(buf, d->cfg + pos, n);
            ret = n;
        } else {
            const uint8_t *src = buf;
            for (size_t i = 0; i < n; i++) {
                unsigned o = pos + i;
                if (in_bar_regs(o)) {
                    d->cfg[o] = src[i];
                } else {
                    d->cfg[o] = (d->cfg[o] & ~d->wmask[o]) | (src[i] & d->wmask[o]);
                }
            }
            cfg_fixup_bars(d);
            ret = n;
        }
    } else if (index == VFIO_PCI_VGA_REGION_INDEX) {
        ret = -EINVAL;
    } else {
        uint64_t size = index == VFIO_PCI_ROM_REGION_INDEX ? d->rom_size :
                        d->bars[index].type ? d->bars[index].size : 0;
        if (pos >= size) {
            ret = -EINVAL;
        } else if (write && index == VFIO_PCI_ROM_REGION_INDEX) {
            ret = -EINVAL;
        } else {
            if (n > size - pos) {
                n = size - pos;
            }
            ret = write ? vm_real.pwrite(fd, buf, n, off) : vm_real.pread(fd, buf, n, off);
            if (ret < 0) {
                ret = -errno;
            }
        }
    }
    if (ret < 0) {
        char eb[16];
        vm_log("error op=%s errno=%s dev=%s offset=0x%llx size=0x%zx",
               write ? "WRITE" : "READ", errname((int)-ret, eb, sizeof(eb)),
               d->bdf, (unsigned long long)off, n);
    }
    pthread_mutex_unlock(&vm_lock);
    if (ret < 0) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
}

ssize_t vm_pread(int fd, void *buf, size_t n, off_t off)
{
    return dev_rw(fd, buf, n, off, false);
}

ssize_t vm_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return dev_rw(fd, (void *)buf, n, off, true);
}

/* ------------------------------------------------------------------ */
/* teardown (process exit)                                             */
/* ------------------------------------------------------------------ */
static void vm_destroy(void)
{
    /*
     * Process exit: the kernel releases every file still open, in fd order
     * (close_files()).  Model that so the log shows what the kernel saw.
     */
    for (int fd = 0; fd < VM_MAX_FD; fd++) {
        if (vm_fd_kind(fd)) {
            exit_close = true;
            vm_close(fd);
            exit_close = false;
        }
    }
    pthread_mutex_lock(&vm_lock);
    while (containers) {
        struct container *c = containers;
        containers = c->next;
        for (int t = 0; t < IOMMU_TABLE_GROUP_MAX_TABLES; t++) {
            table_free(&c->tables[t]);
        }
        while (c->prereg) {
            struct cprereg *r = c->prereg;
            c->prereg = r->next;
            free(r);
        }
        free(c);
    }
    while (mm_prereg) {
        struct prereg *m = mm_prereg;
        mm_prereg = m->next;
        free(m);
    }
    for (int i = 0; i < ngroups; i++) {
        groups[i].c = NULL;
    }
    for (int i = 0; i < ndevices; i++) {
        if (devices[i].memfd >= 0) {
            vm_real.close(devices[i].memfd);
            devices[i].memfd = -1;
        }
    }
    if (shadow_root[0]) {
        nftw(shadow_root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        shadow_root[0] = 0;
    }
    free(state_path);
    state_path = NULL;
    if (log_fd >= 0) {
        vm_real.close(log_fd);
        log_fd = -1;
    }
    pthread_mutex_unlock(&vm_lock);
}
