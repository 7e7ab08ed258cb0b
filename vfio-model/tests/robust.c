/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Robustness tests of libvfio-model: the life of model fds (close racing
 * with calls, fork, dup and the calls that close or reuse fd numbers, fd
 * numbers past 65535), the state snapshot socket, and log writes that are
 * interrupted or fail.  Same harness as unit.c (harness.h); some cases run
 * a sub-process of this program ("--sub NAME") with an environment of
 * their own.
 */
#include "harness.h"

#include <linux/close_range.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>

#define BDF1 "0000:01:00.0"
#define DEVS BDF1 "@7,0000:02:00.0@8"
#define CFG_OFF ((off_t)VFIO_PCI_CONFIG_REGION_INDEX << 40)

/*
 * Anonymous memory aligned to 64 KiB, the PAGE_SIZE of the modelled kernel
 * by default, as preregistration needs
 */
static uint8_t *amap(size_t len)
{
    size_t a = 1 << 16;
    uint8_t *p = mmap(NULL, len + a, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    if (p == MAP_FAILED) {
        return NULL;
    }
    return (uint8_t *)(((uintptr_t)p + a - 1) & ~(uintptr_t)(a - 1));
}

/* The case's temp dir (the runner's tdir is not set in a case process) */
static const char *case_dir(void)
{
    return getenv("VFIO_MODEL_TMPDIR");
}

static bool state_empty(void)
{
    char *s = state_read();
    bool empty = !*s;
    free(s);
    return empty;
}

static char *log_text(void)
{
    return slurp(logp);
}

/* Waits for @pid up to @secs seconds; SIGKILLs it and returns -1 if late */
static int wait_timeout(pid_t pid, int secs, int *status)
{
    for (int i = 0; i < secs * 100; i++) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid) {
            return 0;
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
    return -1;
}

/* Runs this program's sub-case @name in a child with @env added */
static pid_t run_sub(const char *name, const char *const *env)
{
    pid_t pid = fork();

    if (pid == 0) {
        for (int i = 0; env[i]; i++) {
            putenv((char *)env[i]);
        }
        execl("/proc/self/exe", "robust", "--sub", name, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* A device fd of group @gfd, QEMU-like set up in setup_v2() */
static int device_fd(int gfd)
{
    return ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, BDF1);
}

/* ================================================================== */
/* 1. close() racing with calls on the same fd number */

struct race {
    int gfd;
    volatile int stop;
    long ioctl_ok, ioctl_ebadf, pread_ok, pread_ebadf, cycles;
};

static void *race_closer(void *p)
{
    struct race *r = p;

    /* at least 4000 cycles, and on until both sides of the race were seen */
    for (int i = 0; i < 4000 || (i < 100000 && !(r->ioctl_ok && r->pread_ok &&
                                 r->ioctl_ebadf && r->pread_ebadf)); i++) {
        int dfd = device_fd(r->gfd);
        int cfd = container_open();
        if (dfd >= 0) {
            close(dfd);
        }
        if (cfd >= 0) {
            close(cfd);
        }
        int n = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (n >= 0) {
            close(n);
        }
        r->cycles++;
    }
    r->stop = 1;
    return NULL;
}

static void *race_ioctl(void *p)
{
    struct race *r = p;

    while (!r->stop) {
        for (int fd = 3; fd < 64; fd++) {
            struct vfio_device_info info = { .argsz = sizeof(info) };
            int ret = ioctl(fd, VFIO_DEVICE_GET_INFO, &info);
            if (ret == 0) {
                __atomic_add_fetch(&r->ioctl_ok, 1, __ATOMIC_RELAXED);
            } else if (errno == EBADF) {
                __atomic_add_fetch(&r->ioctl_ebadf, 1, __ATOMIC_RELAXED);
            }
        }
    }
    return NULL;
}

static void *race_pread(void *p)
{
    struct race *r = p;

    while (!r->stop) {
        for (int fd = 3; fd < 64; fd++) {
            uint32_t v;
            ssize_t n = pread(fd, &v, 4, CFG_OFF);
            if (n == 4) {
                __atomic_add_fetch(&r->pread_ok, 1, __ATOMIC_RELAXED);
            } else if (n < 0 && errno == EBADF) {
                __atomic_add_fetch(&r->pread_ebadf, 1, __ATOMIC_RELAXED);
            }
        }
    }
    return NULL;
}

static int t_close_race_stress(void)
{
    int cfd, gfd;
    if (setup_v2(&cfd, &gfd, 7)) {
        return 1;
    }
    struct race r = { .gfd = gfd };
    pthread_t th[5];
    pthread_create(&th[0], NULL, race_closer, &r);
    pthread_create(&th[1], NULL, race_ioctl, &r);
    pthread_create(&th[2], NULL, race_ioctl, &r);
    pthread_create(&th[3], NULL, race_pread, &r);
    pthread_create(&th[4], NULL, race_pread, &r);
    for (int i = 0; i < 5; i++) {
        pthread_join(th[i], NULL);
    }
    CHECK(r.cycles >= 4000, "closer did %ld cycles", r.cycles);
    CHECK(r.ioctl_ok && r.pread_ok && r.ioctl_ebadf && r.pread_ebadf,
          "the race was not exercised: ioctl ok %ld ebadf %ld, pread ok %ld ebadf %ld",
          r.ioctl_ok, r.ioctl_ebadf, r.pread_ok, r.pread_ebadf);
    CHECK(count_lines(logp, "device-open ") == count_lines(logp, "device-close "),
          "device opens and closes differ");
    CHECK(state_count("device ") == 0 && state_has("group g=7 c=1 fd=open"),
          "state after the race");
    close(gfd);
    close(cfd);
    return 0;
}

/* A call that starts after close() finds no file: EBADF, for every kind */
static int t_ebadf_after_close(void)
{
    int cfd, gfd;
    if (setup_v2(&cfd, &gfd, 7)) {
        return 1;
    }
    int dfd = device_fd(gfd);
    uint32_t v = 0;
    CHECK(dfd >= 0, "device fd: %s", strerror(errno));
    CHECK(pread(dfd, &v, 4, CFG_OFF) == 4, "pread");
    int c2 = container_open(), g8 = group_open(8);
    CHECK(c2 >= 0 && g8 >= 0, "open");
    EXPECT_OK(close(dfd));
    EXPECT_OK(close(c2));
    EXPECT_OK(close(g8));
    struct vfio_device_info info = { .argsz = sizeof(info) };
    struct vfio_group_status st = { .argsz = sizeof(st) };
    EXPECT_ERR(ioctl(dfd, VFIO_DEVICE_GET_INFO, &info), EBADF);
    EXPECT_ERR(pread(dfd, &v, 4, CFG_OFF), EBADF);
    EXPECT_ERR(pwrite(dfd, &v, 4, CFG_OFF + 4), EBADF);
    EXPECT_ERR(ioctl(c2, VFIO_GET_API_VERSION), EBADF);
    EXPECT_ERR(ioctl(g8, VFIO_GROUP_GET_STATUS, &st), EBADF);
    EXPECT_ERR(close(dfd), EBADF);
    EXPECT_ERR(set_container(gfd, c2), EBADF);
    /* the fds still open work */
    EXPECT_OK(ioctl(gfd, VFIO_GROUP_GET_STATUS, &st));
    CHECK(ioctl(cfd, VFIO_GET_API_VERSION) == VFIO_API_VERSION, "api");
    close(gfd);
    close(cfd);
    EXPECT_ERR(ioctl(cfd, VFIO_GET_API_VERSION), EBADF);
    return 0;
}

/* ================================================================== */
/* 2. fork */

/* What a child reports to its parent */
static char *child_msg;

/* A check in a child: noted for the parent, which fails the case */
#define CHILD_CHECK(cond, ...) do {                                      \
        if (!(cond)) {                                                   \
            size_t l_ = strlen(child_msg);                               \
            snprintf(child_msg + l_, 4096 - l_, __VA_ARGS__);            \
            snprintf(child_msg + strlen(child_msg), 4096 - strlen(child_msg), "; "); \
        }                                                                \
    } while (0)

static int t_fork_child_close_keeps_parent(void)
{
    int cfd, gfd;
    if (setup_v2(&cfd, &gfd, 7)) {
        return 1;
    }
    uint8_t *mem = amap(65536);
    EXPECT_OK(reg_mem(cfd, mem, 65536));
    EXPECT_OK(map(cfd, 0x3000, 0x2000, mem, RW));
    int dfd = device_fd(gfd);
    CHECK(dfd >= 0, "device fd: %s", strerror(errno));
    int c2 = dup(cfd);
    CHECK(c2 >= 0, "dup");
    child_msg = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char *log0 = log_text();
    char *state0 = state_read();
    CHECK(strstr(state0, "mapping c=1 iova=0x3000 size=0x2000"), "no mapping: %s", state0);

    pid_t pid = fork();
    if (pid == 0) {
        struct vfio_group_status st = { .argsz = sizeof(st) };
        uint32_t v;
        /* the inherited fds are inert copies: calls fail, close forgets */
        errno = 0;
        CHILD_CHECK(ioctl(cfd, VFIO_GET_API_VERSION) == -1 && errno == EBADF,
                    "child: ioctl on an inherited container fd: errno %d", errno);
        errno = 0;
        CHILD_CHECK(ioctl(gfd, VFIO_GROUP_GET_STATUS, &st) == -1 && errno == EBADF,
                    "child: group ioctl: errno %d", errno);
        errno = 0;
        CHILD_CHECK(pread(dfd, &v, 4, CFG_OFF) == -1 && errno == EBADF,
                    "child: device pread: errno %d", errno);
        errno = 0;
        CHILD_CHECK(open("/dev/vfio/vfio", O_RDWR) == -1 && errno == ENODEV,
                    "child: open /dev/vfio/vfio: errno %d", errno);
        CHILD_CHECK(close(dfd) == 0 && close(gfd) == 0 && close(c2) == 0 &&
                    close(cfd) == 0, "child: close: %s", strerror(errno));
        errno = 0;
        CHILD_CHECK(close(cfd) == -1 && errno == EBADF, "child: second close");
        exit(0);        /* atexit handlers run: the model must do nothing */
    }
    int status;
    CHECK(wait_timeout(pid, 20, &status) == 0, "child hung");
    char *log1 = log_text();
    CHECK(!strcmp(log0, log1), "the child wrote the log:\n%s(child: %s)",
          log1 + strlen(log0), child_msg);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && !child_msg[0],
          "child status 0x%x: %s", status, child_msg);
    char *state1 = state_read();
    CHECK(!strcmp(state0, state1), "state changed:\n%s\n--- was:\n%s", state1, state0);
    CHECK(access(statep, F_OK) == 0, "the child's exit removed the state socket");
    char link[256];
    ssize_t n = readlink("/sys/bus/pci/devices/" BDF1 "/iommu_group", link, sizeof(link));
    CHECK(n > 0, "the child's exit removed the sysfs tree: %s", strerror(errno));
    struct vfio_group_status st = { .argsz = sizeof(st) };
    EXPECT_OK(ioctl(gfd, VFIO_GROUP_GET_STATUS, &st));
    CHECK(st.flags & VFIO_GROUP_FLAGS_CONTAINER_SET, "group detached");
    uint32_t v;
    CHECK(pread(dfd, &v, 4, CFG_OFF) == 4, "parent's device fd: %s", strerror(errno));
    /* the parent's closes release as usual */
    close(dfd);
    close(gfd);
    CHECK(file_has(logp, "group-detach g=7 c=1\n"), "parent detach not logged");
    close(c2);
    close(cfd);
    CHECK(file_has(logp, "container-close c=1\n"), "container-close");
    free(log0);
    free(log1);
    free(state0);
    free(state1);
    return 0;
}

struct busy {
    int cfd;
    uint8_t *mem;
    volatile int stop;
    long calls, ok;
};

/* Long calls: each maps or unmaps 16384 TCEs with the model lock held */
static void *busy_fn(void *p)
{
    struct busy *b = p;

    while (!b->stop) {
        if (!map(b->cfd, 0, 64 << 20, b->mem, RW) && !unmap(b->cfd, 0, 64 << 20)) {
            b->ok++;
        }
        b->calls++;
    }
    return NULL;
}

static int t_fork_while_lock_held(void)
{
    int cfd, gfd;
    if (setup_v2(&cfd, &gfd, 7)) {
        return 1;
    }
    size_t len = 64 << 20;
    uint8_t *mem = amap(len);
    EXPECT_OK(reg_mem(cfd, mem, len));
    struct busy b = { .cfd = cfd, .mem = mem };
    pthread_t th;
    pthread_create(&th, NULL, busy_fn, &b);
    while (!b.calls) {
        usleep(1000);
    }
    int hung = -1, bad = -1, status = 0;
    for (int i = 0; i < 60 && hung < 0 && bad < 0; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            /* each takes the model lock */
            close(gfd);
            close(cfd);
            open("/dev/vfio/vfio", O_RDWR);
            _exit(0);
        }
        if (wait_timeout(pid, 10, &status)) {
            hung = i;
        } else if (!WIFEXITED(status) || WEXITSTATUS(status)) {
            bad = i;
        }
    }
    b.stop = 1;
    pthread_join(th, NULL);
    CHECK(hung < 0, "child %d deadlocked (the model lock was held at fork)", hung);
    CHECK(b.ok == b.calls, "%ld of %ld map/unmap pairs failed", b.calls - b.ok, b.calls);
    CHECK(bad < 0, "child %d status 0x%x", bad, status);
    close(gfd);
    close(cfd);
    return 0;
}

/* ================================================================== */
/* 3. close_range, closefrom, dup2/dup3 onto, dup and F_DUPFD of model fds */

static int t_close_range_releases(void)
{
    int cfd, gfd;
    if (setup_v2(&cfd, &gfd, 7)) {
        return 1;
    }
    int dfd = device_fd(gfd);
    CHECK(dfd >= 0, "device fd");
    /* CLOSE_RANGE_CLOEXEC only marks them */
    EXPECT_OK(close_range(dfd, dfd, CLOSE_RANGE_CLOEXEC));
    CHECK(fcntl(dfd, F_GETFD) == FD_CLOEXEC, "cloexec");
    CHECK(!file_has(logp, "device-close"), "CLOEXEC released the device");
    int lo = cfd < gfd ? cfd : gfd;
    int hi = cfd < gfd ? gfd : cfd;
    hi = hi < dfd ? dfd : hi;
    EXPECT_OK(close_range(lo, hi, 0));
    CHECK(file_has(logp, "device-close dev=" BDF1 "\n"), "device not released");
    CHECK(file_has(logp, "group-detach g=7 c=1\n"), "group not released");
    CHECK(file_has(logp, "container-close c=1\n"), "container not released");
    CHECK(!state_has("container ") && !state_has("group "), "state not empty");
    EXPECT_ERR(ioctl(cfd, VFIO_GET_API_VERSION), EBADF);
    /*
     * A new file at the number is not a model fd. (It is put there with
     * dup2: the lowest free number also depends on the state thread's fds.)
     */
    int n = open("/dev/null", O_RDWR);
    CHECK(n >= 0 && dup2(n, lo) == lo, "reuse %d: %s", lo, strerror(errno));
    EXPECT_ERR(ioctl(lo, VFIO_GET_API_VERSION), ENOTTY);
    close(lo);
    if (n != lo) {
        close(n);
    }
    /* and the model goes on (its own fds survived) */
    cfd = container_open();
    CHECK(cfd >= 0, "reopen: %s", strerror(errno));
    CHECK(file_has(logp, "container-open c=2\n"), "log after close_range");
    close(cfd);
    return 0;
}

static int t_closefrom_releases(void)
{
    int cfd, gfd;
    if (setup_v2(&cfd, &gfd, 7)) {
        return 1;
    }
    int dfd = device_fd(gfd);
    CHECK(dfd >= 0, "device fd");
    closefrom(3);
    CHECK(file_has(logp, "group-close g=7\n"), "group file not released");
    CHECK(file_has(logp, "group-detach g=7 c=1\n"), "group not detached");
    CHECK(file_has(logp, "container-close c=1\n"), "container not released");
    CHECK(file_has(logp, "device-close dev=" BDF1 "\n"), "device not released");
    EXPECT_ERR(ioctl(gfd, VFIO_GROUP_UNSET_CONTAINER), EBADF);
    /* the model's own files (log, device memory) were not closed */
    cfd = container_open();
    gfd = group_open(7);
    CHECK(cfd >= 0 && gfd >= 0, "reopen: %s", strerror(errno));
    CHECK(file_has(logp, "container-open c=2\n"), "log lost after closefrom");
    EXPECT_OK(set_container(gfd, cfd));
    EXPECT_OK(ioctl(cfd, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU));
    dfd = device_fd(gfd);
    CHECK(dfd >= 0, "device fd after closefrom: %s", strerror(errno));
    uint32_t v = 0;
    CHECK(pread(dfd, &v, 4, CFG_OFF) == 4 && v == 0x10fb8086, "config 0x%x", v);
    close(dfd);
    close(gfd);
    close(cfd);
    return 0;
}

static int dup2_onto(bool three)
{
    int c1 = container_open(), c2 = container_open();
    int n = open("/dev/null", O_RDWR);
    CHECK(c1 >= 0 && c2 >= 0 && n >= 0, "open");
    /* a plain file onto a model fd: the model file is released */
    int r = three ? dup3(n, c1, O_CLOEXEC) : dup2(n, c1);
    CHECK(r == c1, "dup onto: %s", strerror(errno));
    CHECK(file_has(logp, "container-close c=1\n"), "c1 not released");
    EXPECT_ERR(ioctl(c1, VFIO_GET_API_VERSION), ENOTTY);     /* /dev/null now */
    close(c1);
    /* a model fd onto a model fd: the old one released, the new one shared */
    int g = group_open(7);
    int g2 = group_open(8);
    CHECK(g >= 0 && g2 >= 0, "group");
    r = three ? dup3(c2, g2, 0) : dup2(c2, g2);
    CHECK(r == g2, "dup model onto model");
    CHECK(file_has(logp, "group-close g=8\n"), "g8 not released");
    CHECK(ioctl(g2, VFIO_GET_API_VERSION) == VFIO_API_VERSION, "g2 is the container");
    EXPECT_OK(set_container(g, g2));
    close(c2);
    CHECK(!file_has(logp, "container-close c=2"), "c2 released with a dup open");
    EXPECT_OK(ioctl(g2, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU));
    /* same fd: nothing happens (dup3: EINVAL) */
    if (three) {
        EXPECT_ERR(dup3(g2, g2, 0), EINVAL);
    } else {
        CHECK(dup2(g2, g2) == g2, "dup2 onto itself");
    }
    CHECK(ioctl(g2, VFIO_GET_API_VERSION) == VFIO_API_VERSION, "still there");
    close(g2);
    CHECK(file_has(logp, "container-close c=2\n"), "c2 not released at last close");
    close(g);
    close(n);
    return 0;
}

static int t_dup2_onto_model_fd(void)
{
    return dup2_onto(false);
}

static int t_dup3_onto_model_fd(void)
{
    return dup2_onto(true);
}

/* A dup of @fd by @how: "dup", "dupfd" or "dupfd_cloexec" */
static int dup_by(int fd, const char *how)
{
    if (!strcmp(how, "dup")) {
        return dup(fd);
    }
    return fcntl(fd, !strcmp(how, "dupfd") ? F_DUPFD : F_DUPFD_CLOEXEC, 100);
}

static int dup_shares(const char *how)
{
    int cfd, gfd;
    if (setup_v2(&cfd, &gfd, 7)) {
        return 1;
    }
    int c2 = dup_by(cfd, how), g2 = dup_by(gfd, how);
    CHECK(c2 >= 0 && g2 >= 0, "%s: %s", how, strerror(errno));
    if (strcmp(how, "dup")) {
        CHECK(c2 >= 100 && g2 >= 100, "F_DUPFD below its minimum");
        CHECK(!strcmp(how, "dupfd") == !(fcntl(c2, F_GETFD) & FD_CLOEXEC), "cloexec");
    }
    close(cfd);
    close(gfd);
    CHECK(!file_has(logp, "container-close") && !file_has(logp, "group-close"),
          "released while a dup is open");
    CHECK(ioctl(c2, VFIO_GET_API_VERSION) == VFIO_API_VERSION, "dup of container");
    int dfd = device_fd(g2);
    CHECK(dfd >= 0, "device via the dup: %s", strerror(errno));
    int d2 = dup_by(dfd, how);
    close(dfd);
    uint32_t v = 0;
    CHECK(pread(d2, &v, 4, CFG_OFF) == 4 && v == 0x10fb8086, "pread dup: 0x%x", v);
    struct vfio_device_info info = { .argsz = sizeof(info) };
    EXPECT_OK(ioctl(d2, VFIO_DEVICE_GET_INFO, &info));
    CHECK(!file_has(logp, "device-close"), "device released with a dup open");
    close(d2);
    CHECK(file_has(logp, "device-close dev=" BDF1 "\n"), "device not released");
    close(g2);
    CHECK(file_has(logp, "group-close g=7\ngroup-detach g=7 c=1\n"), "group");
    close(c2);
    CHECK(file_has(logp, "container-close c=1\n"), "container");
    return 0;
}

static int t_dup_shares_file(void)
{
    return dup_shares("dup");
}

static int t_fcntl_dupfd_shares_file(void)
{
    return dup_shares("dupfd");
}

static int t_fcntl_dupfd_cloexec_shares_file(void)
{
    return dup_shares("dupfd_cloexec");
}

/* ================================================================== */
/*
 * 4. fd numbers past 65535. This machine's hard RLIMIT_NOFILE (20000, and
 * no CAP_SYS_RESOURCE to raise it) rules out a test with such fds: the
 * table grows in chunks (fd_table_grows below), with no fixed limit.
 */

/*
 * The same within RLIMIT_NOFILE as it is: model fds far apart, across many
 * chunks of the table and a directory that grows
 */
static int t_fd_table_grows(void)
{
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0, "getrlimit");
    rl.rlim_cur = rl.rlim_max;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit: %s", strerror(errno));
    int top = rl.rlim_max > 1 << 20 ? 1 << 20 : (int)rl.rlim_max - 1;
    CHECK(top >= 16384 + 100, "RLIMIT_NOFILE hard limit %llu: too low",
          (unsigned long long)rl.rlim_max);
    int cfd = container_open(), gfd = group_open(7);
    CHECK(cfd >= 0 && gfd >= 0, "open");
    /* dups all over the table, then the low ones closed */
    int fds[64];
    for (int i = 0; i < 64; i++) {
        fds[i] = fcntl(i & 1 ? gfd : cfd, F_DUPFD, 100 + (top - 100) / 64 * i);
        CHECK(fds[i] >= 0, "F_DUPFD %d: %s", i, strerror(errno));
    }
    CHECK(dup2(cfd, top) == top, "dup2 to %d: %s", top, strerror(errno));
    close(cfd);
    close(gfd);
    EXPECT_OK(set_container(fds[63], top));
    EXPECT_OK(ioctl(fds[0], VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU));
    int d0 = device_fd(fds[1]);
    int dfd = fcntl(d0, F_DUPFD, top - 1000);
    CHECK(d0 >= 0 && dfd >= top - 1000, "device fd %d: %s", dfd, strerror(errno));
    close(d0);
    uint32_t v = 0;
    CHECK(pread(dfd, &v, 4, CFG_OFF) == 4 && v == 0x10fb8086, "pread: 0x%x", v);
    CHECK(!file_has(logp, "container-close") && !file_has(logp, "group-close"), "early");
    EXPECT_OK(close_range(101, top - 1, 0));
    CHECK(file_has(logp, "device-close dev=" BDF1 "\n"), "device");
    CHECK(!file_has(logp, "container-close"), "container released with fd %d open", top);
    EXPECT_OK(close(fds[0]));
    CHECK(file_has(logp, "group-close g=7\ngroup-detach g=7 c=1\n"), "group");
    CHECK(ioctl(top, VFIO_GET_API_VERSION) == VFIO_API_VERSION, "ioctl on %d", top);
    close(top);
    CHECK(file_has(logp, "container-close c=1\n"), "container");
    return 0;
}

/* ================================================================== */
/* 5. the state snapshot socket */

static int io_count(const char *key, unsigned long long *v)
{
    char *s = slurp("/proc/self/io");
    char *p = strstr(s, key);
    int ok = p && sscanf(p + strlen(key), ": %llu", v) == 1;
    free(s);
    return ok ? 0 : -1;
}

#define NMAPS 100000

static int t_state_exact_no_per_call_writes(void)
{
    int cfd, gfd;
    if (setup_v2(&cfd, &gfd, 7)) {
        return 1;
    }
    uint8_t *mem = amap(65536);
    EXPECT_OK(reg_mem(cfd, mem, 65536));
    char *s0 = state_read();
    char *grp = strstr(s0, "group g=7 c=1 fd=open\n");
    CHECK(grp, "state: %s", s0);
    unsigned long long w0, w1;
    CHECK(io_count("syscw", &w0) == 0, "no /proc/self/io (task I/O accounting)");
    /* every other page twice, so that no two TCEs coalesce into one line */
    for (int i = 0; i < NMAPS; i++) {
        EXPECT_OK(map(cfd, (uint64_t)i << 12, 4096, mem + ((i & 1) << 13), RW));
        if (i == 999) {
            CHECK(io_count("syscw", &w1) == 0 && w1 == w0,
                  "%llu writes during 1000 maps: the model writes per call", w1 - w0);
        }
    }
    CHECK(io_count("syscw", &w1) == 0 && w1 == w0, "%llu writes during %d maps",
          w1 - w0, NMAPS);
    /* the exact snapshot: the lines before, the mappings, the group line */
    size_t cap = strlen(s0) + (size_t)NMAPS * 100, n = grp - s0;
    char *want = malloc(cap);
    memcpy(want, s0, n);
    for (int i = 0; i < NMAPS; i++) {
        n += snprintf(want + n, cap - n,
                      "mapping c=1 iova=0x%llx size=0x1000 vaddr=%p perm=rw\n",
                      (unsigned long long)i << 12, (void *)(mem + ((i & 1) << 13)));
    }
    snprintf(want + n, cap - n, "%s", grp);
    char *s1 = state_read();
    CHECK(!strcmp(s1, want), "snapshot differs (%zu bytes, want %zu)", strlen(s1),
          strlen(want));
    /* readers that hang up early do not hurt the server or the process */
    for (int i = 0; i < 5; i++) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        strcpy(sa.sun_path, statep);
        CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect");
        char b[100];
        CHECK(read(fd, b, sizeof(b)) > 0, "read");
        close(fd);
    }
    char *s2 = state_read();
    CHECK(!strcmp(s2, want), "second snapshot differs");
    EXPECT_OK(unmap(cfd, 0, GIB));
    char *s3 = state_read();
    CHECK(!strcmp(s3, s0), "after unmap: %s", s3);
    free(want);
    free(s0);
    free(s1);
    free(s2);
    free(s3);
    close(gfd);
    close(cfd);
    return 0;
}

/* The path of a library mapped in this process whose name has @name */
static bool mapped_lib(const char *name, char *path, size_t len)
{
    char *maps = slurp("/proc/self/maps");
    char *p = strstr(maps, name);
    bool ok = false;
    if (p) {
        char *b = p;
        while (b > maps && b[-1] != ' ' && b[-1] != '\n') {
            b--;
        }
        char *e = strchr(p, '\n');
        snprintf(path, len, "%.*s", (int)(e ? e - b : (long)strlen(b)), b);
        ok = path[0] == '/';
    }
    free(maps);
    return ok;
}

static int t_state_socket_lazy(void)
{
    /* nothing of VFIO touched yet: no socket */
    CHECK(access(statep, F_OK) == -1 && errno == ENOENT,
          "state path exists before any VFIO use");
    CHECK(state_empty(), "state");
    /* neither for a preloaded shell that only execs */
    char lib[PATH_MAX], asan[PATH_MAX], preload[2 * PATH_MAX + 2];
    char st[300], errf[300];
    CHECK(mapped_lib("libvfio-model.so", lib, sizeof(lib)), "library path");
    snprintf(preload, sizeof(preload), "%s", lib);
    if (mapped_lib("libasan.so", asan, sizeof(asan))) {
        snprintf(preload, sizeof(preload), "%s %s", asan, lib);
    }
    snprintf(st, sizeof(st), "%s/exec-state", case_dir());
    snprintf(errf, sizeof(errf), "%s/exec-stderr", case_dir());
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        setenv("LD_PRELOAD", preload, 1);
        setenv("ASAN_OPTIONS", "detect_leaks=0:verify_asan_link_order=0", 1);
        setenv("VFIO_MODEL_STATE", st, 1);
        /* a bad flavour makes every preloaded process say so on stderr */
        setenv("VFIO_MODEL_FLAVOUR", "power0", 1);
        execl("/bin/sh", "sh", "-c", "exec /bin/true", (char *)NULL);
        _exit(127);
    }
    int status;
    CHECK(wait_timeout(pid, 20, &status) == 0 && WIFEXITED(status) &&
          WEXITSTATUS(status) == 0, "sh status 0x%x", status);
    char *err = slurp(errf);
    char *second = strstr(err, "configuration error");
    CHECK(second && strstr(second + 1, "configuration error"),
          "the model was not preloaded in both processes: %s", err);
    CHECK(access(st, F_OK) == -1 && errno == ENOENT, "%s was created", st);
    /* sysfs reads do not create it either; the first open of /dev/vfio does */
    char link[256];
    CHECK(readlink("/sys/bus/pci/devices/" BDF1 "/iommu_group", link, sizeof(link)) > 0,
          "sysfs");
    CHECK(access(statep, F_OK) == -1, "created by a sysfs read");
    int cfd = container_open();
    CHECK(cfd >= 0, "open");
    struct stat sb;
    CHECK(stat(statep, &sb) == 0 && S_ISSOCK(sb.st_mode), "no socket after open");
    CHECK(state_has("container c=1 iommu=none groups= fd=open enabled=0\n"), "state");
    close(cfd);
    CHECK(state_empty(), "state after close");
    free(err);
    return 0;
}

/* ================================================================== */
/* 6. log writes: interrupted, short, failing */

static void on_alarm(int sig)
{
    (void)sig;
}

/* Sub-process: 2000 maps and unmaps under a 1 ms SIGALRM without SA_RESTART */
static int sub_log_maps(void)
{
    struct sigaction sa = { .sa_handler = on_alarm };  /* no SA_RESTART */
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    int cfd, gfd;
    if (setup_v2(&cfd, &gfd, 7)) {
        return 1;
    }
    uint8_t *mem = amap(65536);
    EXPECT_OK(reg_mem(cfd, mem, 65536));
    for (int i = 0; i < 2000; i++) {
        EXPECT_OK(map(cfd, (uint64_t)(i % 64) << 12, 4096, mem, RW));
        EXPECT_OK(unmap(cfd, (uint64_t)(i % 64) << 12, 4096));
    }
    close(gfd);
    close(cfd);
    return 0;
}

/*
 * Runs sub_log_maps with its log on a pipe: read slowly (@keep bytes, or
 * all if 0, then hang up); the lines read in *@text
 */
static int log_pipe_run(size_t keep, int *status, char **text)
{
    int p[2];
    /* only the write end goes to the sub-process */
    CHECK(pipe2(p, O_CLOEXEC) == 0 && fcntl(p[1], F_SETFD, 0) == 0, "pipe");
    char logenv[64];
    snprintf(logenv, sizeof(logenv), "VFIO_MODEL_LOG=/proc/self/fd/%d", p[1]);
    const char *env[] = { logenv, "VFIO_MODEL_DEVICES=" DEVS, "VFIO_MODEL_STATE=", NULL };
    pid_t pid = run_sub("log_maps", env);
    close(p[1]);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    for (;;) {
        char b[256];
        ssize_t n = read(p[0], b, sizeof(b));
        if (n <= 0) {
            break;
        }
        fwrite(b, 1, n, m);
        fflush(m);
        if (keep && len >= keep) {
            break;
        }
        usleep(300);
    }
    close(p[0]);
    fclose(m);
    *text = buf;
    CHECK(wait_timeout(pid, 60, status) == 0, "sub-process hung");
    return 0;
}

static int t_log_eintr_no_loss(void)
{
    int status;
    char *text;
    if (log_pipe_run(0, &status, &text)) {
        return 1;
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "sub status 0x%x", status);
    int maps = 0, unmaps = 0;
    for (char *l = text; *l;) {
        maps += !strncmp(l, "map c=1 ", 8);
        unmaps += !strncmp(l, "unmap c=1 ", 10);
        char *e = strchr(l, '\n');
        CHECK(e, "partial last line");
        l = e + 1;
    }
    CHECK(maps == 2000 && unmaps == 2000, "%d map and %d unmap lines of 2000", maps,
          unmaps);
    free(text);
    return 0;
}

static int t_log_epipe_no_crash(void)
{
    int status;
    char *text;
    if (log_pipe_run(4096, &status, &text)) {
        return 1;
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "sub status 0x%x (killed by signal %d?)", status,
          WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    free(text);
    return 0;
}

/* ================================================================== */
static const struct tcase cases[] = {
    { "close_race_stress", t_close_race_stress, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "ebadf_after_close", t_ebadf_after_close, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "fork_child_close_keeps_parent", t_fork_child_close_keeps_parent,
      { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "fork_while_lock_held", t_fork_while_lock_held, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "close_range_releases", t_close_range_releases, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "closefrom_releases", t_closefrom_releases, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "dup2_onto_model_fd", t_dup2_onto_model_fd, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "dup3_onto_model_fd", t_dup3_onto_model_fd, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "dup_shares_file", t_dup_shares_file, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "fcntl_dupfd_shares_file", t_fcntl_dupfd_shares_file,
      { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "fcntl_dupfd_cloexec_shares_file", t_fcntl_dupfd_cloexec_shares_file,
      { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "fd_table_grows", t_fd_table_grows, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "state_exact_no_per_call_writes", t_state_exact_no_per_call_writes,
      { "VFIO_MODEL_DEVICES=" DEVS, "VFIO_MODEL_LOG=" }, NULL },
    { "state_socket_lazy", t_state_socket_lazy, { "VFIO_MODEL_DEVICES=" DEVS }, NULL },
    { "log_eintr_no_loss", t_log_eintr_no_loss, { NULL }, NULL },
    { "log_epipe_no_crash", t_log_epipe_no_crash, { NULL }, NULL },
};

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--sub")) {
        int r = 2;
        if (!strcmp(argv[2], "log_maps")) {
            r = sub_log_maps();
        }
        if (r) {
            fprintf(stderr, "sub %s: %s\n", argv[2], failmsg);
        }
        return r;
    }
    return run_cases(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
