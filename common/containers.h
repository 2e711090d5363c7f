/* The hub's containers: an intrusive chained hash table, a circular doubly
 * linked list and a growable array of pointers, plus "named" entries (a hash
 * table entry keyed by an owned copy of a name). Portable; every allocation
 * goes through ph_alloc so tests can make it fail.
 *
 * Like libuv's queue.h, an entry embeds its link (hnode, dlink) and is
 * recovered from it with PH_CONTAINER. */
#ifndef PH_CONTAINERS_H
#define PH_CONTAINERS_H

#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include "err.h"
#include "platform.h"

#define PH_CONTAINER(p, type, member) \
    ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* ---- hash table ---------------------------------------------------------
 * Each entry embeds an hnode; keys are compared by the callers, the table
 * only keeps the chains. */
typedef struct hnode {
    struct hnode *next;
    uint32_t hash;
} hnode;

typedef struct htab {
    hnode **b;   /* owned; nb chains */
    size_t nb;   /* a power of two, or 0 */
    size_t n;    /* entries */
} htab;

static inline uint32_t ph_hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}
static inline uint32_t ph_hash_u32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    return x ^ (x >> 16);
}

/* The chain that an entry with this hash would be on (NULL when empty). */
static inline hnode *htab_chain(const htab *t, uint32_t hash)
{
    return t->nb ? t->b[hash & (t->nb - 1)] : NULL;
}

/* Add e (e->hash set by the caller); PH_ENOMEM leaves t unchanged. */
static inline ph_err htab_add(htab *t, hnode *e)
{
    size_t i, nb;
    hnode **b, *x, *next;

    if (t->n + 1 > t->nb) {
        nb = t->nb ? t->nb * 2 : 16;
        b = ph_alloc(nb * sizeof *b);
        if (b == NULL)
            return PH_ENOMEM;
        memset(b, 0, nb * sizeof *b);
        for (i = 0; i < t->nb; i++) {
            for (x = t->b[i]; x != NULL; x = next) {
                next = x->next;
                x->next = b[x->hash & (nb - 1)];
                b[x->hash & (nb - 1)] = x;
            }
        }
        ph_free(t->b);
        t->b = b;
        t->nb = nb;
    }
    e->next = t->b[e->hash & (t->nb - 1)];
    t->b[e->hash & (t->nb - 1)] = e;
    t->n++;
    return PH_OK;
}
/* Remove e, which must be in t. */
static inline void htab_del(htab *t, hnode *e)
{
    hnode **p = &t->b[e->hash & (t->nb - 1)];

    while (*p != e)
        p = &(*p)->next;
    *p = e->next;
    t->n--;
}
/* Free the chains (not the entries). */
static inline void htab_free(htab *t)
{
    ph_free(t->b);
    t->b = NULL;
    t->nb = t->n = 0;
}

/* ---- doubly linked list with a sentinel -------------------------------- */
typedef struct dlink {
    struct dlink *prev, *next;
} dlink;

static inline void dl_init(dlink *l) { l->prev = l->next = l; }
static inline int dl_empty(const dlink *l) { return l->next == l; }

static inline void dl_push(dlink *l, dlink *e)
{
    e->prev = l->prev;
    e->next = l;
    l->prev->next = e;
    l->prev = e;
}

/* Unlink e; it is left linked to itself, so a second dl_del is harmless. */
static inline void dl_del(dlink *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = e;
}

/* ---- growable array of pointers ---------------------------------------- */
typedef struct parr {
    void **v;
    uint32_t n, cap;
} parr;

static inline ph_err parr_push(parr *a, void *x)
{
    void **v;
    uint32_t cap;

    if (a->n == a->cap) {
        cap = a->cap ? a->cap * 2 : 4;
        v = ph_realloc(a->v, cap * sizeof *v);
        if (v == NULL)
            return PH_ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return PH_OK;
}
/* The index of x, or -1. */
static inline int parr_find(const parr *a, const void *x)
{
    uint32_t i;

    for (i = 0; i < a->n; i++)
        if (a->v[i] == x)
            return (int)i;
    return -1;
}
/* Remove entry i keeping the order (round-robin and waiting lines rely on
 * it). */
static inline void parr_remove_at(parr *a, uint32_t i)
{
    memmove(&a->v[i], &a->v[i + 1], (a->n - i - 1) * sizeof a->v[0]);
    a->n--;
}
static inline void parr_free(parr *a)
{
    ph_free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

/* ---- named entries ------------------------------------------------------
 * Routes, topics and per-account counts all start like this: an hnode, then
 * an owned NUL-terminated name and its length. */
typedef struct named {
    hnode node;
    char *name;
    size_t len;
} named;

/* The entry of t named name, or NULL. */
static inline void *named_find(const htab *t, const char *name, size_t len)
{
    uint32_t hash = ph_hash_bytes(name, len);
    hnode *e;

    for (e = htab_chain(t, hash); e != NULL; e = e->next) {
        named *n = (named *)e;
        if (e->hash == hash && n->len == len && memcmp(n->name, name, len) == 0)
            return n;
    }
    return NULL;
}
/* A new zeroed entry of size bytes (which starts like named) holding a copy
 * of name, added to t. NULL when out of memory, with nothing added. */
static inline void *named_new(htab *t, size_t size, const char *name, size_t len)
{
    named *n = ph_alloc(size);

    if (n == NULL)
        return NULL;
    memset(n, 0, size);
    n->name = ph_alloc(len + 1);
    if (n->name == NULL) {
        ph_free(n);
        return NULL;
    }
    memcpy(n->name, name, len);
    n->name[len] = '\0';
    n->len = len;
    n->node.hash = ph_hash_bytes(name, len);
    if (htab_add(t, &n->node) != PH_OK) {
        ph_free(n->name);
        ph_free(n);
        return NULL;
    }
    return n;
}
/* Take n out of t and free it (its own arrays are the caller's). */
static inline void named_free(htab *t, named *n)
{
    htab_del(t, &n->node);
    ph_free(n->name);
    ph_free(n);
}

#endif
