/* A stand-in for a host driver or MPI library: one function whose value
   the build chooses (-DVALUE=N), so a test can tell which copy was loaded. */
#ifndef VALUE
#define VALUE 1
#endif
#ifndef FUNCTION
#define FUNCTION fake_value
#endif
int FUNCTION(void) { return VALUE; }
