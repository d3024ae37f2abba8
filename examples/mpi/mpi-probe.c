/* mpi-probe: a small MPI program that checks what a container launcher
   must get right for MPI jobs, and says what it saw.

   Every rank prints one line:

     mpi-probe: rank=R size=S host=HOST userns=user:[INODE] allreduce=ok pingpong=ok

   userns is the rank's user namespace (readlink /proc/self/ns/user): ranks
   that share a container show the same one. The checks:

   - allreduce: MPI_Allreduce of rank+1 over all ranks must give S*(S+1)/2.
   - pingpong: ranks 0 and 1 exchange a 1 MiB message several times, each
     time with a different byte pattern, and check every byte on both sides.
     Messages this large take Open MPI's single-copy path between ranks on
     one node (cross-memory attach, "CMA", when it is chosen), which fails
     when the ranks are in different user namespaces.

   Any mismatch is reported on stderr and the job aborts with status 1.

   Build: mpicc -O2 -o mpi-probe mpi-probe.c */

#define _POSIX_C_SOURCE 200809L  /* gethostname, readlink under -std=c11 */

#include <mpi.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MSG_BYTES (1024 * 1024)
#define ROUND_TRIPS 4

static int rank = -1;

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "mpi-probe: rank %d: ", rank);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  exit(1);
}

/* MPI calls return MPI_SUCCESS or (with a non-fatal error handler) a code. */
static void check(int rc, const char *call) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (rc == MPI_SUCCESS) return;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", rc);
  fprintf(stderr, "mpi-probe: rank %d: %s failed: %s\n", rank, call, msg);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  exit(1);
}

/* Byte I of the message with pattern SEED: depends on all of I's bytes, so
   that a block copied to the wrong offset does not match. */
static unsigned char pattern(size_t i, unsigned seed) {
  uint32_t x = (uint32_t)i * 2654435761u + seed * 40503u;
  x ^= x >> 13;
  return (unsigned char)(x ^ (x >> 7) ^ (i >> 12));
}

static void fill(unsigned char *buf, unsigned seed) {
  for (size_t i = 0; i < MSG_BYTES; i++) buf[i] = pattern(i, seed);
}

static void verify(const unsigned char *buf, unsigned seed, const char *side) {
  for (size_t i = 0; i < MSG_BYTES; i++)
    if (buf[i] != pattern(i, seed))
      fail("ping-pong: %s: byte %zu is 0x%02x, expected 0x%02x (pattern %u)", side, i, buf[i],
           pattern(i, seed), seed);
}

int main(int argc, char **argv) {
  int size = 0, sum = 0, one, expected;
  char host[256] = "?", userns[128] = "?";
  const char *pingpong = "skipped";
  ssize_t n;

  check(MPI_Init(&argc, &argv), "MPI_Init");
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size), "MPI_Comm_size");
  gethostname(host, sizeof host - 1);
  n = readlink("/proc/self/ns/user", userns, sizeof userns - 1);
  if (n >= 0) userns[n] = '\0';
  else snprintf(userns, sizeof userns, "unknown");

  one = rank + 1;
  check(MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  expected = size * (size + 1) / 2;
  if (sum != expected)
    fail("allreduce: the sum of rank+1 is %d, expected %d (size %d)", sum, expected, size);

  if (size >= 2 && rank < 2) {
    unsigned char *buf = malloc(MSG_BYTES);
    if (!buf) fail("ping-pong: can't allocate %d bytes", MSG_BYTES);
    for (unsigned t = 0; t < ROUND_TRIPS; t++) {
      unsigned there = 2 * t + 1, back = 2 * t + 2;
      if (rank == 0) {
        fill(buf, there);
        check(MPI_Send(buf, MSG_BYTES, MPI_BYTE, 1, (int)t, MPI_COMM_WORLD), "MPI_Send");
        memset(buf, 0, MSG_BYTES);
        check(MPI_Recv(buf, MSG_BYTES, MPI_BYTE, 1, (int)t, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
              "MPI_Recv");
        verify(buf, back, "rank 0 received from rank 1");
      } else {
        memset(buf, 0, MSG_BYTES);
        check(MPI_Recv(buf, MSG_BYTES, MPI_BYTE, 0, (int)t, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
              "MPI_Recv");
        verify(buf, there, "rank 1 received from rank 0");
        fill(buf, back);
        check(MPI_Send(buf, MSG_BYTES, MPI_BYTE, 0, (int)t, MPI_COMM_WORLD), "MPI_Send");
      }
    }
    free(buf);
    pingpong = "ok";
  }

  printf("mpi-probe: rank=%d size=%d host=%s userns=%s allreduce=ok pingpong=%s\n", rank, size,
         host, userns, pingpong);
  fflush(stdout);
  check(MPI_Finalize(), "MPI_Finalize");
  return 0;
}
