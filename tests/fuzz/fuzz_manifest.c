/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz entry point for the one reader of an output folder's
 * kiln-manifest.json, artifact_set_read (image/artifact.h), and for what
 * takes its set: publishing (publish_artifacts_use_set, for kiln publish and
 * kiln build) and the image store (store_add_artifacts, for kiln images add
 * and kiln build). The input is the manifest, written into a scratch output
 * folder that also holds two small artifacts (a.qcow2, b.raw; their sizes
 * and checksums are in the seed corpus); the store is a scratch store,
 * emptied again after each successful add. Whatever the reader accepts must
 * be plain files of that folder of their recorded sizes; whatever the store
 * catalogues must be one of them.
 *
 *   make fuzz && ./build-fuzz/fuzz_manifest tests/fuzz/corpus-manifest
 */
#include "fuzz.h"

#include "image/artifact.h"
#include "publish/publish.h"
#include "store/store.h"

static struct store *fuzz_manifest_store;

static const char *fuzz_manifest_out(void) {
        static char *out;
        if (!out) {
                out = xasprintf("%s/out", fuzz_dir());
                if (mkdir(out, 0755) < 0)
                        abort();
                free(fuzz_write(out, "a.qcow2", "qcow2 image\n", 12));
                free(fuzz_write(out, "b.raw", "raw image\n", 10));
                _cleanup_free_ char *sdir = xasprintf("%s/store", fuzz_dir());
                if (store_open(sdir, &fuzz_manifest_store) < 0)
                        abort();
        }
        return out;
}

int fuzz_manifest_one(const uint8_t *data, size_t size);

int fuzz_manifest_one(const uint8_t *data, size_t size) {
        const char *out = fuzz_manifest_out();
        free(fuzz_write(out, "kiln-manifest.json", data, size));

        /* The text alone, then the folder (with its files on disk). */
        struct artifact_set set = {0};
        struct strbuf err = STRBUF_INIT;
        if (artifact_set_parse(out, (const char *)data, size, &set, &err) >= 0)
                artifact_set_done(&set);
        strbuf_reset(&err);
        if (artifact_set_read(out, &set, &err) < 0) {
                fuzz_show(strbuf_str(&err));
                strbuf_free(&err);
                return 0;
        }
        for (size_t i = 0; i < set.nfiles; i++) {
                const struct artifact_file *f = &set.files[i];
                _cleanup_free_ char *path = xasprintf("%s/%s", out, f->file);
                struct stat st;
                if (!artifact_file_name_ok(f->file) || !streq(f->path, path) || stat(path, &st) < 0 ||
                    (uint64_t)st.st_size != f->size) {
                        fprintf(stderr, "fuzz: the reader took '%s'\n", f->file);
                        abort();
                }
        }
        for (int sha512 = 0; sha512 < 2; sha512++) {
                struct publish_artifacts pa = {0};
                strbuf_reset(&err);
                publish_artifacts_use_set(&pa, &set, sha512, &err);
                publish_artifacts_done(&pa);
        }
        strbuf_free(&err);

        struct store_entry *e = NULL;
        size_t n = 0;
        static const struct store_add_options opts = {.flags = STORE_ADD_COPY};
        if (store_add_artifacts(fuzz_manifest_store, &set, &opts, &e, &n) >= 0) {
                int64_t ids[STORE_MAX_ARTIFACTS];
                for (size_t i = 0; i < n; i++) {
                        if (!store_name_valid(e[i].file) ||
                            (!streq(e[i].file, "a.qcow2") && !streq(e[i].file, "b.raw"))) {
                                fprintf(stderr, "fuzz: the store took '%s'\n", e[i].file);
                                abort();
                        }
                        ids[i] = e[i].id;
                }
                if (n > STORE_MAX_ARTIFACTS ||
                    store_remove(fuzz_manifest_store, ids, n, NULL, NULL) < 0)
                        abort();
        }
        fuzz_show(store_error(fuzz_manifest_store));
        store_entries_free(e, n);
        artifact_set_done(&set);
        return 0;
}

FUZZ_ENTRY(fuzz_manifest_one)
