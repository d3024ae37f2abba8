/* Ask the CUDA driver (libcuda.so.1, loaded by name as CUDA programs do)
   how many GPUs it sees, and the name of the first: a real driver call, no
   CUDA toolkit needed to build it. Prints "N NAME"; exit 2 if the library
   does not load, 3 if a call fails (with the driver's error number). */
#include <dlfcn.h>
#include <stdio.h>

typedef int (*init_fn)(unsigned);
typedef int (*count_fn)(int *);
typedef int (*get_fn)(int *, int);
typedef int (*name_fn)(char *, int, int);

int main(void) {
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    if (h == NULL) {
        fprintf(stderr, "cuda-count: %s\n", dlerror());
        return 2;
    }
    init_fn init = (init_fn)dlsym(h, "cuInit");
    count_fn count = (count_fn)dlsym(h, "cuDeviceGetCount");
    get_fn get = (get_fn)dlsym(h, "cuDeviceGet");
    name_fn name = (name_fn)dlsym(h, "cuDeviceGetName");
    if (!init || !count || !get || !name) {
        fprintf(stderr, "cuda-count: libcuda.so.1 lacks a driver entry point\n");
        return 3;
    }
    int n = 0, dev = 0, r;
    char buf[256] = "";
    if ((r = init(0)) != 0 || (r = count(&n)) != 0) {
        fprintf(stderr, "cuda-count: driver error %d\n", r);
        return 3;
    }
    if (n > 0 && ((r = get(&dev, 0)) != 0 || (r = name(buf, sizeof buf, dev)) != 0)) {
        fprintf(stderr, "cuda-count: driver error %d\n", r);
        return 3;
    }
    printf("%d %s\n", n, buf);
    return 0;
}
