/* folder.c - a data set from a folder of images, the layout Keras and torchvision read: one sub-folder per
 * class, named as the class, holding its images (PNG, JPEG, PGM, PPM; other files are not read).
 * Classes are the sub-folders in sorted order; every image is made the size and channels of the first one
 * (grey or colour) and kept as bytes, as IDX images are. */
#include "data/data.h"

#include <dirent.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>

/* More classes or images than this is not a folder anyone sorted by hand. */
#define MAX_CLASSES 4096

typedef struct entry {
    char *path;
    int32_t label;
} entry;

typedef struct listing {
    char **classes;
    size_t n_classes;
    entry *files;
    size_t n_files, cap_files;
} listing;

static bool is_image_name(const char *name)
{
    static const char *const suffixes[] = {".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".pnm"};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof suffixes / sizeof suffixes[0]; i++)
        if (strcasecmp(dot, suffixes[i]) == 0)
            return true;
    return false;
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The names in a folder, sorted, that `want` accepts (sub-folders, or image files); NULL and *n = 0 if none. */
static char **names_in(const char *dir, bool folders, size_t *n, nr_status *st)
{
    DIR *d = opendir(dir);
    *n = 0;
    *st = d ? NR_OK : nr__fail(NR_EIO, "%s: cannot read the folder", dir);
    char **names = NULL;
    size_t cap = 0;
    for (struct dirent *e; d && !*st && (e = readdir(d));) {
        char path[4096];
        struct stat sb;
        if (e->d_name[0] == '.' || snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path ||
            stat(path, &sb) != 0 || (folders ? !S_ISDIR(sb.st_mode) : !S_ISREG(sb.st_mode) || !is_image_name(e->d_name)))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = *n < NR__MAX_SAMPLES ? realloc(names, cap * sizeof *names) : NULL;
            if (!grown) {
                *st = nr__fail(NR_ENOMEM, "%s: out of memory listing the folder", dir);
                break;
            }
            names = grown;
        }
        if (!(names[*n] = strdup(e->d_name)))
            *st = nr__fail(NR_ENOMEM, "out of memory");
        else
            (*n)++;
    }
    if (d)
        closedir(d);
    if (names)
        qsort(names, *n, sizeof *names, compare_names);
    return names;
}

static nr_status add_file(listing *l, const char *dir, const char *name, int32_t label)
{
    if (l->n_files == l->cap_files) {
        size_t cap = l->cap_files ? 2 * l->cap_files : 256;
        entry *grown = l->n_files < NR__MAX_SAMPLES ? realloc(l->files, cap * sizeof *grown) : NULL;
        if (!grown)
            return nr__fail(NR_ENOMEM, "out of memory listing the images");
        l->files = grown;
        l->cap_files = cap;
    }
    size_t len = strlen(dir) + strlen(name) + 2;
    char *path = malloc(len);
    if (!path)
        return nr__fail(NR_ENOMEM, "out of memory");
    snprintf(path, len, "%s/%s", dir, name);
    l->files[l->n_files++] = (entry){path, label};
    return NR_OK;
}

/* The classes (sub-folders) and every image in them. */
static nr_status list_folder(const char *root, listing *l)
{
    nr_status st;
    l->classes = names_in(root, true, &l->n_classes, &st);
    if (!st && l->n_classes == 0)
        st = nr__fail(NR_EFORMAT, "%s: no sub-folders: a folder of images has one sub-folder per class", root);
    if (!st && l->n_classes > MAX_CLASSES)
        st = nr__fail(NR_EFORMAT, "%s: %zu sub-folders, more than %d classes", root, l->n_classes, MAX_CLASSES);
    for (size_t k = 0; !st && k < l->n_classes; k++) {
        char dir[4096];
        size_t n;
        snprintf(dir, sizeof dir, "%s/%s", root, l->classes[k]);
        char **files = names_in(dir, false, &n, &st);
        for (size_t i = 0; !st && i < n; i++)
            st = add_file(l, dir, files[i], (int32_t)k);
        nr__free_strings(files, n);
    }
    if (!st && l->n_files == 0)
        st = nr__fail(NR_EFORMAT, "%s: no images (PNG, JPEG, PGM, PPM) in its sub-folders", root);
    return st;
}

static void free_listing(listing *l)
{
    nr__free_strings(l->classes, l->n_classes);
    for (size_t i = 0; i < l->n_files; i++)
        free(l->files[i].path);
    free(l->files);
}

/* Every image decoded and made the first one's shape, as bytes. */
static nr_status read_images(const listing *l, nr_dataset **out)
{
    nr__image img;
    nr_status st = nr__image_read(l->files[0].path, &img);
    if (st)
        return st;
    size_t shape[3] = {img.h, img.w, img.c};
    nr__image_free(&img);
    if ((st = nr__data_new(l->n_files, shape, true, out)))
        return st;
    nr_dataset *d = *out;
    float *pixels = malloc(d->features * sizeof *pixels);
    if (!pixels)
        return nr__fail(NR_ENOMEM, "out of memory");
    for (size_t i = 0; !st && i < l->n_files; i++) {
        if (!(st = nr__image_read(l->files[i].path, &img)))
            st = nr__image_convert(&img, shape[0], shape[1], shape[2], NULL, pixels);
        nr__image_free(&img);
        for (size_t k = 0; !st && k < d->features; k++)
            d->u8[i * d->features + k] = (uint8_t)(pixels[k] + 0.5f);
        d->labels[i] = l->files[i].label;
    }
    free(pixels);
    return st;
}

nr_status nr__data_load_folder(const char *path, nr_dataset **out)
{
    listing l = {0};
    nr_status st = list_folder(path, &l);
    if (!st)
        st = read_images(&l, out);
    if (!st) {
        (*out)->classes = l.n_classes;
        (*out)->class_names = l.classes;
        l.classes = NULL;
    } else {
        nr_data_free(*out);
        *out = NULL;
    }
    free_listing(&l);
    return st;
}
