/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * The benchmark's floor: built with -DRAMPART_FLOOR (cargo feature
 * `bench-floor` of the rampart crate, never a shipped binary), every hot
 * program returns at once, so a run of `rampart run` measures what the
 * kernel charges for invoking the hooks alone, on the same attachments
 * (scripts/bench.py mode `floor`). Off, FLOOR_RETURN is nothing.
 */
#ifndef RAMPART_FLOOR_H
#define RAMPART_FLOOR_H

#ifdef RAMPART_FLOOR
#define FLOOR_RETURN(v) return (v)
#else
#define FLOOR_RETURN(v) \
	do {            \
	} while (0)
#endif

#endif /* RAMPART_FLOOR_H */
