/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A library to preload around spapr-tce-vfio-test (scripts/run-tests.sh):
 * each qemu-system process it lands in appends its LD_PRELOAD to the file
 * named by PRELOAD_MARK, so the test can be shown to keep a preload of its
 * caller's and to add the VFIO model after it.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((constructor)) static void preload_mark(void)
{
    const char *out = getenv("PRELOAD_MARK");
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    FILE *f;

    if (!out || n <= 0) {
        return;
    }
    exe[n] = 0;
    if (!strstr(exe, "qemu-system-") || !(f = fopen(out, "a"))) {
        return;
    }
    fprintf(f, "%s\n", getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "");
    fclose(f);
}
