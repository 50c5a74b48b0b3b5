/* SPDX-License-Identifier: Apache-2.0 */
/* kiln validate: load and check a spec, report every problem. */
#include "cli/cli.h"

#include "base/json.h"

static int validate_run(struct cli *cli, int argc, char **argv);

const struct verb verb_validate = {
        .name = "validate",
        .summary = "Check a spec: syntax, types, variables, build graph",
        .usage = "kiln validate [options] SPEC",
        .help = "Loads SPEC with every variable resolved and every build expanded, and\n"
                "reports all problems found as FILE:LINE:COLUMN: error: message.\n"
                "\n"
                "Options:\n"
                "  --var NAME=VALUE    set a variable (repeatable; later wins)\n"
                "  --var-file FILE     read variables from a YAML or JSON file (repeatable;\n"
                "                      later files win over earlier ones)\n"
                "  --only GLOB[,GLOB]  consider only matching builds (and their parents)\n"
                "  --except GLOB[,..]  leave out matching builds\n"
                "  --on-error=MODE     accepted and checked, for scripts that pass the same\n"
                "  --force             flags to validate and build\n"
                "  --json              print the result as JSON on stdout\n"
                "  -h, --help          this help\n"
                "\n"
                "Packer's single-dash spellings work too: -var, -var-file, -only, -except,\n"
                "-on-error, -force. Variables are also read from KILN_VAR_<name>.\n"
                "\n"
                "Exit status: 0 valid, 2 invalid (or a usage error).\n",
        .run = validate_run,
};

void cli_print_load_json(const struct spec_args *a, int r, struct diag_list *d, const struct spec *s,
                         bool pretty) {
        _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &out, pretty);
        json_begin_object(&w);
        json_key(&w, "schema_version");
        json_int(&w, 1);
        json_key(&w, "spec");
        json_string(&w, a->path);
        json_key(&w, "valid");
        json_bool(&w, r >= 0);
        json_key(&w, "errors");
        json_int(&w, (int64_t)d->nerrors);
        json_key(&w, "warnings");
        json_int(&w, (int64_t)d->nwarnings);
        json_key(&w, "builds");
        json_begin_array(&w);
        for (size_t i = 0; s && i < s->nbuilds; i++)
                if (s->builds[i]->needed)
                        json_string(&w, s->builds[i]->name);
        json_end_array(&w);
        json_key(&w, "diagnostics");
        diag_sort(d);
        diag_write_json(d, &w);
        json_end_object(&w);
        strbuf_addc(&out, '\n');
        fputs(strbuf_str(&out), stdout);
}

static int validate_run(struct cli *cli, int argc, char **argv) {
        _cleanup_(spec_args_done) struct spec_args a = {0};
        int r = spec_args_parse(&a, &verb_validate, argc, argv);
        if (r != 0)
                return cli_parse_exit(r);
        _cleanup_(diag_list_done) struct diag_list d = {0};
        _cleanup_(spec_freep) struct spec *s = NULL;
        r = cli_load_spec(cli, &a, &d, &s);
        if (a.json) {
                cli_print_load_json(&a, r, &d, s, true);
        } else if (r >= 0) {
                size_t n = 0;
                for (size_t i = 0; i < s->nbuilds; i++)
                        n += s->builds[i]->needed;
                printf("%s: valid, %zu build%s:", a.path, n, n == 1 ? "" : "s");
                for (size_t i = 0; i < s->nbuilds; i++)
                        if (s->builds[i]->needed)
                                printf(" %s", s->builds[i]->name);
                printf("\n");
        } else if (d.nerrors) {
                fprintf(stderr, "%s: %zu error%s\n", a.path, d.nerrors, d.nerrors == 1 ? "" : "s");
        }
        return r >= 0 ? EXIT_OK : EXIT_USAGE;
}
