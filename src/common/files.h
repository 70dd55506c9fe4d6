/* Outputs are written as "<path>.tmp.<pid>" and renamed when complete
 * (util.h); a killed run leaves its temporary behind, which the next
 * rtr_tmp_path of the same output removes. Internal. */
#ifndef RTR_FILES_H
#define RTR_FILES_H

/* Remove "<path>.tmp.<pid>" files or directories beside path whose writer
 * (pid) is no longer alive: the temporaries of this output left by killed
 * runs. A live writer's (this run's included) and every other file are
 * left alone. (A corpus on a filesystem shared between machines could hold
 * a live writer's file whose pid means nothing here: run one writer at a
 * time per output there.) */
void rtr_remove_stale_tmp(const char *path);

#endif
