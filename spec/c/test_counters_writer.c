/* The counters' writer thread (counters/counters_writer.h): jobs run in
 * order off the loop's thread and are reported on the loop; stopping joins
 * an idle thread and is bounded when a job does not end. */
#include "ctest.h"
#include "ctest_loop.h"
#include "counters/counters_writer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

typedef struct {
    op_writer_job_t job; /* first */
    int n;
    int ran_off_loop;
} job_t;

static pthread_t loop_thread;
static int ran[8], nran, reported[8], nreported, want, got_all;
static atomic_int hold;   /* a job's work waits while it is set */
static atomic_int in_work;

static void work(op_writer_job_t *j)
{
    job_t *job = (job_t *)j;
    job->ran_off_loop = !pthread_equal(pthread_self(), loop_thread);
    atomic_store(&in_work, 1);
    while (atomic_load(&hold)) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    ran[nran++] = job->n; /* one thread: no race with itself */
}

static void done(op_writer_job_t *j)
{
    job_t *job = (job_t *)j;
    CHECK(pthread_equal(pthread_self(), loop_thread));
    CHECK(job->ran_off_loop);
    reported[nreported++] = job->n;
    got_all = nreported >= want;
}

static double now_s(void)
{
    return (double)uv_hrtime() / 1e9;
}

CTEST(jobs_run_in_order_off_the_loop_and_are_reported_on_it)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    loop_thread = pthread_self();
    op_writer_t *w = op_writer_start(&loop, work, done);
    CHECK(w != NULL);
    job_t jobs[5];
    for (int i = 0; i < 5; i++) {
        jobs[i].n = i + 1;
        op_writer_post(w, &jobs[i].job);
    }
    /* the writer keeps the loop alive until every job is reported, as
     * uv_queue_work would */
    CHECK(uv_loop_alive(&loop));
    want = 5;
    CHECK(ctest_run_until(&loop, &got_all, 10));
    CHECK(!uv_loop_alive(&loop));
    CHECK_INT(nreported, 5);
    for (int i = 0; i < 5; i++) {
        CHECK_INT(ran[i], i + 1);
        CHECK_INT(reported[i], i + 1);
    }
    /* and later posts still run (the thread slept in between) */
    job_t more = {.n = 6};
    op_writer_post(w, &more.job);
    want = 6;
    got_all = 0;
    CHECK(ctest_run_until(&loop, &got_all, 10));
    CHECK_INT(nreported, 6);
    CHECK_INT(op_writer_stop(w, 1), 0);
    uv_run(&loop, UV_RUN_DEFAULT); /* the close frees the writer */
    CHECK_INT(uv_loop_close(&loop), 0);
}

CTEST(stopping_reports_what_ended_and_joins_the_thread)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    loop_thread = pthread_self();
    op_writer_t *w = op_writer_start(&loop, work, done);
    job_t j = {.n = 1};
    op_writer_post(w, &j.job);
    CHECK_INT(op_writer_wait(w, 5), 1); /* its work ended; not yet reported */
    CHECK_INT(nran, 1);
    CHECK_INT(nreported, 0);
    CHECK_INT(op_writer_stop(w, 1), 0);
    CHECK_INT(nreported, 1); /* stop reported it */
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0); /* no handle left: the poll is closed */
}

/* reachable (a global the compiler keeps): the writer is left to its thread */
op_writer_t *test_left_writer;

CTEST(a_job_that_does_not_end_bounds_the_wait_and_the_stop)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    loop_thread = pthread_self();
    op_writer_t *w = op_writer_start(&loop, work, done);
    test_left_writer = w;
    static job_t j = {.n = 1};
    atomic_store(&hold, 1);
    op_writer_post(w, &j.job);
    while (!atomic_load(&in_work)) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    CHECK(uv_loop_alive(&loop));
    op_writer_unhold(w); /* given up on: it must not hold the loop */
    CHECK(!uv_loop_alive(&loop));
    double t0 = now_s();
    CHECK_INT(op_writer_wait(w, 0.2), 0);
    double waited = now_s() - t0;
    CHECK(waited >= 0.19 && waited < 5);
    t0 = now_s();
    CHECK_INT(op_writer_stop(w, 0.2), -1); /* left to its thread */
    waited = now_s() - t0;
    CHECK(waited >= 0.19 && waited < 5);
    uv_run(&loop, UV_RUN_DEFAULT); /* the poll closes; the loop does not wait for the job */
    CHECK_INT(uv_loop_close(&loop), 0);
    atomic_store(&hold, 0); /* the disk lets go: the thread ends without reporting */
    for (int i = 0; i < 2000 && nran == 0; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    CHECK_INT(nran, 1);
    CHECK_INT(nreported, 0);
}

int main(int argc, char **argv)
{
    return ctest_main(argc, argv);
}
