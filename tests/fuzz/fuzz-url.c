/*
 * libFuzzer target: storage URL parsing (io/url.c).  URLs come from admins
 * and from the engine over the network.  Checks besides "no crash": a URL
 * that parses formats back to a string that parses to the same thing, and
 * no redacted form ever contains the secret.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_url u, u2;
    char buf[KEEL_URL_MAX], red[KEEL_URL_MAX];

    (void)red;

    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (keel_url_parse(s, &u, &err) == 0) {
        keel_url_format(&u, false, buf, sizeof(buf));
        if (keel_url_parse(buf, &u2, &err) != 0 || memcmp(&u, &u2, sizeof(u)) != 0)
            abort();
        keel_url_format(&u, true, red, sizeof(red));
        /* The redacted form is the full one with "%<secret>@" as "%***@". */
        if (u.secret[0] != '\0') {
            char want[KEEL_URL_MAX];
            char *cut = strstr(buf, "%");

            if (cut == NULL)
                abort();
            snprintf(want, sizeof(want), "%.*s%%***%s", (int)(cut - buf), buf,
                     cut + 1 + strlen(u.secret));
            if (strcmp(want, red) != 0)
                abort();
        }
    } else if (strlen(err.msg) >= sizeof(err.msg)) {
        abort();
    }
    keel_url_parse_portal(s, &u, &err);
    keel_path_check(s, &err);
    free(s);
    return 0;
}
