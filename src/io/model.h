/* model.h - the model file's container, shared by model.c (networks) and train.c (checkpoints). */
#ifndef NR_MODEL_H
#define NR_MODEL_H

#include "io/io.h"
#include "core/net.h"
#include "data/data.h"

/* 1: the first format; 2: image layers (conv2d, pooling, flatten, batchnorm, dropout); 3: quantized models
 * (QUNT in place of TENS). Older files load. */
#define NR__FORMAT_VERSION 3

/* Where the bytes of a file being written go: counted always, checksummed and written when `file` is set.
 * Writing a file is two passes through the same code: one to measure, one to write. */
typedef struct nr__sink {
    nr__atomic *file;
    unsigned char *mem;  /* or into memory (sized by a measuring pass first) */
    uint64_t length;
    uint32_t crc;
} nr__sink;

void nr__put(nr__sink *s, const void *data, size_t len);
void nr__put_u8(nr__sink *s, uint8_t v);
void nr__put_u32(nr__sink *s, uint32_t v);
void nr__put_u64(nr__sink *s, uint64_t v);
void nr__put_f32(nr__sink *s, float v);
void nr__put_f64(nr__sink *s, double v);
void nr__put_floats(nr__sink *s, const float *v, size_t count);
/* A section: 4-letter tag, u64 payload length, payload written by fn (called twice: measure, then write). */
void nr__put_section(nr__sink *s, const char tag[4], void (*fn)(nr__sink *s, const void *ctx), const void *ctx);

/* A bounds-checked reader over a file held in memory. After the first failure every get fails. */
typedef struct nr__reader {
    const unsigned char *p, *end;
    const char *path;
    const char *where;   /* the section being read, for messages */
    nr_status st;
} nr__reader;

bool nr__get(nr__reader *r, void *out, size_t len);
bool nr__get_u8(nr__reader *r, uint8_t *v);
bool nr__get_u32(nr__reader *r, uint32_t *v);
bool nr__get_u64(nr__reader *r, uint64_t *v);
bool nr__get_f32(nr__reader *r, float *v);
bool nr__get_f64(nr__reader *r, double *v);
bool nr__get_floats(nr__reader *r, float *v, size_t count);
/* Fails the reader with a message "<path>: <section>: <what>". */
bool nr__reader_fail(nr__reader *r, const char *fmt, ...) NR_PRINTF(2, 3);

/* Extra sections a checkpoint adds to a model file. */
typedef struct nr__extra {
    void (*write)(nr__sink *s, const void *ctx);       /* writes whole sections with nr__put_section */
    const void *ctx;
    /* Called for every section the model reader does not know; returns false (reader failed) to refuse. */
    bool (*read)(nr__reader *section, const char tag[4], void *ctx);
    void *read_ctx;
} nr__extra;

/* Writes a network, plus `extra` sections, whole or not at all. */
nr_status nr__model_write(const nr_net *net, const char *path, const nr__extra *extra);
/* Reads a network; `extra` (may be NULL) receives the sections a plain model does not have. `flags` receives
 * the header's flags. */
nr_status nr__model_read(const char *path, nr_net **out, const nr__extra *extra, uint32_t *flags);

enum { NR__FLAG_CHECKPOINT = 1 };

/* The sections that say what the network knows of its data (model_meta.c): written after TENS; a section
 * read by nr__read_data_section returns 1 (failures on the reader), any other 0. */
void nr__put_data_sections(nr__sink *s, const nr_net *net);

/* A quantized network's int8 layers (model_quant.c): the QUNT section, and its reader (false: r failed). */
void nr__put_quant_section(nr__sink *s, const nr_net *net);
bool nr__read_quant(nr__reader *r, nr_net *net);
int nr__read_data_section(nr__reader *r, const char tag[4], nr_net *net);

#endif
