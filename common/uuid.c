/* UUID text; see uuid.h. */
#include "common/uuid.h"

#include <string.h>
#include <uuid/uuid.h>

bool keel_uuid_valid_n(const char *s, size_t len)
{
    if (s == NULL || len != KEEL_UUID_LEN)
        return false;
    for (size_t i = 0; i < KEEL_UUID_LEN; i++) {
        char c = s[i];

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

bool keel_uuid_valid(const char *s)
{
    return s != NULL && keel_uuid_valid_n(s, strlen(s));
}

void keel_uuid_new(char out[KEEL_UUID_LEN + 1])
{
    uuid_t u;

    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}
