/*
 * Records of Keel's SPM journal (spm/journal.h), in the keel_journal area
 * of a domain (an LV of one extent on block domains, dom_md/keel_journal
 * on file domains; oVirt ignores both).  docs/journal.md describes it.
 *
 * The area is an array of record slots; slot i has two copies, at
 * (2i) x 4096 and (2i + 1) x 4096.  An update writes the copy that does
 * not hold the newest valid record, so a torn write leaves the other one:
 * the reader takes the valid copy with the higher seq.
 *
 * A record, 4096 bytes, integers little-endian:
 *      0   8  magic "KEELJRN1"
 *      8   4  CRC-32C (keel_crc32c(~0, ...) inverted) of bytes 12..4096
 *     12   4  version, 1
 *     16   8  seq: grows with every record write in the area
 *     24   8  lver: the SPM lease version of the writer (its fencing token)
 *     32   8  host id of the writer
 *     40   4  state: 0 free, 1 open (an operation in progress), 2 done
 *     44   4  step: the last step boundary the operation passed
 *     48  32  operation name, NUL-padded ("volume.create")
 *     80   4  length of the arguments
 *     84   -  arguments: "key=value\n" lines, UTF-8, no NUL
 *   rest      zero
 */
#ifndef KEEL_METADATA_JOURNAL_FMT_H
#define KEEL_METADATA_JOURNAL_FMT_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define KEEL_JREC_SIZE 4096
#define KEEL_JREC_OP_LEN 32
#define KEEL_JREC_ARGS_MAX (KEEL_JREC_SIZE - 84)

enum keel_jrec_state {
    KEEL_JREC_FREE = 0,
    KEEL_JREC_OPEN = 1,
    KEEL_JREC_DONE = 2,
};

struct keel_jrec {
    uint64_t seq, lver, host_id;
    enum keel_jrec_state state;
    uint32_t step;
    char op[KEEL_JREC_OP_LEN];          /* NUL-terminated, at most 31 bytes */
    char args[KEEL_JREC_ARGS_MAX + 1];  /* NUL-terminated */
};

/* Encode r into buf[0..4096).  KEEL_E_INVAL when op or args do not fit or are not text. */
int keel_jrec_encode(const struct keel_jrec *r, unsigned char *buf, struct keel_error *err);

/*
 * Decode buf[0..4096).  An all-zero buffer (never written) is a FREE
 * record with seq 0.  Otherwise the magic, checksum, version, state,
 * name and arguments are checked: KEEL_E_MAGIC, KEEL_E_CHECKSUM,
 * KEEL_E_VERSION or KEEL_E_CORRUPT, the message starting with `what`.
 */
int keel_jrec_decode(const unsigned char *buf, const char *what, struct keel_jrec *r,
                     struct keel_error *err);

/* Append "key=value\n" to r->args.  KEEL_E_INVAL when it does not fit or is bad text. */
int keel_jrec_add_arg(struct keel_jrec *r, const char *key, const char *value,
                      struct keel_error *err);

/* The value of key in r->args into val[0..n); NULL when absent. */
const char *keel_jrec_arg(const struct keel_jrec *r, const char *key, char *val, size_t n);

#endif /* KEEL_METADATA_JOURNAL_FMT_H */
