/* The counters' writer thread (counters_writer.h). */
#include "counters/counters_writer.h"

#include "core/mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct op_writer {
    uv_loop_t *loop;
    uv_poll_t poll;
    int efd;
    uv_thread_t thread;
    void (*work)(op_writer_job_t *job);
    void (*done)(op_writer_job_t *job);
    /* What the two threads share, under lock. */
    uv_mutex_t lock;
    /* The thread's wake-up: posted once per sleep (sleeping set).  Not a
     * condition variable: glibc's pthread_cond_wait takes the mutex back
     * marked contended, so the unlock after every wake-up costs a futex
     * call even when nobody waits for it. */
    uv_sem_t wake;
    uv_cond_t ended; /* stop's and wait's: the thread has nothing under way */
    op_writer_job_t *todo, **todo_tail;
    op_writer_job_t *reported, **reported_tail; /* ended, for the loop */
    int sleeping;    /* the thread waits on wake (or is about to): post it once */
    int told;        /* the eventfd was written since the loop last took reported */
    int busy;        /* a job's work runs */
    int stopping;
    /* The loop's alone. */
    size_t outstanding; /* posted and not yet reported */
};

static void thread_main(void *arg)
{
    op_writer_t *w = arg;
    uv_mutex_lock(&w->lock);
    for (;;) {
        while (w->todo == NULL && !w->stopping) {
            w->sleeping = 1; /* whoever clears it posts wake */
            uv_mutex_unlock(&w->lock);
            uv_sem_wait(&w->wake);
            uv_mutex_lock(&w->lock);
        }
        if (w->stopping)
            break; /* stop waited for what was under way; nothing is posted after */
        op_writer_job_t *job = w->todo;
        w->todo = job->next;
        if (w->todo == NULL)
            w->todo_tail = &w->todo;
        w->busy = 1;
        uv_mutex_unlock(&w->lock);

        w->work(job);

        uv_mutex_lock(&w->lock);
        w->busy = 0;
        job->next = NULL;
        *w->reported_tail = job;
        w->reported_tail = &job->next;
        int tell = !w->told && !w->stopping;
        w->told = 1;
        if (w->todo == NULL)
            uv_cond_signal(&w->ended);
        if (tell) {
            /* written outside the lock: the loop, woken by it, takes the lock
             * at once; the eventfd lives as long as this thread */
            uv_mutex_unlock(&w->lock);
            uint64_t one = 1;
            while (write(w->efd, &one, sizeof one) < 0 && errno == EINTR)
                ;
            uv_mutex_lock(&w->lock);
        }
    }
    w->busy = 0;
    uv_cond_signal(&w->ended);
    uv_mutex_unlock(&w->lock);
}

/* On the loop: the jobs that ended, reported in order. */
static void report(op_writer_t *w)
{
    uv_mutex_lock(&w->lock);
    op_writer_job_t *list = w->reported;
    w->reported = NULL;
    w->reported_tail = &w->reported;
    w->told = 0;
    uv_mutex_unlock(&w->lock);
    while (list != NULL) {
        op_writer_job_t *job = list;
        list = job->next;
        job->next = NULL;
        if (--w->outstanding == 0)
            uv_unref((uv_handle_t *)&w->poll);
        w->done(job);
    }
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    op_writer_t *w = p->data;
    uint64_t n;
    (void)!read(w->efd, &n, sizeof n); /* resets it (EAGAIN: already read) */
    report(w);
}

op_writer_t *op_writer_start(uv_loop_t *loop, void (*work)(op_writer_job_t *job),
                             void (*done)(op_writer_job_t *job))
{
    op_writer_t *w = op_calloc(1, sizeof *w);
    w->loop = loop;
    w->work = work;
    w->done = done;
    w->todo_tail = &w->todo;
    w->reported_tail = &w->reported;
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        free(w);
        return NULL;
    }
    uv_mutex_init(&w->lock);
    uv_sem_init(&w->wake, 0);
    uv_cond_init(&w->ended);
    if (uv_thread_create(&w->thread, thread_main, w) != 0) {
        uv_mutex_destroy(&w->lock);
        uv_sem_destroy(&w->wake);
        uv_cond_destroy(&w->ended);
        close(w->efd);
        free(w);
        return NULL;
    }
    uv_poll_init(loop, &w->poll, w->efd);
    w->poll.data = w;
    uv_poll_start(&w->poll, UV_READABLE, on_readable);
    uv_unref((uv_handle_t *)&w->poll); /* held only while jobs are out */
    return w;
}

void op_writer_post(op_writer_t *w, op_writer_job_t *job)
{
    job->next = NULL;
    w->outstanding++;
    uv_ref((uv_handle_t *)&w->poll);
    uv_mutex_lock(&w->lock);
    *w->todo_tail = job;
    w->todo_tail = &job->next;
    int wake = w->sleeping;
    w->sleeping = 0;
    uv_mutex_unlock(&w->lock);
    /* After the unlock: woken under the lock, the thread would wake only
     * to block on it. */
    if (wake)
        uv_sem_post(&w->wake);
}

void op_writer_unhold(op_writer_t *w)
{
    uv_unref((uv_handle_t *)&w->poll);
}

/* Under lock: waits until nothing is under way nor queued, or `until`
 * (uv_hrtime) passes. */
static int drained(op_writer_t *w, uint64_t until)
{
    while ((w->busy || w->todo != NULL) && uv_hrtime() < until)
        (void)uv_cond_timedwait(&w->ended, &w->lock, until - uv_hrtime());
    return !w->busy && w->todo == NULL;
}

int op_writer_wait(op_writer_t *w, double seconds)
{
    uint64_t until = uv_hrtime() + (uint64_t)(seconds * 1e9);
    uv_mutex_lock(&w->lock);
    int ok = drained(w, until);
    uv_mutex_unlock(&w->lock);
    return ok;
}

static void free_writer(uv_handle_t *h)
{
    op_writer_t *w = h->data;
    uv_mutex_destroy(&w->lock);
    uv_sem_destroy(&w->wake);
    uv_cond_destroy(&w->ended);
    close(w->efd);
    free(w);
}

static void leave(uv_handle_t *h)
{
    (void)h; /* the thread still uses the writer: it stays */
}

int op_writer_stop(op_writer_t *w, double seconds)
{
    uint64_t until = uv_hrtime() + (uint64_t)(seconds * 1e9);
    uv_mutex_lock(&w->lock);
    int ok = drained(w, until);
    w->stopping = 1;
    int wake = w->sleeping;
    w->sleeping = 0;
    uv_mutex_unlock(&w->lock);
    if (wake)
        uv_sem_post(&w->wake);
    uv_poll_stop(&w->poll);
    if (!ok) {
        (void)pthread_detach(w->thread); /* uv_thread_t is a pthread_t */
        uv_close((uv_handle_t *)&w->poll, leave);
        return -1;
    }
    uv_thread_join(&w->thread);
    report(w); /* what ended and was not yet reported */
    uv_close((uv_handle_t *)&w->poll, free_writer);
    return 0;
}
