/*
 * fuzz_regression_main.c - replays kept fuzz inputs through
 * LLVMFuzzerTestOneInput without libFuzzer, so the corpus runs under gcc with
 * ASan+UBSan in every `make test` (clang is only needed to fuzz).
 *
 * Usage: fuzz-regression NAME PATH...   (a PATH may be a file or a directory of files)
 * Prints each input's path before replaying it, then
 * "fuzz regression (NAME): N inputs, no failure" and exits 0; a failing
 * input aborts inside the target (or in a sanitizer) right after its path.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    size_t capacity = 4096;
    size_t size = 0;
    uint8_t *data = malloc(capacity);
    size_t n;
    while (data != NULL && (n = fread(data + size, 1, capacity - size, f)) > 0) {
        size += n;
        if (size == capacity) {
            capacity *= 2;
            uint8_t *grown = realloc(data, capacity);
            if (grown == NULL) {
                free(data);
            }
            data = grown;
        }
    }
    const int read_error = ferror(f);
    fclose(f);
    if (data == NULL || read_error) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(data);
        return -1;
    }
    /* Printed (and flushed) first, so a crash inside the target follows the name of its input. */
    printf("  input %s (%zu bytes)\n", path, size);
    fflush(stdout);
    /* A copy of exactly `size` bytes, so ASan also catches the target reading past the input. */
    uint8_t *exact = malloc(size > 0 ? size : 1);
    if (exact == NULL) {
        free(data);
        return -1;
    }
    memcpy(exact, data, size);
    free(data);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    return 0;
}

static int name_order(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Replays every regular file of a directory in name order, so runs are reproducible. */
static int replay_dir(const char *dir, long *count)
{
    struct dirent **entries;
    const int n = scandir(dir, &entries, NULL, NULL);
    if (n < 0) {
        perror(dir);
        return -1;
    }
    char **paths = calloc((size_t) n + 1, sizeof *paths);
    int files = 0;
    for (int i = 0; i < n; i++) {
        char *path;
        struct stat st;
        if (paths != NULL && asprintf(&path, "%s/%s", dir, entries[i]->d_name) >= 0) {
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                paths[files++] = path;
            } else {
                free(path);
            }
        }
        free(entries[i]);
    }
    free(entries);
    if (paths == NULL) {
        return -1;
    }
    qsort(paths, (size_t) files, sizeof *paths, name_order);
    int status = 0;
    for (int i = 0; i < files; i++) {
        if (status == 0 && replay_file(paths[i]) == 0) {
            (*count)++;
        } else {
            status = -1;
        }
        free(paths[i]);
    }
    free(paths);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s NAME PATH...\n", argv[0]);
        return 2;
    }
    long count = 0;
    for (int i = 2; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        const int status = S_ISDIR(st.st_mode) ? replay_dir(argv[i], &count)
                                               : replay_file(argv[i]) == 0 ? (count++, 0) : -1;
        if (status != 0) {
            return 1;
        }
    }
    if (count == 0) {
        /* An empty corpus would make the regression pass while testing nothing. */
        fprintf(stderr, "fuzz regression (%s): no inputs found\n", argv[1]);
        return 1;
    }
    printf("fuzz regression (%s): %ld inputs, no failure\n", argv[1], count);
    return 0;
}
