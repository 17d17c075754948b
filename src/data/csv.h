/* csv.h - the CSV tokenizer (csv.c) shared by the table reader (csv_table.c). */
#ifndef NR_CSV_H
#define NR_CSV_H

#include "data/data.h"

/* Text shown in messages is cut to this many characters, and bytes that are not printable become '?'. */
#define SHOWN_TEXT 24

typedef struct field {
    const char *text;
    size_t len;
} field;

typedef struct csv_parser {
    const char *path;
    const char *p, *end;   /* the unread rest of the file */
    size_t line;           /* 1-based number of the line being read */
    field *fields;         /* the current line's fields */
    size_t n_fields, cap_fields;
    nr_status status;      /* why next_line failed */
} csv_parser;

/* Splits the next line into fields. Returns 0 at the end of the file, 1 for a line with fields, 2 for a
 * blank line, or -1 with c->status and the message set. */
int nr__csv_next_line(csv_parser *c);
/* Reads a field as a number (anything strtod takes, in full); false if it is not one. */
bool nr__csv_number(const field *f, double *value);
/* A field as text for a message: cut, unprintable bytes as '?'. */
const char *nr__csv_show(const field *f, char buf[SHOWN_TEXT + 4]);
/* Whether a field stands for a missing value: empty, NA, N/A or ?. */
bool nr__csv_missing(const field *f);

#endif
