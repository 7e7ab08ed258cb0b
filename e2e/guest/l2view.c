/*
 * l2view: what the L2 guest's TCE tables say and which L1 pages back what
 * they map, read in L1 (as root) for e2e/run.py's host-truth oracle.
 *
 *   l2view PID RAM_HVA RAM_SIZE ADDR:NB:SHIFT...
 *
 * PID is L2's QEMU; RAM_HVA and RAM_SIZE its guest RAM block (GPA 0 up, as
 * HMP `info ramblock` shows it); each ADDR:NB:SHIFT a TCE table in QEMU's
 * memory (the address traced by spapr_iommu_new_table: KVM's mmap or
 * QEMU's own array) of NB entries mapping 1 << SHIFT bytes each. For every
 * valid entry (a permission bit set) it prints
 *
 *   E TABLE INDEX TCE RUN...
 *
 * where the entry's guest page is cut in chunks of min(1 << SHIFT, L1 page)
 * and each RUN "PA+N" says N chunks that are contiguous in L1 physical
 * memory from PA (from /proc/PID/pagemap), "-+N" N chunks not backed. Then
 * "T TABLE VALID" per table. All numbers hex except N and VALID.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int mem_fd, map_fd;
static uint64_t ram_hva, ram_size, page;

/* L1 physical address of guest address @gpa, or -1 */
static uint64_t l1_pa(uint64_t gpa)
{
    uint64_t hva = ram_hva + gpa, ent;

    if (gpa >= ram_size ||
        pread(map_fd, &ent, 8, hva / page * 8) != 8 || !(ent >> 63)) {
        return -1;
    }
    return (ent & ((1ULL << 55) - 1)) * page + hva % page;
}

static void put_run(uint64_t start, uint64_t n)
{
    if (start == (uint64_t)-1) {
        printf(" -+%" PRIu64, n);
    } else {
        printf(" %" PRIx64 "+%" PRIu64, start, n);
    }
}

int main(int argc, char **argv)
{
    char path[64];
    int t;

    if (argc < 4) {
        fprintf(stderr, "usage: l2view PID RAM_HVA RAM_SIZE ADDR:NB:SHIFT...\n");
        return 2;
    }
    page = sysconf(_SC_PAGESIZE);
    ram_hva = strtoull(argv[2], NULL, 0);
    ram_size = strtoull(argv[3], NULL, 0);
    snprintf(path, sizeof(path), "/proc/%s/mem", argv[1]);
    mem_fd = open(path, O_RDONLY);
    snprintf(path, sizeof(path), "/proc/%s/pagemap", argv[1]);
    map_fd = open(path, O_RDONLY);
    if (mem_fd < 0 || map_fd < 0) {
        perror("open /proc/PID/mem or pagemap");
        return 1;
    }
    for (t = 4; t < argc; t++) {
        uint64_t addr, nb, shift, i, valid = 0;
        uint64_t *tab;
        char *p = argv[t];

        addr = strtoull(p, &p, 0);
        nb = strtoull(p + 1, &p, 0);
        shift = strtoull(p + 1, NULL, 0);
        tab = malloc(nb * 8);
        if (!tab || pread(mem_fd, tab, nb * 8, addr) != (ssize_t)(nb * 8)) {
            fprintf(stderr, "cannot read table %d at 0x%" PRIx64 "\n", t - 4, addr);
            return 1;
        }
        for (i = 0; i < nb; i++) {
            uint64_t size = 1ULL << shift, chunk = size < page ? size : page;
            uint64_t gpa = tab[i] & ~(size - 1), off, start = 0, n = 0, pa;

            if (!(tab[i] & 3)) {
                continue;
            }
            valid++;
            printf("E %d %" PRIx64 " %" PRIx64, t - 4, i, tab[i]);
            for (off = 0; off < size; off += chunk) {
                pa = l1_pa(gpa + off);
                if (n && ((pa == (uint64_t)-1 && start == (uint64_t)-1) ||
                          (pa != (uint64_t)-1 && start != (uint64_t)-1 &&
                           pa == start + n * chunk))) {
                    n++;
                    continue;
                }
                if (n) {
                    put_run(start, n);
                }
                start = pa;
                n = 1;
            }
            put_run(start, n);
            printf("\n");
        }
        printf("T %d %" PRIu64 "\n", t - 4, valid);
        free(tab);
    }
    return 0;
}
