/* SPDX-License-Identifier: Apache-2.0 */
/* tmpdir_fixture: a per-group temp dir for unit tests that write files (cmocka setup/teardown). */
#ifndef TP_TMPDIR_FIXTURE_H
#define TP_TMPDIR_FIXTURE_H

/* Define TMPDIR_PREFIX (the test's name) before including; include after
 * <cmocka.h>, <dirent.h>, <stdio.h>, <stdlib.h>, <string.h>, <unistd.h>. */

#define SEC INT64_C(1000)
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

static char tmpdir[256];

static inline int make_tmpdir(void **state)
{
    const char *base = getenv("TMPDIR");

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/%s.XXXXXX",
             base && *base ? base : "/tmp", TMPDIR_PREFIX);
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static inline int remove_tmpdir(void **state)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char path[512];

    (void)state;
    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    return rmdir(tmpdir);
}

/* Writes text to tmpdir/name; path receives the file's path. */
static inline void write_file(const char *name, const char *text, char *path,
                       size_t path_size)
{
    FILE *f;

    snprintf(path, path_size, "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);

#endif
