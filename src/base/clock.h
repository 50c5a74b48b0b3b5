/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clock.h — the one monotonic clock kiln measures durations and deadlines
 * with.
 *
 * now_ms() reads CLOCK_MONOTONIC: it never jumps when the wall clock is set
 * (NTP, a user, a VM resumed), so elapsed times and timeouts computed from
 * two readings are right. Its zero is arbitrary (boot), so a reading means
 * nothing on its own and must never be stored or shown as a date: for
 * timestamps (manifests, history, "created") use the wall clock, time(2)
 * or CLOCK_REALTIME. Costs one vDSO call; never fails; thread-safe.
 */
#pragma once

#include <stdint.h>

/* Milliseconds on the monotonic clock. */
uint64_t now_ms(void);
