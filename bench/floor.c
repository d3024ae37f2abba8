/* The least an unprivileged launcher can do, for the start-up benchmark's
 * floor: a user and mount namespace with one uid and gid mapped, the image
 * bound on itself, /dev, /proc and /sys bound in, pivot_root(2) into it,
 * the host's tree detached, and the command executed. No options, no
 * environment rules, no /etc/passwd, no read-only remounts, no checks
 * beyond failing: not a tool, a measure of what the kernel and the C
 * library cost on this machine.
 *
 * usage: floor IMAGE COMMAND [ARG...]    (IMAGE an absolute path) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

static void die(const char *what) {
    perror(what);
    exit(31);
}

static void put(const char *file, const char *text) {
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) die(file);
    close(fd);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: floor IMAGE COMMAND [ARG...]\n");
        return 31;
    }
    const char *img = argv[1];
    char map[64];
    unsigned uid = getuid(), gid = getgid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) die("unshare");
    put("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "%u %u 1\n", uid, uid);
    put("/proc/self/uid_map", map);
    snprintf(map, sizeof map, "%u %u 1\n", gid, gid);
    put("/proc/self/gid_map", map);
    if (mount(img, img, NULL, MS_BIND | MS_REC, NULL) != 0) die("bind image");
    static const char *const binds[] = {"/dev", "/proc", "/sys"};
    for (int i = 0; i < 3; i++) {
        char dst[4096];
        snprintf(dst, sizeof dst, "%s%s", img, binds[i]);
        if (mount(binds[i], dst, NULL, MS_BIND | MS_REC, NULL) != 0) die(dst);
    }
    if (chdir(img) != 0) die("chdir");
    if (syscall(SYS_pivot_root, ".", ".") != 0) die("pivot_root");
    if (umount2(".", MNT_DETACH) != 0) die("umount2");
    if (chdir("/") != 0) die("chdir /");
    execv(argv[2], argv + 2);
    perror(argv[2]);
    return 49;
}
