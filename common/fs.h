/* Small file-system helpers shared by both daemons. */
#ifndef MP_FS_H
#define MP_FS_H

#include <sys/types.h>

/* mkdir -p: creates path and every missing parent with mode (existing
 * ones are left as they are). Returns 0, -ENAMETOOLONG for an empty path
 * or one of PATH_MAX or more, or -errno of the mkdir() that failed. */
int fs_mkdir_parents(const char *path, mode_t mode);

#endif
