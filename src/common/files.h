/* Outputs are written as "<path>.tmp.<host>.<pid>" and renamed when
 * complete (util.h's rtr_tmp_path); a killed run leaves its temporary
 * behind, which the next rtr_tmp_path of the same output on the same
 * machine removes. Internal. */
#ifndef RTR_FILES_H
#define RTR_FILES_H

/* This machine's name as temporaries hold it: letters, digits and '-' (no
 * '.': the pid is what follows the last one), at most 56 bytes. A name
 * that had to change (other characters, or longer than 47) keeps its first
 * 38 characters then '-' and 8 hex digits of a hash of the whole name, so
 * that two hosts (a.b and a_b, long names sharing a prefix) stay apart;
 * "unknown" when the system gives none. */
#define RTR_HOST_MAX 57
void rtr_host_name(char host[RTR_HOST_MAX]);

/* "<path>.tmp.<host>.<pid>" (caller frees; NULL without memory): the name
 * every output is written under, also one that another process (an MPI
 * job's rank 0) chose for several writers. */
char *rtr_tmp_name(const char *path, const char *host, long pid);

/* Remove path's temporaries left by writers that are gone: files or
 * directories "<path>.tmp.<host>.<pid>" whose host is this machine and
 * whose process is gone (none, or a zombie not reaped yet: it writes
 * nothing), and "<path>.tmp.<pid>" (the form before the host was named,
 * taken as this machine's). A pid is asked about on its own machine only:
 * on another it could name a live stranger (the file kept forever) or
 * nothing (a live job's file removed); another host's temporary is left,
 * with a note on stderr. A live writer's (this run's included) and every
 * other file are left alone. A folder is read once for all its outputs and
 * again only when an output is asked about a second time (files.c); not
 * thread-safe: a process's outputs are made on one thread, as HDF5 needs. */
void rtr_remove_stale_tmp(const char *path);

#endif
