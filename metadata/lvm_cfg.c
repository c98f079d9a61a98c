/*
 * A parser for lvm's configuration text, with the tokens and grammar of
 * libdm-config (see lvm_cfg.h):
 *   file    := node*
 *   node    := key '{' node* '}' | key '=' value
 *   value   := '[' (scalar ','?)* ']' | scalar
 * Tokens: '{' '}' '[' ']' ',' '=', "escaped string", 'plain string',
 * numbers (only where a value may start), identifiers (runs without
 * whitespace, '#', '=', '{', '}').  '#' starts a comment; a NUL ends the
 * input.  Integers are read with strtoll base 0, as lvm does (a leading 0
 * is octal), and must be consumed whole.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/lvm_cfg.h"

enum tok {
    T_EOF, T_SEC_B, T_SEC_E, T_ARR_B, T_ARR_E, T_COMMA, T_EQ, T_STR_ESC, T_STR,
    T_INT, T_FLOAT, T_IDENT, T_BARE
};

struct parser {
    const char *fb, *fe; /* the text */
    const char *tb, *te; /* the current token */
    enum tok t;
    int line;
    int depth;
    struct keel_cfg *cfg;
    struct keel_error *err;
};

#define MAX_DEPTH 64

static void eat_space(struct parser *p)
{
    while (p->te != p->fe && *p->te) {
        if (*p->te == '#') {
            while (p->te != p->fe && *p->te && *p->te != '\n')
                p->te++;
            continue;
        }
        if (!isspace((unsigned char)*p->te))
            break;
        if (*p->te == '\n')
            p->line++;
        p->te++;
    }
    p->tb = p->te;
}

static void next(struct parser *p, enum tok prev)
{
    bool values_allowed = prev == T_EQ || prev == T_ARR_B || prev == T_COMMA;
    const char *te;
    char c;

    p->tb = p->te;
    eat_space(p);
    if (p->tb == p->fe || *p->tb == '\0') {
        p->t = T_EOF;
        return;
    }
    c = *p->tb;
    te = p->tb + 1;
    switch (c) {
    case '{': p->t = T_SEC_B; break;
    case '}': p->t = T_SEC_E; break;
    case '[': p->t = T_ARR_B; break;
    case ']': p->t = T_ARR_E; break;
    case ',': p->t = T_COMMA; break;
    case '=': p->t = T_EQ; break;
    case '"':
        p->t = T_STR_ESC;
        while (te != p->fe && *te && *te != '"') {
            if (*te == '\\' && te + 1 != p->fe && te[1])
                te++;
            te++;
        }
        if (te != p->fe && *te)
            te++;
        break;
    case '\'':
        p->t = T_STR;
        while (te != p->fe && *te && *te != '\'')
            te++;
        if (te != p->fe && *te)
            te++;
        break;
    default:
        if (values_allowed && (isdigit((unsigned char)c) || c == '+' || c == '-' || c == '.')) {
            p->t = c == '.' ? T_FLOAT : T_INT;
            for (; te != p->fe && *te; te++) {
                if (isdigit((unsigned char)*te))
                    continue;
                if (*te == '.' && p->t != T_FLOAT) {
                    p->t = T_FLOAT;
                    continue;
                }
                break;
            }
            break;
        }
        p->t = values_allowed ? T_BARE : T_IDENT;
        while (te != p->fe && (c = *te) && !isspace((unsigned char)c) && c != '#' && c != '=' &&
               c != '{' && c != '}')
            te++;
        break;
    }
    p->te = te;
}

static int fail(struct parser *p, const char *what)
{
    return keel_error_set(p->err, KEEL_E_FORMAT, 0, "parse error at byte %ld (line %d): %s",
                          (long)(p->tb - p->fb + 1), p->line, what);
}

static int expect(struct parser *p, enum tok t)
{
    enum tok had = p->t;

    if (p->t != t)
        return fail(p, "unexpected token");
    next(p, had);
    return 0;
}

/* The text of a quoted string token, unescaped, in the arena. */
static char *string_tok(struct parser *p)
{
    const char *b = p->tb + 1, *e = p->te;
    char *s, *o;

    if (e > b && (e[-1] == '"' || e[-1] == '\'') && e - 1 >= b)
        e--;
    s = keel_arena_strndup(&p->cfg->arena, b, (size_t)(e - b));
    if (s == NULL || p->t != T_STR_ESC)
        return s;
    for (o = s, b = s; *b; b++) {
        if (*b == '\\' && b[1])
            b++;
        *o++ = *b;
    }
    *o = '\0';
    return s;
}

static struct keel_cfg_value *scalar(struct parser *p)
{
    struct keel_cfg_value *v = keel_arena_alloc(&p->cfg->arena, sizeof(*v));
    char *tok = NULL, *end;

    if (v == NULL) {
        fail(p, "out of memory");
        return NULL;
    }
    /* The text need not end with a NUL: number tokens are copied first. */
    if ((p->t == T_INT || p->t == T_FLOAT) &&
        (tok = keel_arena_strndup(&p->cfg->arena, p->tb, (size_t)(p->te - p->tb))) == NULL) {
        fail(p, "out of memory");
        return NULL;
    }
    switch (p->t) {
    case T_INT:
        errno = 0;
        v->type = KEEL_CFG_INT;
        v->i = strtoll(tok, &end, 0);
        if (errno != 0 || *end != '\0') {
            fail(p, "bad integer");
            return NULL;
        }
        break;
    case T_FLOAT:
        v->type = KEEL_CFG_FLOAT;
        v->f = strtod(tok, NULL);
        break;
    case T_STR:
    case T_STR_ESC:
        v->type = KEEL_CFG_STRING;
        if ((v->s = string_tok(p)) == NULL) {
            fail(p, "out of memory");
            return NULL;
        }
        break;
    case T_BARE:
        v->type = KEEL_CFG_STRING;
        v->s = keel_arena_strndup(&p->cfg->arena, p->tb, (size_t)(p->te - p->tb));
        break;
    default:
        fail(p, "expected a value");
        return NULL;
    }
    next(p, p->t);
    return v;
}

static int value(struct parser *p, struct keel_cfg_node *n)
{
    struct keel_cfg_value *last = NULL, *v;

    if (p->t != T_ARR_B) {
        n->values = scalar(p);
        return n->values ? 0 : -1;
    }
    n->is_array = true;
    if (expect(p, T_ARR_B) != 0)
        return -1;
    while (p->t != T_ARR_E) {
        if (p->t == T_EOF)
            return fail(p, "unterminated array");
        if ((v = scalar(p)) == NULL)
            return -1;
        if (last)
            last->next = v;
        else
            n->values = v;
        last = v;
        if (p->t == T_COMMA && expect(p, T_COMMA) != 0)
            return -1;
    }
    return expect(p, T_ARR_E);
}

static struct keel_cfg_node *node(struct parser *p)
{
    struct keel_cfg_node *n = keel_arena_alloc(&p->cfg->arena, sizeof(*n));
    struct keel_cfg_node *last = NULL;
    enum tok kt = p->t;

    if (n == NULL) {
        fail(p, "out of memory");
        return NULL;
    }
    if (kt == T_STR || kt == T_STR_ESC)
        n->key = string_tok(p);
    else if (kt == T_IDENT)
        n->key = keel_arena_strndup(&p->cfg->arena, p->tb, (size_t)(p->te - p->tb));
    else {
        fail(p, "unexpected token");
        return NULL;
    }
    if (n->key == NULL || n->key[0] == '\0') {
        fail(p, "empty key");
        return NULL;
    }
    next(p, kt);
    if (p->t == T_SEC_B) {
        if (++p->depth > MAX_DEPTH) {
            fail(p, "sections nested too deep");
            return NULL;
        }
        n->is_section = true;
        if (expect(p, T_SEC_B) != 0)
            return NULL;
        while (p->t != T_SEC_E) {
            struct keel_cfg_node *c;

            if (p->t == T_EOF) {
                fail(p, "unterminated section");
                return NULL;
            }
            if ((c = node(p)) == NULL)
                return NULL;
            if (last)
                last->next = c;
            else
                n->child = c;
            last = c;
        }
        p->depth--;
        if (expect(p, T_SEC_E) != 0)
            return NULL;
        return n;
    }
    if (expect(p, T_EQ) != 0 || value(p, n) != 0)
        return NULL;
    return n;
}

int keel_lvm_cfg_parse(const char *text, size_t len, struct keel_cfg **ret,
                       struct keel_error *err)
{
    struct keel_cfg *cfg = calloc(1, sizeof(*cfg));
    struct parser p = { .fb = text, .fe = text + len, .tb = text, .te = text, .line = 1,
                        .cfg = cfg, .err = err };
    struct keel_cfg_node *last = NULL;

    if (cfg == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    keel_arena_init(&cfg->arena);
    next(&p, T_SEC_E);
    while (p.t != T_EOF) {
        struct keel_cfg_node *n = node(&p);

        if (n == NULL) {
            keel_lvm_cfg_free(cfg);
            return -1;
        }
        if (last)
            last->next = n;
        else
            cfg->first = n;
        last = n;
    }
    *ret = cfg;
    return 0;
}

void keel_lvm_cfg_free(struct keel_cfg *cfg)
{
    if (cfg == NULL)
        return;
    keel_arena_release(&cfg->arena);
    free(cfg);
}

const struct keel_cfg_node *keel_cfg_find(const struct keel_cfg *cfg,
                                          const struct keel_cfg_node *section, const char *key)
{
    const struct keel_cfg_node *n = section ? section->child : cfg->first;

    for (; n != NULL; n = n->next)
        if (strcmp(n->key, key) == 0)
            return n;
    return NULL;
}
