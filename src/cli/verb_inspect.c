/* SPDX-License-Identifier: Apache-2.0 */
/* kiln inspect: show every expanded build as kiln will build it. */
#include "cli/cli.h"

#include "spec/render.h"

static int inspect_run(struct cli *cli, int argc, char **argv);

const struct verb verb_inspect = {
        .name = "inspect",
        .summary = "Show the expanded builds, variables and steps of a spec",
        .usage = "kiln inspect [options] SPEC",
        .help = "Prints, for each build after matrix expansion: name, arch, role, parent\n"
                "chain, source, steps with their parameters evaluated, and outputs; and\n"
                "every variable with where its value came from. Sensitive values are\n"
                "shown as <sensitive>.\n"
                "\n"
                "Options:\n"
                "  --json              machine-readable output (schema: docs/inspect-json.md)\n"
                "  --var NAME=VALUE    set a variable (repeatable; later wins)\n"
                "  --var-file FILE     read variables from a YAML or JSON file (repeatable)\n"
                "  --only GLOB[,GLOB]  show only matching builds (and their parents)\n"
                "  --except GLOB[,..]  leave out matching builds\n"
                "  -h, --help          this help\n"
                "\n"
                "Packer's single-dash spellings work too (-var, -only, ...).\n"
                "Exit status: 0 ok, 2 invalid spec or usage error.\n",
        .run = inspect_run,
};

static int inspect_run(struct cli *cli, int argc, char **argv) {
        _cleanup_(spec_args_done) struct spec_args a = {0};
        int r = spec_args_parse(&a, &verb_inspect, argc, argv);
        if (r != 0)
                return cli_parse_exit(r);
        _cleanup_(diag_list_done) struct diag_list d = {0};
        _cleanup_(spec_freep) struct spec *s = NULL;
        bool json = a.json;
        a.json = false; /* diagnostics go to stderr either way */
        r = cli_load_spec(cli, &a, &d, &s);
        if (r >= 0) {
                _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
                if (json)
                        spec_render_json(s, &out);
                else
                        spec_render_text(s, &out, cli->color_out);
                fputs(strbuf_str(&out), stdout);
        }
        return r >= 0 ? EXIT_OK : EXIT_USAGE;
}
