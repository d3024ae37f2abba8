/* A library that needs a symbol version no real C library has
   (GLIBC_2.99): linked against stub-libc.c, it is what a host library
   built for a newer glibc than the image's looks like to the linker. */
extern int chute_future_call(void);
int fake_value(void) { return chute_future_call(); }
