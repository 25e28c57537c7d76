/* pickle.c - the safe pickle VM of pickle.h: exactly the opcodes torch.save
 * emits for a state dict, an allow-list of globals, and bounds checks on
 * every read, memo index and stack operation. Objects live until
 * mtio_pickle_free; strings are not copied. */
#include "io/pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MEMO (1u << 20) /* a 3.3B state dict needs ~10^4 entries */
#define MAX_OBJECTS (1u << 26)

enum {
    G_ODICT = 1, G_REBUILD_V2, G_REBUILD_PARAM, G_STORAGE
};

struct mtio_pickle {
    pv **all; /* every object, for freeing */
    size_t nall, cap_all;
    pv **stack;
    size_t sp, cap_stack;
    size_t *marks;
    size_t nmarks, cap_marks;
    pv **memo;
    size_t nmemo; /* allocated slots (NULL = unset) */
    size_t memo_next; /* MEMOIZE's next index */
};

typedef struct {
    const unsigned char *p;
    size_t n, pos;
    const char *label;
    stts_error *err;
    mtio_pickle *vm;
} ctx;

static stts_status fail(ctx *c, stts_status code, const char *what) {
    return stts_error_set(c->err, code, "%s: data.pkl byte %zu: %s", c->label, c->pos, what);
}

static stts_status nomem(ctx *c) { return fail(c, STTS_ERR_NOMEM, "out of memory"); }

static int grow(void **arr, size_t *cap, size_t need, size_t elsize) {
    if (need <= *cap) return 1;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2;
    void *q = realloc(*arr, nc * elsize);
    if (!q) return 0;
    *arr = q;
    *cap = nc;
    return 1;
}

static pv *new_pv(ctx *c, pv_kind k) {
    mtio_pickle *vm = c->vm;
    if (vm->nall >= MAX_OBJECTS) return NULL;
    if (!grow((void **)&vm->all, &vm->cap_all, vm->nall + 1, sizeof(pv *))) return NULL;
    pv *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->kind = k;
    vm->all[vm->nall++] = v;
    return v;
}

static int add_item(pv *v, pv *item) {
    if (!grow((void **)&v->items, &v->cap, v->n + 1, sizeof(pv *))) return 0;
    v->items[v->n++] = item;
    return 1;
}

static stts_status push(ctx *c, pv *v) {
    mtio_pickle *vm = c->vm;
    if (!v) return nomem(c);
    if (!grow((void **)&vm->stack, &vm->cap_stack, vm->sp + 1, sizeof(pv *))) return nomem(c);
    vm->stack[vm->sp++] = v;
    return STTS_OK;
}

/* The lowest stack index usable by the current op: objects below the
 * innermost mark belong to an enclosing construct. */
static size_t floor_sp(const mtio_pickle *vm) { return vm->nmarks ? vm->marks[vm->nmarks - 1] : 0; }

static pv *pop(ctx *c) {
    mtio_pickle *vm = c->vm;
    if (vm->sp <= floor_sp(vm)) return NULL;
    return vm->stack[--vm->sp];
}

static pv *top(ctx *c) {
    mtio_pickle *vm = c->vm;
    return vm->sp > floor_sp(vm) ? vm->stack[vm->sp - 1] : NULL;
}

static int need(ctx *c, size_t k) { return c->n - c->pos >= k; }

static uint64_t rd_le(const unsigned char *p, int k) {
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Pops everything above the innermost mark into a new container of kind k. */
static stts_status pop_mark_into(ctx *c, pv_kind k, pv **out) {
    mtio_pickle *vm = c->vm;
    if (!vm->nmarks) return fail(c, STTS_ERR_FORMAT, "no MARK on the stack");
    size_t m = vm->marks[--vm->nmarks];
    pv *v = new_pv(c, k);
    if (!v) return nomem(c);
    for (size_t i = m; i < vm->sp; i++)
        if (!add_item(v, vm->stack[i])) return nomem(c);
    vm->sp = m;
    *out = v;
    return STTS_OK;
}

static stts_status do_global(ctx *c, const char *mod, size_t ml, const char *name, size_t nl) {
    static const struct {
        const char *name;
        mt_dtype dtype;
        const char *dname;
        size_t elsize;
    } storages[] = {
        {"FloatStorage", MT_DTYPE_F32, "float32", 4},   {"HalfStorage", MT_DTYPE_F16, "float16", 2},
        {"BFloat16Storage", MT_DTYPE_BF16, "bfloat16", 2}, {"LongStorage", MT_DTYPE_I64, "int64", 8},
        {"DoubleStorage", MT_DTYPE_OTHER, "float64", 8}, {"IntStorage", MT_DTYPE_OTHER, "int32", 4},
        {"ShortStorage", MT_DTYPE_OTHER, "int16", 2},   {"CharStorage", MT_DTYPE_OTHER, "int8", 1},
        {"ByteStorage", MT_DTYPE_OTHER, "uint8", 1},    {"BoolStorage", MT_DTYPE_OTHER, "bool", 1},
    };
#define IS(s, l, lit) ((l) == sizeof(lit) - 1 && memcmp((s), (lit), (l)) == 0)
    pv *g = new_pv(c, PV_GLOBAL);
    if (!g) return nomem(c);
    if (IS(mod, ml, "collections") && IS(name, nl, "OrderedDict")) {
        g->i = G_ODICT;
    } else if (IS(mod, ml, "torch._utils") && IS(name, nl, "_rebuild_tensor_v2")) {
        g->i = G_REBUILD_V2;
    } else if (IS(mod, ml, "torch._utils") && IS(name, nl, "_rebuild_parameter")) {
        g->i = G_REBUILD_PARAM;
    } else if (IS(mod, ml, "torch")) {
        for (size_t i = 0; i < sizeof storages / sizeof storages[0]; i++)
            if (nl == strlen(storages[i].name) && memcmp(name, storages[i].name, nl) == 0) {
                g->i = G_STORAGE;
                g->dtype = storages[i].dtype;
                g->dtype_name = storages[i].dname;
                g->elsize = storages[i].elsize;
            }
    }
#undef IS
    if (!g->i) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "global %.*s.%.*s is not allowed (only tensors, storages and OrderedDict are read; nothing is "
                 "executed)",
                 (int)(ml > 100 ? 100 : ml), mod, (int)(nl > 100 ? 100 : nl), name);
        return fail(c, STTS_ERR_FORMAT, msg);
    }
    return push(c, g);
}

static int as_int(const pv *v, int64_t *out) {
    if (!v || (v->kind != PV_INT && v->kind != PV_BOOL)) return 0;
    *out = v->i;
    return 1;
}

/* ('storage', torch.XStorage, key, location, numel) -> PV_STORAGE */
static stts_status do_persid(ctx *c) {
    pv *pid = pop(c);
    if (!pid) return fail(c, STTS_ERR_FORMAT, "BINPERSID on an empty stack");
    if (pid->kind != PV_TUPLE || pid->n != 5 || pid->items[0]->kind != PV_STR || pid->items[0]->len != 7 ||
        memcmp(pid->items[0]->s, "storage", 7) != 0)
        return fail(c, STTS_ERR_FORMAT, "persistent id is not ('storage', type, key, location, numel)");
    pv *type = pid->items[1], *key = pid->items[2];
    int64_t numel;
    if (type->kind != PV_GLOBAL || type->i != G_STORAGE)
        return fail(c, STTS_ERR_FORMAT, "persistent id names no torch storage type");
    if (key->kind != PV_STR || key->len == 0 || key->len > 64 || memchr(key->s, '/', key->len) ||
        memchr(key->s, '\0', key->len))
        return fail(c, STTS_ERR_FORMAT, "storage key is not a short string");
    if (!as_int(pid->items[4], &numel) || numel < 0 || (uint64_t)numel > SIZE_MAX / 8)
        return fail(c, STTS_ERR_FORMAT, "storage numel is not a non-negative integer");
    pv *s = new_pv(c, PV_STORAGE);
    if (!s) return nomem(c);
    s->dtype = type->dtype;
    s->dtype_name = type->dtype_name;
    s->elsize = type->elsize;
    s->key = key->s;
    s->key_len = key->len;
    s->numel = numel;
    return push(c, s);
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 * backward_hooks[, metadata]): shape and strides checked against the storage. */
static stts_status rebuild_tensor(ctx *c, const pv *args, pv **out) {
    if (args->n != 6 && args->n != 7)
        return fail(c, STTS_ERR_FORMAT, "_rebuild_tensor_v2 needs 6 or 7 arguments");
    pv *st = args->items[0], *sz = args->items[2], *sd = args->items[3];
    int64_t off;
    if (st->kind != PV_STORAGE) return fail(c, STTS_ERR_FORMAT, "_rebuild_tensor_v2: argument 1 is not a storage");
    if (!as_int(args->items[1], &off) || off < 0)
        return fail(c, STTS_ERR_FORMAT, "_rebuild_tensor_v2: bad storage offset");
    if ((sz->kind != PV_TUPLE && sz->kind != PV_LIST) || (sd->kind != PV_TUPLE && sd->kind != PV_LIST) ||
        sz->n != sd->n)
        return fail(c, STTS_ERR_FORMAT, "_rebuild_tensor_v2: size and stride must be tuples of one length");
    if (sz->n > 4) return fail(c, STTS_ERR_UNSUPPORTED, "_rebuild_tensor_v2: more than 4 dimensions");
    pv *t = new_pv(c, PV_TENSOR);
    if (!t) return nomem(c);
    t->storage = st;
    t->offset = off;
    t->ndim = (int)sz->n;
    int64_t numel = 1;
    for (size_t i = 0; i < sz->n; i++) {
        if (!as_int(sz->items[i], &t->shape[i]) || t->shape[i] < 0 || !as_int(sd->items[i], &t->stride[i]) ||
            t->stride[i] < 0)
            return fail(c, STTS_ERR_FORMAT, "_rebuild_tensor_v2: size/stride entries must be non-negative ints");
        if (t->shape[i] && numel > INT64_MAX / t->shape[i])
            return fail(c, STTS_ERR_FORMAT, "_rebuild_tensor_v2: size overflows");
        numel *= t->shape[i];
    }
    t->numel = numel;
    /* A view with more elements than its storage repeats elements (stride 0,
     * an expand()); no weight is saved like that, and copying it out could
     * need unbounded memory. */
    if (numel > st->numel) {
        char msg[200];
        snprintf(msg, sizeof msg, "tensor view has %lld elements but its storage only %lld (a broadcast view)",
                 (long long)numel, (long long)st->numel);
        return fail(c, STTS_ERR_UNSUPPORTED, msg);
    }
    /* The last element addressed must lie inside the storage. */
    if (numel > 0) {
        uint64_t last = (uint64_t)off;
        for (int i = 0; i < t->ndim; i++) {
            uint64_t span = (uint64_t)(t->shape[i] - 1);
            if (t->stride[i] && span > (UINT64_MAX - last) / (uint64_t)t->stride[i])
                return fail(c, STTS_ERR_FORMAT, "_rebuild_tensor_v2: stride overflows");
            last += span * (uint64_t)t->stride[i];
        }
        if (last >= (uint64_t)st->numel) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "tensor view reaches element %llu of a storage of %lld elements (offset/size/stride invalid)",
                     (unsigned long long)last, (long long)st->numel);
            return fail(c, STTS_ERR_FORMAT, msg);
        }
    }
    *out = t;
    return STTS_OK;
}

static stts_status do_reduce(ctx *c) {
    pv *args = pop(c), *fn = pop(c);
    if (!args || !fn) return fail(c, STTS_ERR_FORMAT, "REDUCE needs a callable and arguments");
    if (args->kind != PV_TUPLE) return fail(c, STTS_ERR_FORMAT, "REDUCE arguments are not a tuple");
    if (fn->kind != PV_GLOBAL || fn->i == G_STORAGE)
        return fail(c, STTS_ERR_FORMAT, "REDUCE of something that is not an allowed callable");
    pv *res = NULL;
    stts_status s;
    switch (fn->i) {
    case G_ODICT:
        if (args->n != 0) return fail(c, STTS_ERR_FORMAT, "OrderedDict() with arguments is not supported");
        res = new_pv(c, PV_DICT);
        if (!res) return nomem(c);
        break;
    case G_REBUILD_V2:
        if ((s = rebuild_tensor(c, args, &res))) return s;
        break;
    case G_REBUILD_PARAM: /* _rebuild_parameter(data, requires_grad, backward_hooks) */
        if (args->n != 3 || args->items[0]->kind != PV_TENSOR)
            return fail(c, STTS_ERR_FORMAT, "_rebuild_parameter needs (tensor, requires_grad, hooks)");
        res = args->items[0];
        break;
    default: return fail(c, STTS_ERR_INTERNAL, "unknown callable");
    }
    return push(c, res);
}

static stts_status set_items(ctx *c, pv *d, pv **kv, size_t n) {
    if (!d || d->kind != PV_DICT) return fail(c, STTS_ERR_FORMAT, "SETITEM(S) on something that is not a dict");
    if (n % 2) return fail(c, STTS_ERR_FORMAT, "SETITEMS with an odd number of items");
    for (size_t i = 0; i < n; i++)
        if (!add_item(d, kv[i])) return nomem(c);
    return STTS_OK;
}

static stts_status memo_put(ctx *c, uint64_t idx) {
    mtio_pickle *vm = c->vm;
    pv *v = top(c);
    if (!v) return fail(c, STTS_ERR_FORMAT, "memo store from an empty stack");
    if (idx >= MAX_MEMO) return fail(c, STTS_ERR_FORMAT, "memo index too large");
    if (idx >= vm->nmemo) {
        size_t nn = vm->nmemo ? vm->nmemo : 64;
        while (nn <= idx) nn *= 2;
        pv **q = realloc(vm->memo, nn * sizeof *q);
        if (!q) return nomem(c);
        memset(q + vm->nmemo, 0, (nn - vm->nmemo) * sizeof *q);
        vm->memo = q;
        vm->nmemo = nn;
    }
    vm->memo[idx] = v;
    return STTS_OK;
}

static stts_status memo_get(ctx *c, uint64_t idx) {
    mtio_pickle *vm = c->vm;
    if (idx >= vm->nmemo || !vm->memo[idx]) return fail(c, STTS_ERR_FORMAT, "memo get of an unset index");
    return push(c, vm->memo[idx]);
}

static stts_status str_op(ctx *c, int lenbytes, pv_kind k) {
    if (!need(c, (size_t)lenbytes)) return fail(c, STTS_ERR_FORMAT, "truncated string length");
    uint64_t len = rd_le(c->p + c->pos, lenbytes);
    if (lenbytes == 4 && k == PV_STR && c->p[c->pos - 1] == 'T' && (len >> 31))
        return fail(c, STTS_ERR_FORMAT, "negative string length");
    c->pos += (size_t)lenbytes;
    if (len > c->n - c->pos) return fail(c, STTS_ERR_FORMAT, "string runs past the end of data.pkl");
    pv *v = new_pv(c, k);
    if (!v) return nomem(c);
    v->s = (const char *)c->p + c->pos;
    v->len = (size_t)len;
    c->pos += (size_t)len;
    return push(c, v);
}

static stts_status int_op(ctx *c, int64_t val) {
    pv *v = new_pv(c, PV_INT);
    if (!v) return nomem(c);
    v->i = val;
    return push(c, v);
}

static stts_status long_op(ctx *c, int lenbytes) {
    if (!need(c, (size_t)lenbytes)) return fail(c, STTS_ERR_FORMAT, "truncated LONG");
    uint64_t len = rd_le(c->p + c->pos, lenbytes);
    c->pos += (size_t)lenbytes;
    if (len > 8) return fail(c, STTS_ERR_UNSUPPORTED, "integer wider than 64 bits");
    if (!need(c, (size_t)len)) return fail(c, STTS_ERR_FORMAT, "truncated LONG");
    uint64_t u = rd_le(c->p + c->pos, (int)len);
    if (len > 0 && len < 8 && (c->p[c->pos + len - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * len); /* sign-extend */
    c->pos += (size_t)len;
    int64_t v;
    memcpy(&v, &u, 8);
    return int_op(c, v);
}

static stts_status run(ctx *c, pv **root) {
    mtio_pickle *vm = c->vm;
    stts_status s;
    while (c->pos < c->n) {
        unsigned char op = c->p[c->pos++];
        pv *a, *b, *v;
        switch (op) {
        case 0x80: /* PROTO */
            if (!need(c, 1) || c->p[c->pos] > 5) return fail(c, STTS_ERR_UNSUPPORTED, "unknown pickle protocol");
            c->pos++;
            break;
        case 0x95: /* FRAME */
            if (!need(c, 8)) return fail(c, STTS_ERR_FORMAT, "truncated FRAME");
            c->pos += 8;
            break;
        case '}': if ((s = push(c, new_pv(c, PV_DICT)))) return s; break;
        case ']': if ((s = push(c, new_pv(c, PV_LIST)))) return s; break;
        case ')': if ((s = push(c, new_pv(c, PV_TUPLE)))) return s; break;
        case 'N': if ((s = push(c, new_pv(c, PV_NONE)))) return s; break;
        case 0x88:
        case 0x89:
            if (!(v = new_pv(c, PV_BOOL))) return nomem(c);
            v->i = op == 0x88;
            if ((s = push(c, v))) return s;
            break;
        case '(':
            if (!grow((void **)&vm->marks, &vm->cap_marks, vm->nmarks + 1, sizeof(size_t))) return nomem(c);
            vm->marks[vm->nmarks++] = vm->sp;
            break;
        case 'X': if ((s = str_op(c, 4, PV_STR))) return s; break;
        case 0x8c: if ((s = str_op(c, 1, PV_STR))) return s; break;
        case 0x8d: if ((s = str_op(c, 8, PV_STR))) return s; break;
        case 'T': if ((s = str_op(c, 4, PV_STR))) return s; break;
        case 'U': if ((s = str_op(c, 1, PV_STR))) return s; break;
        case 'B': if ((s = str_op(c, 4, PV_BYTES))) return s; break;
        case 'C': if ((s = str_op(c, 1, PV_BYTES))) return s; break;
        case 'J':
            if (!need(c, 4)) return fail(c, STTS_ERR_FORMAT, "truncated BININT");
            if ((s = int_op(c, (int32_t)(uint32_t)rd_le(c->p + c->pos, 4)))) return s;
            c->pos += 4;
            break;
        case 'K':
            if (!need(c, 1)) return fail(c, STTS_ERR_FORMAT, "truncated BININT1");
            if ((s = int_op(c, c->p[c->pos++]))) return s;
            break;
        case 'M':
            if (!need(c, 2)) return fail(c, STTS_ERR_FORMAT, "truncated BININT2");
            if ((s = int_op(c, (int64_t)rd_le(c->p + c->pos, 2)))) return s;
            c->pos += 2;
            break;
        case 0x8a: if ((s = long_op(c, 1))) return s; break;
        case 0x8b: if ((s = long_op(c, 4))) return s; break;
        case 'G': {
            if (!need(c, 8)) return fail(c, STTS_ERR_FORMAT, "truncated BINFLOAT");
            uint64_t u = 0;
            for (int i = 0; i < 8; i++) u = u << 8 | c->p[c->pos + i]; /* big-endian */
            c->pos += 8;
            if (!(v = new_pv(c, PV_FLOAT))) return nomem(c);
            memcpy(&v->f, &u, 8);
            if ((s = push(c, v))) return s;
            break;
        }
        case 't':
            if ((s = pop_mark_into(c, PV_TUPLE, &v)) || (s = push(c, v))) return s;
            break;
        case 'l':
            if ((s = pop_mark_into(c, PV_LIST, &v)) || (s = push(c, v))) return s;
            break;
        case 0x85:
        case 0x86:
        case 0x87: {
            size_t k = (size_t)(op - 0x84);
            if (vm->sp < floor_sp(vm) + k) return fail(c, STTS_ERR_FORMAT, "TUPLEn on a short stack");
            if (!(v = new_pv(c, PV_TUPLE))) return nomem(c);
            for (size_t i = vm->sp - k; i < vm->sp; i++)
                if (!add_item(v, vm->stack[i])) return nomem(c);
            vm->sp -= k;
            if ((s = push(c, v))) return s;
            break;
        }
        case 'a':
            a = pop(c);
            b = top(c);
            if (!a || !b || b->kind != PV_LIST) return fail(c, STTS_ERR_FORMAT, "APPEND to something not a list");
            if (!add_item(b, a)) return nomem(c);
            break;
        case 'e':
        case 'u': {
            if (!vm->nmarks) return fail(c, STTS_ERR_FORMAT, "APPENDS/SETITEMS without MARK");
            size_t m = vm->marks[--vm->nmarks];
            if (m == 0 || m <= floor_sp(vm)) return fail(c, STTS_ERR_FORMAT, "APPENDS/SETITEMS with no target");
            pv *target = vm->stack[m - 1];
            if (op == 'u') {
                if ((s = set_items(c, target, vm->stack + m, vm->sp - m))) return s;
            } else {
                if (target->kind != PV_LIST) return fail(c, STTS_ERR_FORMAT, "APPENDS to something not a list");
                for (size_t i = m; i < vm->sp; i++)
                    if (!add_item(target, vm->stack[i])) return nomem(c);
            }
            vm->sp = m;
            break;
        }
        case 'd':
            if ((s = pop_mark_into(c, PV_DICT, &v))) return s;
            if (v->n % 2) return fail(c, STTS_ERR_FORMAT, "DICT with an odd number of items");
            if ((s = push(c, v))) return s;
            break;
        case 's': {
            pv *val = pop(c), *key = pop(c);
            if (!val || !key) return fail(c, STTS_ERR_FORMAT, "SETITEM on a short stack");
            pv *kv[2] = {key, val};
            if ((s = set_items(c, top(c), kv, 2))) return s;
            break;
        }
        case 'c': {
            const unsigned char *nl1 = need(c, 1) ? memchr(c->p + c->pos, '\n', c->n - c->pos) : NULL;
            const unsigned char *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(c->p + c->n - (nl1 + 1))) : NULL;
            if (!nl2) return fail(c, STTS_ERR_FORMAT, "truncated GLOBAL");
            const char *mod = (const char *)c->p + c->pos, *name = (const char *)nl1 + 1;
            size_t ml = (size_t)(nl1 - (c->p + c->pos)), nl = (size_t)(nl2 - (nl1 + 1));
            c->pos = (size_t)(nl2 + 1 - c->p);
            if ((s = do_global(c, mod, ml, name, nl))) return s;
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            b = pop(c);
            a = pop(c);
            if (!a || !b || a->kind != PV_STR || b->kind != PV_STR)
                return fail(c, STTS_ERR_FORMAT, "STACK_GLOBAL needs two strings");
            if ((s = do_global(c, a->s, a->len, b->s, b->len))) return s;
            break;
        case 'R': if ((s = do_reduce(c))) return s; break;
        case 'b': /* BUILD: only OrderedDict's attribute state (state_dict's _metadata), ignored */
            a = pop(c);
            b = top(c);
            if (!a || !b || b->kind != PV_DICT) return fail(c, STTS_ERR_FORMAT, "BUILD on something not a dict");
            break;
        case 'Q': if ((s = do_persid(c))) return s; break;
        case 'q':
            if (!need(c, 1)) return fail(c, STTS_ERR_FORMAT, "truncated BINPUT");
            if ((s = memo_put(c, c->p[c->pos++]))) return s;
            break;
        case 'r':
            if (!need(c, 4)) return fail(c, STTS_ERR_FORMAT, "truncated LONG_BINPUT");
            if ((s = memo_put(c, rd_le(c->p + c->pos, 4)))) return s;
            c->pos += 4;
            break;
        case 0x94:
            if ((s = memo_put(c, vm->memo_next))) return s;
            vm->memo_next++;
            break;
        case 'h':
            if (!need(c, 1)) return fail(c, STTS_ERR_FORMAT, "truncated BINGET");
            if ((s = memo_get(c, c->p[c->pos++]))) return s;
            break;
        case 'j':
            if (!need(c, 4)) return fail(c, STTS_ERR_FORMAT, "truncated LONG_BINGET");
            if ((s = memo_get(c, rd_le(c->p + c->pos, 4)))) return s;
            c->pos += 4;
            break;
        case '0':
            if (!pop(c)) return fail(c, STTS_ERR_FORMAT, "POP on an empty stack");
            break;
        case '1':
            if (!vm->nmarks) return fail(c, STTS_ERR_FORMAT, "POP_MARK without MARK");
            vm->sp = vm->marks[--vm->nmarks];
            break;
        case '2':
            if (!(v = top(c))) return fail(c, STTS_ERR_FORMAT, "DUP on an empty stack");
            if ((s = push(c, v))) return s;
            break;
        case '.':
            if (vm->nmarks || vm->sp != 1) return fail(c, STTS_ERR_FORMAT, "STOP with a stack that is not one object");
            *root = vm->stack[0];
            return STTS_OK;
        default: {
            char msg[96];
            c->pos--;
            snprintf(msg, sizeof msg, "unsupported pickle opcode 0x%02x (not written by torch.save)", op);
            return fail(c, STTS_ERR_FORMAT, msg);
        }
        }
    }
    return fail(c, STTS_ERR_FORMAT, "data.pkl ends without STOP (truncated)");
}

stts_status mtio_pickle_load(const unsigned char *buf, size_t n, const char *label, mtio_pickle **out, pv **root,
                             stts_error *err) {
    *out = NULL;
    *root = NULL;
    mtio_pickle *vm = calloc(1, sizeof *vm);
    if (!vm) return stts_error_set(err, STTS_ERR_NOMEM, "%s: out of memory", label);
    ctx c = {buf, n, 0, label, err, vm};
    stts_status s = run(&c, root);
    if (s) {
        mtio_pickle_free(vm);
        *root = NULL;
        return s;
    }
    *out = vm;
    return STTS_OK;
}

void mtio_pickle_free(mtio_pickle *vm) {
    if (!vm) return;
    for (size_t i = 0; i < vm->nall; i++) {
        free(vm->all[i]->items);
        free(vm->all[i]);
    }
    free(vm->all);
    free(vm->stack);
    free(vm->marks);
    free(vm->memo);
    free(vm);
}
