/*
 * libFuzzer target: oVirt domain metadata (metadata/sd_md.c), read from
 * dom_md/metadata files and VG tags that any host may have written.
 * Beyond "no crash": what parses formats to text that parses to the same
 * map with a valid seal, in the file form and in the VG tag form (the
 * input is also read as one tag per line).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/sd_md.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void file_form(const char *text, size_t size)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd_md md, md2;
    struct keel_sd_info info;
    struct keel_strbuf out;
    bool sealed = false;

    keel_sd_md_init(&md);
    keel_sd_md_init(&md2);
    if (keel_sd_md_parse(text, size, &md, NULL, &err) == 0) {
        (void)keel_sd_md_info(&md, &info, &err);
        keel_strbuf_init(&out, 0);
        keel_sd_md_format(&md, &out);
        if (keel_sd_md_parse(out.buf, out.len, &md2, &sealed, &err) != 0 ||
            (md.n > 0 && !sealed) || !keel_sd_md_equal(&md, &md2))
            abort();
        keel_strbuf_release(&out);
    }
    keel_sd_md_release(&md);
    keel_sd_md_release(&md2);
}

static void tag_form(char *text)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd_md md, md2;
    char *tags[256], *save = NULL, **out = NULL;
    size_t n = 0, nout = 0;
    bool sealed = false;

    for (char *t = strtok_r(text, "\n", &save); t != NULL && n < 256;
         t = strtok_r(NULL, "\n", &save))
        tags[n++] = t;
    keel_sd_md_init(&md);
    keel_sd_md_init(&md2);
    if (keel_sd_md_from_tags((const char *const *)tags, n, &md, NULL, &err) == 0) {
        if (keel_sd_md_to_tags(&md, &out, &nout, &err) != 0)
            abort();
        if (keel_sd_md_from_tags((const char *const *)out, nout, &md2, &sealed, &err) != 0 ||
            (md.n > 0 && !sealed) || !keel_sd_md_equal(&md, &md2))
            abort();
        keel_sd_md_tags_free(out, nout);
    }
    keel_sd_md_release(&md);
    keel_sd_md_release(&md2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    file_form(text, size);
    tag_form(text);
    free(text);
    return 0;
}
