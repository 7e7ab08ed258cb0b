/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The unit tests' harness: checks, ioctl helpers, and a runner that runs
 * each case in its own process with the case's VFIO_MODEL_* environment
 * and prints "PASS <name>" or "FAIL <name>: <reason>". Each .c file in
 * tests/ is one program: its cases in a table, main() calling run_cases().
 */
#ifndef VFIO_MODEL_TEST_HARNESS_H
#define VFIO_MODEL_TEST_HARNESS_H

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char tdir[256], logp[300], statep[300];
static char failmsg[1024];

#define CHECK(cond, ...) do {                                            \
        if (!(cond)) {                                                   \
            int l_ = snprintf(failmsg, sizeof(failmsg), "line %d: ", __LINE__); \
            snprintf(failmsg + l_, sizeof(failmsg) - l_, __VA_ARGS__);   \
            return 1;                                                    \
        }                                                                \
    } while (0)
/* expect ioctl failure with errno */
#define EXPECT_ERR(call, e) do {                                         \
        errno = 0;                                                       \
        long r_ = (call);                                                \
        CHECK(r_ == -1 && errno == (e), "%s: want %s, got ret %ld errno %d (%s)", \
              #call, #e, r_, errno, strerror(errno));                    \
    } while (0)
#define EXPECT_OK(call) do {                                             \
        errno = 0;                                                       \
        long r_ = (call);                                                \
        CHECK(r_ == 0, "%s: ret %ld errno %s", #call, r_, strerror(errno)); \
    } while (0)

static inline char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return strdup("");
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        fwrite(tmp, 1, n, m);
    }
    fclose(f);
    fclose(m);
    return buf;
}

static inline bool file_has(const char *path, const char *needle)
{
    char *s = slurp(path);
    bool r = strstr(s, needle) != NULL;
    free(s);
    return r;
}

static inline int count_lines(const char *path, const char *prefix)
{
    char *s = slurp(path);
    int n = 0;
    for (char *l = s; l && *l;) {
        if (!strncmp(l, prefix, strlen(prefix))) {
            n++;
        }
        char *e = strchr(l, '\n');
        l = e ? e + 1 : NULL;
    }
    free(s);
    return n;
}

/*
 * The model's state snapshot, from the Unix socket VFIO_MODEL_STATE names
 * (statep): a malloc'd string, "" if there is no socket (the process never
 * opened a /dev/vfio path).  Any other error ends the case, saying why.
 */
static inline char *state_read(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char *buf = NULL;
    size_t len = 0;
    FILE *m;
    int fd;

    if (strlen(statep) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "state_read: socket path too long: %s\n", statep);
        exit(1);
    }
    strcpy(sa.sun_path, statep);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "state_read: socket: %s\n", strerror(errno));
        exit(1);
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;

        close(fd);
        if (e == ENOENT) {
            return strdup("");
        }
        fprintf(stderr, "state_read: connect %s: %s\n", statep, strerror(e));
        exit(1);
    }
    m = open_memstream(&buf, &len);
    for (;;) {
        char tmp[65536];
        ssize_t n = read(fd, tmp, sizeof(tmp));

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            fprintf(stderr, "state_read: read: %s\n", strerror(errno));
            exit(1);
        }
        if (n == 0) {
            break;
        }
        fwrite(tmp, 1, n, m);
    }
    close(fd);
    fclose(m);
    return buf;
}

static inline bool state_has(const char *needle)
{
    char *s = state_read();
    bool r = strstr(s, needle) != NULL;
    free(s);
    return r;
}

/* Lines of the state snapshot that start with @prefix */
static inline int state_count(const char *prefix)
{
    char *s = state_read();
    int n = 0;
    for (char *l = s; *l;) {
        if (!strncmp(l, prefix, strlen(prefix))) {
            n++;
        }
        char *e = strchr(l, '\n');
        l = e ? e + 1 : l + strlen(l);
    }
    free(s);
    return n;
}

/* ---- helpers ---- */
static inline int container_open(void)
{
    return open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
}

static inline int group_open(int g)
{
    char p[64];
    snprintf(p, sizeof(p), "/dev/vfio/%d", g);
    return open(p, O_RDWR | O_CLOEXEC);
}

static inline int set_container(int gfd, int cfd)
{
    return ioctl(gfd, VFIO_GROUP_SET_CONTAINER, &cfd);
}

static inline int reg_mem(int cfd, void *va, uint64_t size)
{
    struct vfio_iommu_spapr_register_memory r = { .argsz = sizeof(r),
        .vaddr = (uintptr_t)va, .size = size };
    return ioctl(cfd, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, &r);
}

static inline int unreg_mem(int cfd, void *va, uint64_t size)
{
    struct vfio_iommu_spapr_register_memory r = { .argsz = sizeof(r),
        .vaddr = (uintptr_t)va, .size = size };
    return ioctl(cfd, VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, &r);
}

static inline int tce_create(int cfd, uint32_t shift, uint64_t size, uint32_t levels,
                      uint64_t *start)
{
    struct vfio_iommu_spapr_tce_create c = { .argsz = sizeof(c),
        .page_shift = shift, .window_size = size, .levels = levels };
    int r = ioctl(cfd, VFIO_IOMMU_SPAPR_TCE_CREATE, &c);
    if (!r && start) {
        *start = c.start_addr;
    }
    return r;
}

static inline int tce_remove(int cfd, uint64_t start)
{
    struct vfio_iommu_spapr_tce_remove r = { .argsz = sizeof(r), .start_addr = start };
    return ioctl(cfd, VFIO_IOMMU_SPAPR_TCE_REMOVE, &r);
}

static inline int map(int cfd, uint64_t iova, uint64_t size, void *va, uint32_t flags)
{
    struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m), .flags = flags,
        .vaddr = (uintptr_t)va, .iova = iova, .size = size };
    return ioctl(cfd, VFIO_IOMMU_MAP_DMA, &m);
}

static inline int unmap(int cfd, uint64_t iova, uint64_t size)
{
    struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof(u), .iova = iova, .size = size };
    return ioctl(cfd, VFIO_IOMMU_UNMAP_DMA, &u);
}

#define RW (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)
#define GIB (1ULL << 30)

/* QEMU-like v2 bring-up: group 7 in a new container, 1 GiB window at 0 */
static inline int setup_v2(int *pcfd, int *pgfd, int g)
{
    int cfd = container_open(), gfd = group_open(g);
    uint64_t start = 1;
    CHECK(cfd >= 0 && gfd >= 0, "open: %s", strerror(errno));
    EXPECT_OK(set_container(gfd, cfd));
    EXPECT_OK(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU));
    EXPECT_OK(tce_remove(cfd, 0));            /* the pending default window */
    EXPECT_OK(tce_create(cfd, 12, GIB, 2, &start));
    CHECK(start == 0, "window at 0x%llx", (unsigned long long)start);
    *pcfd = cfd;
    *pgfd = gfd;
    return 0;
}


/* One case: its function, environment, and what the log must hold after */
struct tcase {
    const char *name;
    int (*fn)(void);
    const char *env[6];
    const char *log_must;       /* checked after exit (NULL: none) */
};

static inline int run_cases(const struct tcase *cases, size_t ncases,
                            int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--case")) {
        int i = atoi(argv[2]);
        snprintf(logp, sizeof(logp), "%s", getenv("VFIO_MODEL_LOG"));
        snprintf(statep, sizeof(statep), "%s", getenv("VFIO_MODEL_STATE"));
        int r = cases[i].fn();
        if (r) {
            fprintf(stderr, "%s\n", failmsg);
            return 1;
        }
        return 0;
    }
    int failed = 0;
    for (size_t i = 0; i < ncases; i++) {
        snprintf(tdir, sizeof(tdir), "/tmp/vfio-model-unit-XXXXXX");
        if (!mkdtemp(tdir)) {
            perror("mkdtemp");
            return 2;
        }
        snprintf(logp, sizeof(logp), "%s/log", tdir);
        snprintf(statep, sizeof(statep), "%s/state", tdir);
        char errp[300];
        snprintf(errp, sizeof(errp), "%s/stderr", tdir);
        pid_t pid = fork();
        if (pid == 0) {
            char idx[24];
            for (char **e = environ; *e;) {      /* scrub inherited config */
                if (!strncmp(*e, "VFIO_MODEL_", 11)) {
                    char name[128];
                    snprintf(name, sizeof(name), "%.*s", (int)(strcspn(*e, "=")), *e);
                    unsetenv(name);
                } else {
                    e++;
                }
            }
            setenv("VFIO_MODEL_LOG", logp, 1);
            setenv("VFIO_MODEL_STATE", statep, 1);
            setenv("VFIO_MODEL_TMPDIR", tdir, 1);
            for (int k = 0; cases[i].env[k]; k++) {
                putenv((char *)cases[i].env[k]);
            }
            int fd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            dup2(fd, 2);
            close(fd);
            snprintf(idx, sizeof(idx), "%zu", i);
            execl("/proc/self/exe", argv[0], "--case", idx, (char *)NULL);
            _exit(127);
        }
        int st;
        waitpid(pid, &st, 0);
        char *err = slurp(errp);
        bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        char reason[1400];
        snprintf(reason, sizeof(reason), "%s", err);
        if (ok && cases[i].log_must && !file_has(logp, cases[i].log_must)) {
            char *l = slurp(logp);
            ok = false;
            snprintf(reason, sizeof(reason), "log lacks \"%s\"; log:\n%s", cases[i].log_must, l);
            free(l);
        }
        if (ok) {
            /* the shadow sysfs tree must be gone, nothing else left */
            DIR *d = opendir(tdir);
            for (struct dirent *e; d && (e = readdir(d));) {
                if (!strncmp(e->d_name, "vfio-model.", 11)) {
                    ok = false;
                    snprintf(reason, sizeof(reason), "shadow dir %s left behind", e->d_name);
                }
            }
            if (d) {
                closedir(d);
            }
        }
        if (ok && access(statep, F_OK) == 0) {
            /* the state socket is removed at exit */
            ok = false;
            snprintf(reason, sizeof(reason), "state socket %s left behind", statep);
        }
        if (!ok && !reason[0]) {
            snprintf(reason, sizeof(reason), "exit status 0x%x", st);
        }
        size_t rl = strlen(reason);
        while (rl && reason[rl - 1] == '\n') {
            reason[--rl] = 0;
        }
        if (ok) {
            printf("PASS %s\n", cases[i].name);
        } else {
            printf("FAIL %s: %s\n", cases[i].name, reason);
            failed++;
        }
        fflush(stdout);
        free(err);
        if (ok || !getenv("VFIO_MODEL_KEEP")) {
            char cmd[400];
            snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
            if (system(cmd)) {
                /* ignore */
            }
        }
    }
    printf("%zu cases, %d failed\n", ncases, failed);
    return failed ? 1 : 0;
}


#endif
