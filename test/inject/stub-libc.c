/* Link-time stand-in for a future C library (soname libc.so.6, version
   GLIBC_2.99 per stub-libc.map); never loaded at run time. */
int chute_future_call(void) { return 0; }
