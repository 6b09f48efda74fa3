/* exec_floor.c: the start-up floor: a program whose main() only prints the wall clock (same libc,
 * same linking as the extension's build), for startup_bench's "floor" column. */
#include <stdio.h>
#include <sys/time.h>

int main(void)
{
    struct timeval t;
    gettimeofday(&t, NULL);
    fprintf(stderr, "{\"main_unix_us\":%lld}\n", (long long)t.tv_sec * 1000000 + t.tv_usec);
    return 0;
}
