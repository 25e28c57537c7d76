/* cmd_translate.c - `stream-tts translate`: the NLLB engine on its own.
 * Lines on stdin, one translation per line on stdout, in order, flushed as
 * each is done (an empty line gives an empty line without running the
 * model). --json prints one JSON object per line with the token ids, the
 * score and timings. --list-languages prints the 202 NLLB codes. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nllb.h"
#include "protect.h"
#include "stts_app.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: stream-tts translate [--model DIR] [--src CODE] [--tgt CODE] [--beam N] [--max-len N]\n"
            "                            [--threads N] [--weights F] [--shortlist S] [--device D] [--json] [--protect]\n"
            "       stream-tts translate --list-languages\n"
            "Translates each line of stdin (NLLB-200 / M2M100 model directory as downloaded from the\n"
            "Hugging Face hub: config.json, sentencepiece.bpe.model, model.safetensors or\n"
            "pytorch_model.bin, or stream-tts convert's output). Codes are NLLB codes such as eng_Latn.\n"
            "  --model DIR   default: $STREAM_TTS_MODEL, then the installed NLLB-200-distilled-600M\n"
            "                (scripts/fetch-model), then the bundled demo model, as the main command\n"
            "  --src, --tgt  source and target languages (default eng_Latn and jpn_Jpan)\n"
            "  --beam N      beam search with N beams (default 1: greedy)\n"
            "  --max-len N   at most N new tokens per line, the forced language token included (HF's\n"
            "                max_new_tokens; default: the model's max_length)\n"
            "  --threads N   compute threads, 0..256 (default 0: all cores, at most 256)\n"
            "  --weights F   weight format: int8, bf16, f16, f32 or auto (default auto: the fastest on\n"
            "                the device, int8 on a CPU); f32 with --shortlist none reproduces HF exactly\n"
            "  --shortlist S auto (default: the target language's script(s), Latin, digits and\n"
            "                punctuation, + the source's ids), none (the full vocabulary) or FILE (token\n"
            "                ids, one per line)\n"
            "  --device D    auto (default), cpu, or cuda (needs -DSTTS_CUDA=ON and an NVIDIA Hopper GPU).\n"
            "                %s\n"
            "  --json        one JSON object per line: text, ids, score, ms, truncated (and protected)\n"
            "  --protect     identifiers, paths, code words and numbers reach the output verbatim, as the\n"
            "                speech pipeline does (stand-in names swapped back; docs/QUALITY.md)\n"
            "  --show-protected  print each line as --protect hands it to the model (no translation)\n",
            cli_device_auto_help());
}

static int parse_int(const char *flag, const char *v, int lo, int hi, int *out) {
    char *end = NULL;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || !end || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "stream-tts translate: %s needs an integer in %d..%d (got \"%s\")\n", flag, lo, hi,
                v ? v : "");
        return -1;
    }
    *out = (int)x;
    return 0;
}

int cli_device(const char *who, const char *value, int *device) {
    int d = nllb_device_parse(value);
    if (d < 0) {
        fprintf(stderr, "%s: --device expects auto, cpu or cuda, got '%s'\n", who, value ? value : "");
        return -1;
    }
    if (d == NLLB_DEVICE_AUTO) {
        /* no usable GPU: said here; a GPU without room for the model: said
         * after the load (cli_device_note), which then runs on the CPU */
        stts_error e;
        if (nllb_cuda_probe(&e) != STTS_OK) {
            fprintf(stderr, "%s: --device auto: running on the CPU: %s\n", who, e.msg);
            d = NLLB_DEVICE_CPU;
        }
    }
    *device = d;
    return 0;
}

/* What --device auto does in this build (the help's one line, both commands). */
const char *cli_device_auto_help(void) {
    if (nllb_cuda_built())
        return "auto: the GPU when a CUDA device and driver are there and\n"
               "                the model fits, else the CPU with one line on stderr saying why";
    return "no CUDA in this build: auto is the CPU, said on stderr only\n"
           "                when an NVIDIA driver is loaded or --device auto is given";
}

void cli_device_note(const char *who, const nllb_model *m) {
    const char *note = m ? nllb_model_device_note(m) : "";
    if (note[0]) fprintf(stderr, "%s: --device auto: running on the CPU: %s\n", who, note);
}

/* Flushes stdout; on failure says so (a full disk, /dev/full) and returns -1,
 * so that translating stops at the first line that cannot be written. */
static int flush_out(void) {
    if (fflush(stdout) == 0 && !ferror(stdout)) return 0;
    fprintf(stderr, "stream-tts translate: writing to standard output failed: %s; stopped\n", strerror(errno));
    return -1;
}

static int known_code(const char *code) {
    for (int i = 0; i < nllb_num_languages(); i++)
        if (strcmp(nllb_language_code(i), code) == 0) return 1;
    return 0;
}

static int translate_main(int argc, char **argv) {
    const char *model_dir = NULL, *src = NULL, *tgt = NULL;
    const char *shortlist = "auto";
    const char *device = NULL; /* the engine's default: auto, silently */
    int beams = 1, max_len = 0, threads = 0, json = 0, list = 0, protect = 0, show_protected = 0;
    int weights = NLLB_WEIGHTS_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--model") && v) model_dir = argv[++i];
        else if (!strcmp(a, "--src") && v) src = argv[++i];
        else if (!strcmp(a, "--tgt") && v) tgt = argv[++i];
        else if (!strcmp(a, "--beam")) {
            if (parse_int(a, v, 1, 64, &beams)) return 2;
            i++;
        } else if (!strcmp(a, "--max-len")) {
            /* 1 (the target-language token alone: every line empty) stays accepted, as it
             * always was (scripts use it to time the encoder); each line then warns below */
            if (parse_int(a, v, 1, 65535, &max_len)) return 2;
            i++;
        } else if (!strcmp(a, "--threads")) {
            /* one range everywhere (the main command, bench_nllb, the engine): 0 = all cores */
            if (parse_int(a, v, 0, 256, &threads)) return 2;
            i++;
        } else if (!strcmp(a, "--weights") && v) {
            if ((weights = nllb_weights_parse(argv[++i])) < 0) {
                fprintf(stderr, "stream-tts translate: --weights must be int8, bf16, f16, f32 or auto (got \"%s\")\n",
                        argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--shortlist") && v) shortlist = argv[++i];
        else if (!strcmp(a, "--device") && v) device = argv[++i];
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--protect")) protect = 1;
        else if (!strcmp(a, "--show-protected")) show_protected = 1;
        else if (!strcmp(a, "--list-languages")) list = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "stream-tts translate: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (list) {
        for (int i = 0; i < nllb_num_languages(); i++) printf("%s\n", nllb_language_code(i));
        return flush_out() ? 1 : 0;
    }
    if (show_protected) {
        /* each line as the engine would get it with --protect (no model needed) */
        if (!tgt) { fprintf(stderr, "stream-tts translate: --show-protected needs --tgt\n"); return 2; }
        char *ln = NULL;
        size_t lcap = 0;
        ssize_t ll;
        while ((ll = getline(&ln, &lcap, stdin)) >= 0) {
            while (ll > 0 && (ln[ll - 1] == '\n' || ln[ll - 1] == '\r')) ln[--ll] = 0;
            protect_map pm;
            char *prot = NULL;
            int r = protect_apply(ln, tgt, &pm, &prot);
            printf("%s\n", r > 0 ? prot : ln);
            protect_clear(&pm);
            free(prot);
        }
        free(ln);
        return 0;
    }
    /* The main command's defaults: the same model search (--model, then
     * $STREAM_TTS_MODEL, the installed model, the demo model) and English
     * to Japanese; translate once ignored $STREAM_TTS_MODEL and wanted all
     * three flags, so a user who set the variable for the main command got
     * "required" here. */
    if (!src) src = "eng_Latn";
    if (!tgt) tgt = "jpn_Jpan";
    char picked[4096];
    const char *model_why = "--model";
    {
        stts_error perr;
        if (app_pick_model(model_dir, picked, sizeof picked, &model_why, &perr) != STTS_OK) {
            fprintf(stderr, "stream-tts translate: %s\n", perr.msg);
            return 2;
        }
        model_dir = picked;
    }
    const char *codes[2] = {src, tgt};
    for (int k = 0; k < 2; k++)
        if (!known_code(codes[k])) {
            fprintf(stderr,
                    "stream-tts translate: unknown language code '%s' for %s (NLLB codes look like eng_Latn; "
                    "see stream-tts translate --list-languages)\n",
                    codes[k], k ? "--tgt" : "--src");
            return 2;
        }

    nllb_model_params mp = nllb_model_default_params();
    mp.threads = threads;
    mp.weights = (nllb_weights)weights;
    int dev = (int)mp.device;
    if (device && cli_device("stream-tts translate", device, &dev)) return 2;
    mp.device = (nllb_device)dev;
    nllb_model *m = NULL;
    stts_error err;
    uint64_t t0 = stts_now_ns();
    if (nllb_model_load(model_dir, &mp, &m, &err) != STTS_OK) {
        /* --device cuda without a usable GPU (no CUDA in this build, no
         * driver, no room): the reason said how to rebuild, not that the
         * CPU (or auto) runs the same command now */
        int gpu = strncmp(err.msg, "device cuda: ", 13) == 0;
        int picked_here = strcmp(model_why, "--model") != 0;
        fprintf(stderr, "stream-tts translate: %s%s%s%s%s\n", err.msg,
                gpu ? "; --device cpu runs on the CPU (--device auto, the default: the GPU where one is usable)" : "",
                picked_here ? " (the model directory came from " : "", picked_here ? model_why : "",
                picked_here ? "; --model DIR names another)" : "");
        return 1;
    }
    double load_ms = (double)(stts_now_ns() - t0) / 1e6;
    cli_device_note("stream-tts translate", m);
    char demo_note[STTS_ERROR_MAX];   /* the demo model asked for another pair: nonsense, said once */
    if (app_demo_pair_warning(m, model_dir, src, tgt, demo_note, sizeof demo_note))
        fprintf(stderr, "stream-tts translate: warning: %s\n", demo_note);
    nllb_session_params sp = nllb_session_default_params();
    sp.max_beams = beams;
    nllb_session *s = NULL;
    if (nllb_session_new(m, &sp, &s, &err) != STTS_OK) {
        fprintf(stderr, "stream-tts translate: %s\n", err.msg);
        nllb_model_free(m);
        return 1;
    }
    if (json)
        fprintf(stderr, "stream-tts translate: model loaded in %.0f ms (%s, %s weights)\n", load_ms,
                nllb_model_backend(m), nllb_weights_name(nllb_model_weights(m)));
    nllb_translate_params tp = nllb_translate_default_params();
    tp.num_beams = beams;
    tp.max_new_tokens = max_len;
    int32_t *sl_ids = NULL;
    if (!strcmp(shortlist, "auto")) tp.shortlist = NLLB_SHORTLIST_AUTO;
    else if (!strcmp(shortlist, "none")) tp.shortlist = NLLB_SHORTLIST_NONE;
    else {
        if (nllb_shortlist_read(m, shortlist, &sl_ids, &tp.n_shortlist_ids, &err) != STTS_OK) {
            fprintf(stderr, "stream-tts translate: --shortlist: %s (a file of token ids, or auto, or none)\n",
                    err.msg);
            nllb_session_free(s);
            nllb_model_free(m);
            return 2;
        }
        tp.shortlist = NLLB_SHORTLIST_IDS;
        tp.shortlist_ids = sl_ids;
    }
    /* The decoder cannot run past the model's positions: refuse now, not
     * after the first lines have been answered. */
    int max_pos = nllb_model_config(m)->max_position_embeddings;
    if (max_len > 0 && max_len + 1 > max_pos) {
        fprintf(stderr, "stream-tts translate: --max-len %d is more than this model can decode (at most %d: its "
                        "max_position_embeddings is %d)\n", max_len, max_pos - 1, max_pos);
        free(sl_ids);
        nllb_session_free(s);
        nllb_model_free(m);
        return 2;
    }

    int rc = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        /* getline keeps NUL bytes but the engine takes C strings: a NUL would
         * cut the line short, so it is read as the space it stands in for,
         * and said, as invalid UTF-8 is (a binary file is not text). */
        ssize_t first_nul = -1;
        for (ssize_t z = 0; z < n; z++)
            if (line[z] == '\0') {
                if (first_nul < 0) first_nul = z;
                line[z] = ' ';
            }
        if (first_nul >= 0)
            fprintf(stderr, "stream-tts translate: warning: line %ld holds a NUL byte (byte %zd); the input must be "
                            "text, each NUL is translated as a space\n",
                    lineno, first_nul + 1);
        /* Not UTF-8 (Latin-1 text, a binary file): the tokenizer makes
         * unknown tokens of the bad bytes and the model guesses; said, so a
         * wrong encoding does not pass for a bad translation. */
        size_t valid = stts_utf8_valid_prefix((const unsigned char *)line, (size_t)n);
        if (valid < (size_t)n)
            fprintf(stderr, "stream-tts translate: warning: line %ld is not valid UTF-8 (byte %zu); the input must be "
                            "UTF-8 text (convert it with iconv), its invalid bytes are translated as unknown tokens\n",
                    lineno, valid + 1);
        /* A line of only white space is an empty line: the model would
         * otherwise invent a sentence for it. */
        ssize_t k = 0;
        while (k < n && (line[k] == ' ' || line[k] == '\t')) k++;
        if (k == n) {
            if (json) printf("{\"text\":\"\",\"ids\":[],\"score\":0,\"ms\":0,\"src_tokens\":0,\"truncated\":false}\n");
            else printf("\n");
            if (flush_out()) { rc = 1; break; }
            continue;
        }
        nllb_result r;
        /* --protect: what the speech pipeline does (identifiers through as stand-ins) */
        protect_map pm = {0};
        char *prot = NULL;
        int protected_ = protect ? protect_apply(line, tgt, &pm, &prot) : 0;
        int nprot = protected_ > 0 ? pm.n : 0;
        const char *texts[1] = {protected_ > 0 ? prot : line};
        uint64_t a = stts_now_ns();
        if (nllb_translate(s, texts, 1, src, tgt, &tp, &r, &err) != STTS_OK) {
            fprintf(stderr, "stream-tts translate: line %ld: %s\n", lineno, err.msg);
            protect_clear(&pm);
            free(prot);
            rc = 1;
            break;
        }
        if (protected_ > 0) {
            char *back = protect_restore(r.text ? r.text : "", &pm);
            if (back) { free(r.text); r.text = back; }
        }
        protect_clear(&pm);
        free(prot);
        double ms = (double)(stts_now_ns() - a) / 1e6;
        if (r.truncated)
            fprintf(stderr, "stream-tts translate: warning: line %ld is longer than the model's %d positions; "
                            "translated its first %d tokens\n",
                    lineno, nllb_model_config(m)->max_position_embeddings, r.src_tokens);
        /* No </s> at the end: decoding stopped at the length limit and the
         * translation is likely cut short; that was silent. */
        if (r.n_ids > 0 && !nllb_model_is_eos(m, r.ids[r.n_ids - 1])) {
            if (max_len > 0)
                fprintf(stderr, "stream-tts translate: warning: line %ld: the translation stopped at --max-len %d "
                                "and may be cut short (this model allows up to --max-len %d)\n",
                        lineno, max_len, max_pos - 1);
            else
                fprintf(stderr, "stream-tts translate: warning: line %ld: the translation stopped at the model's "
                                "max_length (%d tokens) and may be cut short; --max-len N allows more (this model: up to %d)\n",
                        lineno, nllb_model_config(m)->max_length, max_pos - 1);
        }
        if (json) {
            json_t *o = json_object(), *ids = json_array();
            for (int i = 0; i < r.n_ids; i++) json_array_append_new(ids, json_integer(r.ids[i]));
            json_object_set_new(o, "text", json_string(r.text ? r.text : ""));
            json_object_set_new(o, "ids", ids);
            json_object_set_new(o, "score", json_real(r.score));
            json_object_set_new(o, "ms", json_real(ms));
            json_object_set_new(o, "src_tokens", json_integer(r.src_tokens));
            json_object_set_new(o, "truncated", json_boolean(r.truncated));
            if (protect) json_object_set_new(o, "protected", json_integer(nprot));
            char *txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
            printf("%s\n", txt ? txt : "{}");
            free(txt);
            json_decref(o);
        } else {
            printf("%s\n", r.text ? r.text : "");
        }
        nllb_result_clear(&r);
        if (flush_out()) { rc = 1; break; }
    }
    free(line);
    free(sl_ids);
    nllb_session_free(s);
    nllb_model_free(m);
    return rc;
}

/* Both "--flag VALUE" and "--flag=VALUE", as on the main command. */
int cmd_translate(int argc, char **argv) {
    static const char *const value_flags[] = {"--model",   "--src",     "--tgt",       "--beam",   "--max-len",
                                              "--threads", "--weights", "--shortlist", "--device", NULL};
    return cli_run_split(argc, argv, value_flags, translate_main);
}
