/* SPDX-License-Identifier: Apache-2.0 */
/*
 * state.c — how the guest's boot ended, in systemd's words.
 *
 * Readiness (the marker, an SSH login) says the guest came up; it does not
 * say everything started. systemd does: `systemctl is-system-running`
 * answers "running" when every unit started and "degraded" when some failed.
 * One SSH command waits (bounded, inside the guest with timeout(1), and on
 * the host by the exec deadline) for the boot to finish and lists the failed
 * units; its output is tagged line by line, so the parser below ignores
 * anything else the guest prints (a motd, a shell's noise). The guest is not
 * trusted: every line, unit name and count is bounded.
 */
#include "vm/vm-internal.h"

/* The prefixes the script tags its lines with. */
#define TAG_STATE "kiln-state: "
#define TAG_FAILED "kiln-failed: "

/* Host-side slack over the in-guest wait: SSH set-up, systemctl itself. */
#define SETTLE_SLACK_S 60

static bool unit_char(unsigned char c) {
        /* systemd's unit name characters (letters, digits, ":-_.\@") */
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == ':' || c == '-' || c == '_' || c == '.' || c == '\\' || c == '@';
}

static void add_failed(struct vm_boot_state *s, const char *name, size_t len) {
        if (s->nfailed >= VM_FAILED_UNITS_MAX) {
                s->nomitted++;
                return;
        }
        for (size_t i = 0; i < s->nfailed; i++)
                if (strlen(s->failed[i]) == len && memcmp(s->failed[i], name, len) == 0)
                        return;
        s->failed = xreallocarray(s->failed, s->nfailed + 2, sizeof(char *));
        s->failed[s->nfailed++] = xstrndup(name, len);
        s->failed[s->nfailed] = NULL;
}

int vm_boot_state_parse(const char *output, struct vm_boot_state *ret) {
        struct vm_boot_state s = {0};
        bool have_state = false;
        for (const char *line = output; line && *line;) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t)(nl - line) : strlen(line);
                const char *next = nl ? nl + 1 : NULL;
                while (len > 0 && line[len - 1] == '\r')
                        len--;
                size_t ts = strlen(TAG_STATE), tf = strlen(TAG_FAILED);
                if (!have_state && len >= ts && memcmp(line, TAG_STATE, ts) == 0) {
                        const char *w = line + ts;
                        size_t wl = len - ts;
                        bool ok = wl > 0 && wl <= VM_STATE_WORD_MAX;
                        for (size_t i = 0; ok && i < wl; i++)
                                ok = (w[i] >= 'a' && w[i] <= 'z') || w[i] == '-';
                        if (ok) {
                                memcpy(s.state, w, wl);
                                s.state[wl] = 0;
                                have_state = true;
                        }
                } else if (len >= tf && memcmp(line, TAG_FAILED, tf) == 0) {
                        const char *p = line + tf, *end = line + len;
                        /* systemctl may start the line with a status bullet:
                         * "●" (U+25CF) or "*" (without UTF-8), then a space. */
                        if (end - p >= 3 && memcmp(p, "\xe2\x97\x8f", 3) == 0)
                                p += 3;
                        else if (p < end && *p == '*')
                                p++;
                        while (p < end && *p == ' ')
                                p++;
                        const char *u = p;
                        while (p < end && unit_char((unsigned char)*p))
                                p++;
                        size_t ul = (size_t)(p - u);
                        /* a name, a '.' and a type, then a space or the end */
                        if (ul > 0 && ul <= VM_UNIT_NAME_MAX && (p == end || *p == ' ') &&
                            memchr(u, '.', ul) && u[0] != '.' && u[ul - 1] != '.')
                                add_failed(&s, u, ul);
                }
                line = next;
        }
        if (!have_state) {
                vm_boot_state_done(&s);
                return -EBADMSG;
        }
        *ret = s;
        return 0;
}

void vm_boot_state_done(struct vm_boot_state *s) {
        for (size_t i = 0; i < s->nfailed; i++)
                free(s->failed[i]);
        free(s->failed);
        *s = (struct vm_boot_state){0};
}

int vm_boot_state(struct vm *vm, unsigned wait_s, struct vm_boot_state *ret) {
        if (!vm->ready)
                return vm_fail(vm, -ENOTCONN, "the VM is not ready");
        if (wait_s == 0) {
                /* What is left of the readiness deadline (a slow host's boot
                 * may still be busy), and never less than the settle time. */
                unsigned timeout_s = vm->o.timeout_s ? vm->o.timeout_s
                                     : vm->info.accel == VM_ACCEL_KVM ? 180 : 600;
                uint64_t end = vm->start_ms + (uint64_t)timeout_s * 1000, now = now_ms();
                uint64_t left_s = end > now ? (end - now) / 1000 : 0;
                wait_s = left_s > VM_SETTLE_TIMEOUT_S ? (unsigned)left_s : VM_SETTLE_TIMEOUT_S;
        }
        /* No systemctl (not a systemd guest): state "none". A wait cut off by
         * timeout(1) prints nothing: ask once more without waiting. */
        _cleanup_free_ char *cmd = xasprintf(
                "export LC_ALL=C SYSTEMD_COLORS=0 PATH=/usr/sbin:/usr/bin:/sbin:/bin; "
                "if ! command -v systemctl >/dev/null 2>&1; then echo '" TAG_STATE "none'; exit 0; fi; "
                "s=$(timeout %u systemctl is-system-running --wait 2>/dev/null); "
                "[ -n \"$s\" ] || s=$(systemctl is-system-running 2>/dev/null); "
                "echo \"" TAG_STATE "${s:-unknown}\"; "
                "systemctl list-units --failed --plain --no-legend --no-pager --full 2>/dev/null | "
                "sed 's/^/" TAG_FAILED "/'",
                wait_s);
        _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
        int status = -1;
        unsigned saved = vm->o.exec_timeout_s;
        unsigned bound = wait_s + SETTLE_SLACK_S;
        if (!saved || saved > bound)
                vm->o.exec_timeout_s = bound;
        int r = vm_exec(vm, cmd, NULL, 0, &out, &status);
        vm->o.exec_timeout_s = saved;
        if (r < 0)
                return r == -ETIMEDOUT ? vm_fail(vm, r, "systemd's state was not known within %u s", bound) : r;
        r = vm_boot_state_parse(strbuf_str(&out), ret);
        if (r < 0)
                return vm_fail(vm, r, "cannot read systemd's state in the guest (exit status %d)", status);
        return 0;
}
