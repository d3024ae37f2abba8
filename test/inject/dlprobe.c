/* Load a shared library by name as a program would (dlopen(3) through the
   dynamic linker's search: its cache, then the system directories), call a
   function `int NAME(void)` from it and print what it returns.
   usage: dlprobe LIBRARY FUNCTION; exit 0 on success, 2 if the library
   can't be loaded, 3 if it lacks the function. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: dlprobe LIBRARY FUNCTION\n");
        return 1;
    }
    void *h = dlopen(argv[1], RTLD_NOW);
    if (h == NULL) {
        fprintf(stderr, "dlprobe: can't load %s: %s\n", argv[1], dlerror());
        return 2;
    }
    int (*fn)(void) = (int (*)(void))dlsym(h, argv[2]);
    if (fn == NULL) {
        fprintf(stderr, "dlprobe: %s has no %s\n", argv[1], argv[2]);
        return 3;
    }
    printf("%d\n", fn());
    return 0;
}
