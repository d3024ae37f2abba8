/* spawn-bench: time commands started from here, interleaved round-robin so
   that drift of the machine affects each alike; print each one's median.

   usage: spawn-bench RUNS WARMUP NAME=COMMAND... -- one argument per command;
   the command is split on spaces (no quoting: benchmark commands need none);
   leading VAR=VALUE words are added to that command's environment.
   Output: one line per command, "NAME MEDIAN_MS MIN_MS MAX_MS FAILURES". */

#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct cmd {
  char *name;
  char **argv;
  char **envp;
  double *ms;
  int failures;
};

static char **split(char *s) {
  size_t n = 0, cap = 8;
  char **v = malloc(cap * sizeof *v);
  for (char *tok = strtok(s, " "); tok; tok = strtok(NULL, " ")) {
    if (n + 2 > cap) v = realloc(v, (cap *= 2) * sizeof *v);
    v[n++] = tok;
  }
  v[n] = NULL;
  return v;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int run_once(struct cmd *c, double *ms) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  double t0 = now_ms();
  pid_t pid;
  int rc = posix_spawn(&pid, c->argv[0], &fa, NULL, c->argv, c->envp);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int st;
  if (waitpid(pid, &st, 0) < 0) return -1;
  *ms = now_ms() - t0;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s RUNS WARMUP NAME=COMMAND...\n", argv[0]);
    return 2;
  }
  int runs = atoi(argv[1]), warmup = atoi(argv[2]);
  int n = argc - 3;
  struct cmd *cmds = calloc(n, sizeof *cmds);
  for (int i = 0; i < n; i++) {
    char *eq = strchr(argv[i + 3], '=');
    if (!eq) {
      fprintf(stderr, "spawn-bench: expected NAME=COMMAND: %s\n", argv[i + 3]);
      return 2;
    }
    *eq = '\0';
    cmds[i].name = argv[i + 3];
    char **words = split(eq + 1);
    size_t nenv = 0, nhost = 0;
    while (words[nenv] && words[nenv][0] != '/' && strchr(words[nenv], '=')) nenv++;
    while (environ[nhost]) nhost++;
    cmds[i].envp = calloc(nenv + nhost + 1, sizeof(char *));
    for (size_t k = 0; k < nenv; k++) cmds[i].envp[k] = words[k];
    for (size_t k = 0; k < nhost; k++) cmds[i].envp[nenv + k] = environ[k];
    cmds[i].argv = words + nenv;
    cmds[i].ms = calloc(runs, sizeof(double));
  }
  double scratch;
  for (int r = 0; r < warmup; r++)
    for (int i = 0; i < n; i++) run_once(&cmds[i], &scratch);
  for (int r = 0; r < runs; r++)
    for (int i = 0; i < n; i++)
      if (run_once(&cmds[i], &cmds[i].ms[r]) != 0) cmds[i].failures++;
  for (int i = 0; i < n; i++) {
    qsort(cmds[i].ms, runs, sizeof(double), cmp);
    double med = runs % 2 ? cmds[i].ms[runs / 2]
                          : (cmds[i].ms[runs / 2 - 1] + cmds[i].ms[runs / 2]) / 2;
    printf("%s %.4f %.4f %.4f %d\n", cmds[i].name, med, cmds[i].ms[0], cmds[i].ms[runs - 1],
           cmds[i].failures);
  }
  return 0;
}
