/* cmd_install_hooks.c - `stream-tts install-hooks`: writes stream-tts's hook
 * entries into a Claude Code settings.json (or removes them), so interactive
 * sessions are spoken without editing JSON by hand. The merge itself
 * (client_settings_merge) keeps every other key and hook; this file picks
 * the file for the scope, backs it up and replaces it atomically. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "stts_client.h"

static void usage(FILE *f) {
    fputs("usage: stream-tts install-hooks [--scope user|project|local] [--uninstall] [--dry-run]\n"
          "  adds stream-tts's hook entries (SessionStart, UserPromptSubmit, MessageDisplay, Stop,\n"
          "  StopFailure, Notification, SessionEnd; exec form: COMMAND hook) to Claude Code's settings:\n"
          "    user     ~/.claude/settings.json (default; every project)\n"
          "    project  <project>/.claude/settings.json (committed, shared with the team)\n"
          "    local    <project>/.claude/settings.local.json (you, this project)\n"
          "  <project> is the enclosing git work tree, else the current folder. Every other key and\n"
          "  hook is kept; the old file is backed up beside it; running it again changes nothing.\n"
          "  --uninstall      remove only stream-tts's entries\n"
          "  --dry-run        print the resulting file and change nothing\n"
          "  --settings FILE  edit FILE instead of the scope's file\n"
          "  --command PATH   the program the hooks run (default: this stream-tts, as an absolute path)\n"
          "  Use this or the plugin (.claude-plugin/ in the source tree), not both: both would speak.\n",
          f);
}

/* The git work tree holding the current folder, else the current folder. */
static int project_dir(char *buf, size_t cap) {
    char cwd[PATH_MAX], probe[PATH_MAX + 8];
    if (!getcwd(cwd, sizeof cwd)) return -1;
    size_t len = strlen(cwd);
    for (;;) {
        snprintf(probe, sizeof probe, "%.*s/.git", (int)len, cwd);
        if (access(probe, F_OK) == 0) { snprintf(buf, cap, "%.*s", (int)(len ? len : 1), len ? cwd : "/"); return 0; }
        size_t cut = len; /* the last '/' before len (memrchr is glibc's, not macOS's) */
        while (cut > 0 && cwd[cut - 1] != '/') cut--;
        if (cut == 0 || len == 0) break;
        len = cut - 1;
    }
    snprintf(buf, cap, "%s", cwd);
    return 0;
}

static char *read_all(const char *path, size_t *n, int *missing) {
    *n = 0;
    *missing = 0;
    FILE *f = fopen(path, "rb");
    if (!f) { *missing = errno == ENOENT; return NULL; }
    size_t cap = 8192, len = 0;
    char *b = malloc(cap);
    size_t k;
    while (b && (k = fread(b + len, 1, cap - len, f)) > 0) {
        len += k;
        if (len == cap) {
            char *g = len < (64u << 20) ? realloc(b, cap *= 2) : NULL;
            if (!g) { free(b); b = NULL; }
            else b = g;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(b); return NULL; }
    *n = len;
    return b;
}


static int write_file(const char *path, const char *text, size_t n, mode_t mode) {
    char tmp[PATH_MAX + 80];
    snprintf(tmp, sizeof tmp, "%s.stream-tts.%ld.tmp", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    int ok = off == n && fsync(fd) == 0;
    ok = (close(fd) == 0) && ok;
    if (ok) fchmodat(AT_FDCWD, tmp, mode, 0);
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

/* The folders above path, each made when missing (mkdir -p): a new
 * project's .claude/, or a --settings path two levels down. */
static int mkdir_parent(const char *path) {
    char d[PATH_MAX + 32];
    snprintf(d, sizeof d, "%s", path);
    char *s = strrchr(d, '/');
    if (!s || s == d) return 0;
    *s = '\0';
    for (char *p = d + 1;; p++) {
        if (*p && *p != '/') continue;
        char c = *p;
        *p = '\0';
        struct stat st;
        if (mkdir(d, 0755) != 0 && errno != EEXIST) return -1;
        if (stat(d, &st) != 0) return -1;
        if (!S_ISDIR(st.st_mode)) { errno = ENOTDIR; return -1; }
        if (!(*p = c)) return 0;
    }
}

/* A symlink whose target does not exist yet (a dotfile manager's link
 * made before the file): the file is made at the target, the link kept
 * (realpath fails on it, and the link was replaced by a plain file). */
static void follow_dangling(char *path, size_t cap) {
    for (int hops = 0; hops < 40; hops++) {
        struct stat st;
        char t[PATH_MAX];
        if (lstat(path, &st) != 0 || !S_ISLNK(st.st_mode)) return;
        ssize_t n = readlink(path, t, sizeof t - 1);
        if (n <= 0) return;
        t[n] = '\0';
        /* relative: to the link's folder */
        const char *slash = t[0] == '/' ? NULL : strrchr(path, '/');
        size_t dir = slash ? (size_t)(slash - path + 1) : 0;
        if (dir + (size_t)n >= cap) return;
        memcpy(path + dir, t, (size_t)n + 1);
    }
}

/* A line of file equal to want, whole (trailing spaces and CR ignored). */
static int file_has_line(const char *file, const char *want) {
    FILE *f = fopen(file, "r");
    if (!f) return 0;
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' ')) line[--l] = '\0';
        found = strcmp(line, want) == 0;
    }
    fclose(f);
    return found;
}

/* settings.local.json and our backups of it are kept out of git, as Claude
 * Code keeps the one it makes (claude-code-hooks.md 1): it holds this machine's absolute path.
 * The rule goes to the repository's own .git/info/exclude (never committed,
 * nobody else's business); a worktree's .git file names its git folder, whose
 * "commondir" holds the shared info/. No git program is run: the launcher
 * stays light and git need not be installed. Quiet unless it wrote. */
static void keep_local_out_of_git(const char *proj) {
    char gitdir[PATH_MAX], probe[PATH_MAX + 32], line[PATH_MAX];
    struct stat st;
    /* a path that does not fit is given up on, quietly (the return values checked) */
    if (snprintf(gitdir, sizeof gitdir, "%s/.git", proj) >= (int)sizeof gitdir) return;
    if (stat(gitdir, &st) != 0) return;              /* not a git work tree */
    if (S_ISREG(st.st_mode)) {                        /* "gitdir: PATH" (worktree, submodule) */
        FILE *f = fopen(gitdir, "r");
        int ok = f && fgets(line, sizeof line, f) && strncmp(line, "gitdir: ", 8) == 0;
        if (f) fclose(f);
        if (!ok) return;
        line[strcspn(line, "\r\n")] = '\0';
        if ((line[8] == '/' ? snprintf(gitdir, sizeof gitdir, "%s", line + 8)
                            : snprintf(gitdir, sizeof gitdir, "%s/%s", proj, line + 8)) >= (int)sizeof gitdir)
            return;
        if (snprintf(probe, sizeof probe, "%s/commondir", gitdir) >= (int)sizeof probe) return;
        f = fopen(probe, "r");
        if (f) {
            ok = fgets(line, sizeof line, f) != NULL;
            fclose(f);
            line[strcspn(line, "\r\n")] = '\0';
            char common[PATH_MAX];
            if (ok && (line[0] == '/' ? snprintf(common, sizeof common, "%s", line)
                                      : snprintf(common, sizeof common, "%s/%s", gitdir, line)) >= (int)sizeof common)
                return;
            if (ok) memcpy(gitdir, common, sizeof gitdir);
        }
    } else if (!S_ISDIR(st.st_mode)) {
        return;
    }
    /* the file, and the backups this command leaves beside it */
    static const char *const rules[] = {"/.claude/settings.local.json", "/.claude/settings.local.json.bak-*", NULL};
    char ignore[PATH_MAX + 16];
    if (snprintf(ignore, sizeof ignore, "%s/.gitignore", proj) >= (int)sizeof ignore ||
        snprintf(probe, sizeof probe, "%s/info/exclude", gitdir) >= (int)sizeof probe)
        return;
    const char *add[2];
    int n_add = 0;
    for (int k = 0; rules[k]; k++)
        if (!file_has_line(ignore, rules[k]) && !file_has_line(ignore, rules[k] + 1) &&
            !file_has_line(probe, rules[k]) && !file_has_line(probe, rules[k] + 1))
            add[n_add++] = rules[k];
    if (!n_add) return;
    if (mkdir_parent(probe) != 0) return;
    FILE *f = fopen(probe, "a");
    if (!f) {
        fprintf(stderr, "stream-tts install-hooks: note: could not add .claude/settings.local.json to %s (%s): "
                        "keep it out of git yourself, it holds this machine's path\n", probe, strerror(errno));
        return;
    }
    fprintf(f, "# stream-tts install-hooks --scope local: your own settings, this machine's paths\n");
    for (int k = 0; k < n_add; k++) fprintf(f, "%s\n", add[k]);
    if (fclose(f) == 0) printf("kept out of git: %s and its backups, in %s\n", rules[0] + 1, probe);
}

static int install_hooks_main(int argc, char **argv) {
    const char *scope = "user", *settings = NULL, *command = NULL;
    int uninstall = 0, dry = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { usage(stdout); return 0; }
        else if (strcmp(a, "--uninstall") == 0) uninstall = 1;
        else if (strcmp(a, "--dry-run") == 0) dry = 1;
        else if ((strcmp(a, "--scope") == 0 || strcmp(a, "--settings") == 0 || strcmp(a, "--command") == 0) && i + 1 < argc) {
            const char *v = argv[++i];
            if (a[2] == 's' && a[3] == 'c') scope = v;
            else if (a[2] == 's') settings = v;
            else command = v;
        } else {
            fprintf(stderr, "stream-tts install-hooks: unknown or incomplete argument '%s' "
                            "(see stream-tts install-hooks --help)\n", a);
            return 2;
        }
    }
    char path[PATH_MAX + 32], proj[PATH_MAX];
    if (settings) {
        snprintf(path, sizeof path, "%s", settings);
    } else if (strcmp(scope, "user") == 0) {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            fprintf(stderr, "stream-tts install-hooks: HOME is not set; use --settings FILE\n");
            return 1;
        }
        snprintf(path, sizeof path, "%s/.claude/settings.json", home);
    } else if (strcmp(scope, "project") == 0 || strcmp(scope, "local") == 0) {
        if (project_dir(proj, sizeof proj) != 0) {
            fprintf(stderr, "stream-tts install-hooks: cannot find the current folder: %s\n", strerror(errno));
            return 1;
        }
        snprintf(path, sizeof path, "%s/.claude/settings%s.json", proj, scope[0] == 'l' ? ".local" : "");
    } else {
        fprintf(stderr, "stream-tts install-hooks: --scope must be user, project or local, not '%s'\n", scope);
        return 2;
    }
    /* Write through a symlinked settings file (dotfile managers) to its target. */
    char real[PATH_MAX];
    if (realpath(path, real)) snprintf(path, sizeof path, "%s", real);
    else follow_dangling(path, sizeof path);
    char self[PATH_MAX];
    stts_error e;
    if (!command) {
        char exe[PATH_MAX];
        if (client_self_exe(exe, sizeof exe, &e) != STTS_OK) {
            fprintf(stderr, "stream-tts install-hooks: %s; give --command PATH\n", e.msg);
            return 1;
        }
        command = realpath(exe, self) ? self : exe;
        /* The full program run directly (<prefix>/libexec/stream-tts-full):
         * the hooks run the launcher beside it, <prefix>/bin/stream-tts. */
        const char *base = strrchr(command, '/');
        char bin[PATH_MAX + 32];
        if (base && strcmp(base + 1, "stream-tts") != 0) {
            snprintf(bin, sizeof bin, "%.*s/../bin/stream-tts", (int)(base - command), command);
            if (access(bin, X_OK) == 0 && realpath(bin, self)) command = self;
        }
    } else if (command[0] != '/') {
        fprintf(stderr, "stream-tts install-hooks: --command needs an absolute path (hooks run without a shell)\n");
        return 2;
    }
    size_t n = 0;
    int missing = 0;
    char *text = read_all(path, &n, &missing);
    if (!text && !missing) {
        fprintf(stderr, "stream-tts install-hooks: cannot read %s: %s\n", path, strerror(errno));
        return 1;
    }
    client_settings_in in = {path, text, n, command, uninstall};
    client_settings_out out;
    if (client_settings_merge(&in, &out, &e) != STTS_OK) {
        fprintf(stderr, "stream-tts install-hooks: %s\n", e.msg);
        free(text);
        return 1;
    }
    int rc = 0;
    if (!uninstall && out.hooks_disabled)
        fprintf(stderr, "stream-tts install-hooks: warning: %s has \"disableAllHooks\": true, so Claude Code runs "
                        "none of its hooks (nor those of your other settings files): nothing will be spoken until "
                        "you remove that key\n", path);
    if (!out.changed) {
        printf("%s: stream-tts hooks %s; nothing changed\n", path,
               uninstall ? "are not there" : "are already installed");
    } else if (dry) {
        printf("%s: would %s%s (dry run, nothing written); the file would read:\n%s", path,
               uninstall ? "remove stream-tts's hook entries" : "add stream-tts's hook entries",
               missing ? " (new file)" : "", out.text);
    } else if (!missing && access(path, W_OK) != 0) {
        /* the file is replaced by a rename, which its own permissions do not
         * stop: a read-only settings file (kept so on purpose, or owned by
         * another user in a shared folder) was rewritten */
        fprintf(stderr, "stream-tts install-hooks: %s is not writable (%s); nothing changed. Make it writable, "
                        "or see the change with --dry-run and make it yourself\n", path, strerror(errno));
        rc = 1;
    } else {
        struct stat st;
        mode_t mode = 0644;
        if (!missing && stat(path, &st) == 0) mode = st.st_mode & 07777;
        char backup[PATH_MAX + 80] = "";
        if (!missing) {
            char stamp[32];
            time_t t = time(NULL);
            struct tm tm;
            strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime_r(&t, &tm));
            snprintf(backup, sizeof backup, "%s.bak-%s", path, stamp);
            /* Never over an older backup: two runs within a second (install,
             * then with another --command) replaced the first one's, the
             * only copy of the file as it was before stream-tts touched it. */
            for (int k = 2; access(backup, F_OK) == 0 && k < 1000; k++)
                snprintf(backup, sizeof backup, "%s.bak-%s-%d", path, stamp, k);
            if (write_file(backup, text, n, mode) != 0) {
                fprintf(stderr, "stream-tts install-hooks: cannot write the backup %s: %s; nothing changed\n",
                        backup, strerror(errno));
                rc = 1;
            }
        }
        if (rc == 0 && (mkdir_parent(path) != 0 || write_file(path, out.text, strlen(out.text), mode) != 0)) {
            fprintf(stderr, "stream-tts install-hooks: cannot write %s: %s\n", path, strerror(errno));
            rc = 1;
        }
        if (rc == 0) {
            if (uninstall) printf("%s: removed %d stream-tts hook entr%s\n", path, out.removed, out.removed == 1 ? "y" : "ies");
            else printf("%s: %s %d hook entries running '%s hook'%s\n", path, out.removed ? "updated" : "added",
                        out.added, command, missing ? " (new file)" : "");
            if (backup[0]) printf("backup of the previous file: %s\n", backup);
            if (!settings && strcmp(scope, "local") == 0) keep_local_out_of_git(proj);
            if (!uninstall && !settings && strcmp(scope, "project") == 0)
                /* Committed, the entries run this machine's path on every
                 * clone: where it does not exist, Claude Code shows a hook
                 * error on every event (claude-code-hooks.md 3.3). */
                fprintf(stderr, "stream-tts install-hooks: note: %s is shared with everyone who works in this "
                                "repository: their Claude Code runs '%s hook' too, and shows a hook error on "
                                "every event where that program is missing; for yourself only, use --scope local\n",
                        path, command);
            if (!uninstall)
                printf("new Claude Code sessions speak through stream-tts (after the folder's trust dialog); "
                       "undo with: stream-tts install-hooks --uninstall%s%s\n",
                       settings ? " --settings " : (strcmp(scope, "user") ? " --scope " : ""),
                       settings ? settings : (strcmp(scope, "user") ? scope : ""));
        }
    }
    free(out.text);
    free(text);
    return rc;
}

/* Both "--flag VALUE" and "--flag=VALUE", as on the main command. */
int cmd_install_hooks(int argc, char **argv) {
    static const char *const value_flags[] = {"--scope", "--settings", "--command", NULL};
    return cli_run_split(argc, argv, value_flags, install_hooks_main);
}
