/* settings.c - merges stream-tts's hook entries into a Claude Code
 * settings.json (or takes them out), keeping every other key, hook and key
 * order. The input is whatever the user's file holds, so it is parsed
 * defensively and refused, untouched, when it is not a JSON object or its
 * "hooks" has a shape we would have to guess about. */
#include "stts_client.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The recommended subscriptions (../shared/docs/claude-code-hooks.md §5.1,
 * docs/HOOKS.md): short timeouts bound a hung client; SessionEnd has none
 * so it keeps Claude Code's shared 1.5 s SessionEnd budget. */
static const struct {
    const char *event, *matcher;
    int timeout;
} k_events[] = {
    {"SessionStart", NULL, 5},
    {"UserPromptSubmit", NULL, 2},
    {"MessageDisplay", NULL, 2},
    {"Stop", NULL, 5},
    {"StopFailure", NULL, 5},
    {"Notification", "permission_prompt|idle_prompt|elicitation_dialog", 5},
    {"SessionEnd", NULL, 0},
};
#define N_EVENTS (sizeof k_events / sizeof k_events[0])

/* 1 when path (a command's first word, maybe quoted) names a stream-tts. */
static int names_stream_tts(const char *path, size_t n) {
    if (n >= 2 && (path[0] == '"' || path[0] == '\'') && path[n - 1] == path[0]) { path++; n -= 2; }
    size_t b = n;
    while (b > 0 && path[b - 1] != '/') b--;
    return n - b == 10 && memcmp(path + b, "stream-tts", 10) == 0;
}

/* Entries of ours written by hand: today's `stream-tts hook` in shell form
 * (one command string, no args), or the older Stop-hook mode that earlier
 * versions' users wrote:
 * `stream-tts --hook [flags]` as one shell command (no pipe, list or
 * redirection: a compound command is the user's own), or in exec form with
 * "--hook" among its args. It forwards the payload as `hook` does now, so
 * left beside our entries it sends every Stop twice, and after --uninstall
 * it would still start the daemon. */
static int is_hand_written(const char *cmd, json_t *args) {
    if (json_is_array(args)) {
        if (!names_stream_tts(cmd, strlen(cmd))) return 0;
        for (size_t i = 0; i < json_array_size(args); i++) {
            const char *a = json_string_value(json_array_get(args, i));
            if (a && strcmp(a, "--hook") == 0) return 1;
        }
        return 0;
    }
    if (args || strpbrk(cmd, ";|&<>`()\n")) return 0;
    const char *p = cmd + strspn(cmd, " \t");
    size_t first = strcspn(p, " \t");
    if (!names_stream_tts(p, first)) return 0;
    p += first;
    for (int k = 0;; k++) {
        p += strspn(p, " \t");
        if (!*p) return 0;
        size_t w = strcspn(p, " \t");
        if (w == 6 && memcmp(p, "--hook", 6) == 0) return 1;
        /* "stream-tts hook" and nothing else: today's entry, written by hand
         * in shell form (not recognised, it was kept beside ours, every
         * event sent twice, and left by --uninstall) */
        if (k == 0 && w == 4 && memcmp(p, "hook", 4) == 0 && !p[4 + strspn(p + 4, " \t")]) return 1;
        p += w;
    }
}

static int is_ours(json_t *h) {
    if (!json_is_object(h)) return 0;
    const char *type = json_string_value(json_object_get(h, "type"));
    const char *cmd = json_string_value(json_object_get(h, "command"));
    json_t *args = json_object_get(h, "args");
    if (!type || strcmp(type, "command") != 0 || !cmd) return 0;
    if (is_hand_written(cmd, args)) return 1;
    if (!json_is_array(args) || json_array_size(args) != 1) return 0;
    const char *a0 = json_string_value(json_array_get(args, 0));
    return a0 && strcmp(a0, "hook") == 0 && names_stream_tts(cmd, strlen(cmd));
}

static json_t *our_group(size_t i, const char *command) {
    json_t *h = json_pack("{s:s, s:s, s:[s]}", "type", "command", "command", command, "args", "hook");
    if (h && k_events[i].timeout) json_object_set_new(h, "timeout", json_integer(k_events[i].timeout));
    json_t *g = h ? json_object() : NULL;
    if (g && k_events[i].matcher) json_object_set_new(g, "matcher", json_string(k_events[i].matcher));
    if (g) json_object_set_new(g, "hooks", json_pack("[o]", h));
    else json_decref(h);
    return g;
}

/* Removes our handlers from one event's array of matcher groups; a group
 * left empty by that goes too. Returns the number removed. */
static int remove_ours(json_t *groups) {
    int removed = 0;
    for (size_t gi = json_array_size(groups); gi-- > 0;) {
        json_t *g = json_array_get(groups, gi);
        json_t *hs = json_object_get(g, "hooks");
        if (!json_is_object(g) || !json_is_array(hs)) continue;
        int here = 0;
        for (size_t hi = json_array_size(hs); hi-- > 0;)
            if (is_ours(json_array_get(hs, hi))) { json_array_remove(hs, hi); here++; }
        if (here && json_array_size(hs) == 0) json_array_remove(groups, gi);
        removed += here;
    }
    return removed;
}

/* 1 when the event's array already holds exactly our wanted group's handler,
 * alone in a group with the wanted matcher, and no other handler of ours. */
static int already_right(json_t *groups, json_t *want) {
    int ours = 0, right = 0;
    for (size_t gi = 0; gi < json_array_size(groups); gi++) {
        json_t *g = json_array_get(groups, gi);
        json_t *hs = json_object_get(g, "hooks");
        if (!json_is_object(g) || !json_is_array(hs)) continue;
        for (size_t hi = 0; hi < json_array_size(hs); hi++) {
            if (!is_ours(json_array_get(hs, hi))) continue;
            ours++;
            if (json_equal(g, want)) right = 1;
        }
    }
    return ours == 1 && right;
}

/* ---- reals written as the user wrote them ----------------------------------
 * jansson writes a real with 17 significant digits (0.1 becomes
 * 0.10000000000000001). Each real of the tree is swapped for a marker
 * string before json_dumps, and the markers for the shortest text that
 * reads back as the same double (0.1, 2.5e-07, 1.0). */
typedef struct {
    char (*text)[40];
    size_t n, cap;
    char tag[32];   /* "stts-real-T-": T makes the markers unlike any string of the user's */
} reals;

static void shortest_real(double v, char *out, size_t cap) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v) break;
    }
    if (!strpbrk(out, ".eEn")) {   /* stays a real when read back (inf/nan cannot occur in JSON) */
        size_t l = strlen(out);
        if (l + 3 <= cap) memcpy(out + l, ".0", 3);
    }
}

/* Records real x's shortest text and returns the marker string that stands
 * for it in the tree (NULL: out of memory). */
static json_t *real_marker(json_t *x, reals *r) {
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 16;
        char (*g)[40] = realloc(r->text, nc * sizeof *g);
        if (!g) return NULL;
        r->text = g;
        r->cap = nc;
    }
    shortest_real(json_real_value(x), r->text[r->n], sizeof r->text[r->n]);
    char mark[48];
    snprintf(mark, sizeof mark, "\x01%s%zu\x01", r->tag, r->n);
    json_t *m = json_string(mark);
    if (m) r->n++;
    return m;
}

static int mark_reals(json_t *v, reals *r, int depth) {
    if (depth > 4096) return 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            if (json_is_real(x)) {
                json_t *m = real_marker(x, r);
                if (!m || json_object_set_new(v, k, m) != 0) return -1;
            } else if (mark_reals(x, r, depth + 1) != 0) {
                return -1;
            }
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *x = json_array_get(v, i);
            if (json_is_real(x)) {
                json_t *m = real_marker(x, r);
                if (!m || json_array_set_new(v, i, m) != 0) return -1;
            } else if (mark_reals(x, r, depth + 1) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* json_dumps with each marker string replaced by its real's text. */
static char *dump_keeping_reals(json_t *root) {
    char *plain = json_dumps(root, JSON_COMPACT);
    if (!plain) return NULL;
    reals r = {0};
    unsigned tag = 0;
    do snprintf(r.tag, sizeof r.tag, "stts-real-%u-", tag++);
    while (strstr(plain, r.tag));
    free(plain);
    if (mark_reals(root, &r, 0) != 0) { free(r.text); return NULL; }
    char *t = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!t || r.n == 0) { free(r.text); return t; }
    size_t len = strlen(t), o = 0;
    char *out = malloc(len + 1);
    if (!out) { free(t); free(r.text); return NULL; }
    char pre[48];
    size_t pn = (size_t)snprintf(pre, sizeof pre, "\"\\u0001%s", r.tag);
    for (size_t i = 0; i < len;) {
        if (strncmp(t + i, pre, pn) == 0) {
            char *end;
            unsigned long k = strtoul(t + i + pn, &end, 10);
            if (k < r.n && strncmp(end, "\\u0001\"", 7) == 0) {
                size_t l = strlen(r.text[k]);
                memcpy(out + o, r.text[k], l);   /* never longer than the marker it replaces */
                o += l;
                i = (size_t)(end + 7 - t);
                continue;
            }
        }
        out[o++] = t[i++];
    }
    out[o] = '\0';
    free(t);
    free(r.text);
    return out;
}

stts_status client_settings_merge(const client_settings_in *in, client_settings_out *out, stts_error *err) {
    memset(out, 0, sizeof *out);
    const char *name = in->name ? in->name : "settings.json";
    if (!in->uninstall && (!in->command || in->command[0] != '/'))
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "the hook command must be an absolute path");
    /* Our entries are recognized by that name: under another one a second
     * run added them again and --uninstall found none. */
    if (!in->uninstall && !names_stream_tts(in->command, strlen(in->command)))
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "the hook command %s must be a program named stream-tts "
                              "(stream-tts's entries are found by that name, by a second run and by --uninstall); "
                              "use a link of that name", in->command);
    size_t n = in->text ? in->n : 0;
    size_t lead = 0;
    while (lead < n && (in->text[lead] == ' ' || in->text[lead] == '\t' || in->text[lead] == '\n' || in->text[lead] == '\r'))
        lead++;
    json_t *root;
    if (lead == n) {
        root = json_object(); /* a missing or blank file is an empty object */
    } else {
        json_error_t je;
        root = json_loadb(in->text, n, JSON_REJECT_DUPLICATES, &je);
        if (!root)
            return stts_error_set(err, STTS_ERR_FORMAT, "%s line %d column %d: %s; fix the file (nothing was changed)",
                                  name, je.line, je.column, je.text);
        if (!json_is_object(root)) {
            json_decref(root);
            return stts_error_set(err, STTS_ERR_FORMAT, "%s holds JSON that is not an object; nothing was changed", name);
        }
    }
    if (!root) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    json_t *before = json_deep_copy(root);
    stts_status st = STTS_OK;
    json_t *hooks = json_object_get(root, "hooks");
    if (hooks && !json_is_object(hooks)) {
        st = stts_error_set(err, STTS_ERR_FORMAT, "%s: \"hooks\" is not an object; fix the file (nothing was changed)", name);
        goto done;
    }
    for (size_t i = 0; i < N_EVENTS && hooks; i++) {
        json_t *g = json_object_get(hooks, k_events[i].event);
        if (g && !json_is_array(g)) {
            st = stts_error_set(err, STTS_ERR_FORMAT, "%s: \"hooks\".\"%s\" is not an array; fix the file (nothing was "
                                "changed)", name, k_events[i].event);
            goto done;
        }
    }
    if (!hooks && !in->uninstall) {
        hooks = json_object();
        json_object_set_new(root, "hooks", hooks);
    }
    if (hooks) {
        /* Events we no longer subscribe to (or all, when uninstalling). */
        const char *ev;
        json_t *groups;
        void *tmp;
        json_object_foreach_safe(hooks, tmp, ev, groups) {
            int wanted = 0;
            for (size_t i = 0; i < N_EVENTS && !in->uninstall; i++) wanted |= strcmp(ev, k_events[i].event) == 0;
            if (wanted || !json_is_array(groups)) continue;
            int r = remove_ours(groups);
            out->removed += r;
            if (r && json_array_size(groups) == 0) json_object_del(hooks, ev);
        }
        for (size_t i = 0; i < N_EVENTS && !in->uninstall; i++) {
            json_t *want = our_group(i, in->command);
            if (!want) { st = stts_error_set(err, STTS_ERR_NOMEM, "out of memory"); goto done; }
            json_t *groups = json_object_get(hooks, k_events[i].event);
            if (groups && already_right(groups, want)) { json_decref(want); continue; }
            if (groups) out->removed += remove_ours(groups);
            else json_object_set_new(hooks, k_events[i].event, groups = json_array());
            json_array_append_new(groups, want);
            out->added++;
        }
        if (json_object_size(hooks) == 0 && out->removed) json_object_del(root, "hooks");
    }
    /* Installed, they would never run (claude-code-hooks.md 1.1): the
     * caller says so rather than report a working install. */
    out->hooks_disabled = json_is_true(json_object_get(root, "disableAllHooks"));
    out->changed = !json_equal(before, root);
    out->text = dump_keeping_reals(root);
    if (!out->text) { st = stts_error_set(err, STTS_ERR_NOMEM, "out of memory"); goto done; }
    {
        size_t l = strlen(out->text);
        char *t = realloc(out->text, l + 2);
        if (!t) { free(out->text); out->text = NULL; st = stts_error_set(err, STTS_ERR_NOMEM, "out of memory"); goto done; }
        t[l] = '\n';
        t[l + 1] = '\0';
        out->text = t;
    }
done:
    json_decref(before);
    json_decref(root);
    if (st != STTS_OK) memset(out, 0, sizeof *out);
    return st;
}
