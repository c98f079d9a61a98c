/* LVM2 identifiers and names; see lvm_id.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "common/strutil.h"
#include "metadata/lvm_id.h"

static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

int keel_lvm_id_new(char raw[KEEL_LVM_ID_LEN + 1], struct keel_error *err)
{
    int n = 0;

    while (n < KEEL_LVM_ID_LEN) {
        unsigned char b[64];
        ssize_t got = getrandom(b, sizeof(b), 0);

        if (got < 0) {
            if (errno == EINTR)
                continue;
            return keel_error_errno(err, KEEL_E_IO, errno, "cannot get random bytes");
        }
        /* Reject 248..255 so that every character is equally likely (248 = 4 * 62). */
        for (ssize_t i = 0; i < got && n < KEEL_LVM_ID_LEN; i++)
            if (b[i] < 248)
                raw[n++] = alphabet[b[i] % 62];
    }
    raw[KEEL_LVM_ID_LEN] = '\0';
    return 0;
}

void keel_lvm_id_dash(const char *raw, char out[KEEL_LVM_ID_DASHED_LEN + 1])
{
    static const int groups[] = { 6, 4, 4, 4, 4, 4, 6 };
    int o = 0, r = 0;

    for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
        if (g > 0)
            out[o++] = '-';
        for (int i = 0; i < groups[g]; i++)
            out[o++] = raw[r++];
    }
    out[o] = '\0';
}

static bool id_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '!' || c == '#';
}

int keel_lvm_id_parse(const char *s, size_t len, char raw[KEEL_LVM_ID_LEN + 1])
{
    int n = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '-')
            continue;
        if (!id_char(s[i]) || n == KEEL_LVM_ID_LEN)
            return -1;
        raw[n++] = s[i];
    }
    if (n != KEEL_LVM_ID_LEN)
        return -1;
    raw[n] = '\0';
    return 0;
}

bool keel_lvm_id_valid_raw(const char *s)
{
    size_t len = strlen(s);

    if (len != KEEL_LVM_ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!id_char(s[i]))
            return false;
    return true;
}

static int check_name(const char *what, const char *name, struct keel_error *err)
{
    size_t len = strlen(name);

    if (len == 0)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s name is empty", what);
    if (len > KEEL_LVM_NAME_MAX)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s name '%.40s...': longer than %d",
                              what, name, KEEL_LVM_NAME_MAX);
    if (name[0] == '-')
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s name '%s': starts with '-'", what,
                              name);
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s name '%s': not allowed", what, name);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '_' || c == '+' || c == '-'))
            return keel_error_set(err, KEEL_E_INVAL, EINVAL,
                                  "%s name '%s': character '%c' is not allowed", what, name, c);
    }
    return 0;
}

int keel_lvm_check_vg_name(const char *name, struct keel_error *err)
{
    return check_name("VG", name, err);
}

int keel_lvm_check_lv_name(const char *vg, const char *name, struct keel_error *err)
{
    static const char *const reserved[] = {
        "_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_wcorig", "_mimage", "_mlog",
        "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata", "_imeta", "_iorig", "_pmspare",
        "_vorigin",
    };

    if (check_name("LV", name, err) != 0)
        return -1;
    if (keel_str_has_prefix(name, "pvmove") || keel_str_has_prefix(name, "snapshot"))
        return keel_error_set(err, KEEL_E_INVAL, EINVAL,
                              "LV name '%s': names starting with pvmove or snapshot are reserved",
                              name);
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strstr(name, reserved[i]) != NULL)
            return keel_error_set(err, KEEL_E_INVAL, EINVAL,
                                  "LV name '%s': contains the reserved '%s'", name, reserved[i]);
    /* Segment references look PV names ("pv0") up first. */
    if (name[0] == 'p' && name[1] == 'v' && name[2] >= '0' && name[2] <= '9') {
        size_t i = 2;

        while (name[i] >= '0' && name[i] <= '9')
            i++;
        if (name[i] == '\0')
            return keel_error_set(err, KEEL_E_INVAL, EINVAL,
                                  "LV name '%s': looks like a PV name", name);
    }
    if (vg != NULL && strlen(vg) + strlen(name) + 3 >= 128)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL,
                              "LV name '%s': too long together with VG name '%s'", name, vg);
    return 0;
}

int keel_lvm_check_tag(const char *tag, struct keel_error *err)
{
    size_t len = strlen(tag);

    if (len == 0)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "empty tag");
    for (size_t i = 0; i < len; i++) {
        char c = tag[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              strchr("._+/=!:&#-", c) != NULL))
            return keel_error_set(err, KEEL_E_INVAL, EINVAL,
                                  "tag '%.60s': character '%c' is not allowed", tag, c);
    }
    return 0;
}
