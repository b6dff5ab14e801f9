#include "core/watchdog.h"

#include "core/log.h"

#include <errno.h>
#include <lauxlib.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

op_watchdog_state_t op__watchdog;

/* How often the thread looks: the budget is enforced to within this. */
#define TICK_MS 10
/* Exit status when a run cannot be stopped (EX_SOFTWARE). */
#define STUCK_EXIT 70

static pthread_t loop_thread, thread;
static int started;
static atomic_int stopping;
/* The run the watchdog asked to stop (a value of seq). */
static _Atomic uint64_t kill_seq;
/* Filled by the hook on the loop thread, read there after the run. */
static char where[256] = "?", check[64] = "-";
static int described;
static const char *stop_why; /* NULL: the CPU budget */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Where the run is, for the log: the innermost Lua line, and the check
 * the pipeline runs (a local named `check` holding {id = ...}, see
 * lua/lib/outpost/pipeline.lua). */
static void describe(lua_State *L)
{
    lua_Debug ar;
    snprintf(where, sizeof where, "?");
    snprintf(check, sizeof check, "-");
    int have_where = 0, have_check = 0;
    for (int level = 0; level < 64 && lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sl", &ar))
            continue;
        if (!have_where && ar.currentline > 0) {
            snprintf(where, sizeof where, "%s:%d", ar.source[0] == '@' ? ar.source + 1 : ar.short_src,
                     ar.currentline);
            have_where = 1;
        }
        const char *name;
        for (int i = 1; !have_check && (name = lua_getlocal(L, &ar, i)) != NULL; i++) {
            if (strcmp(name, "check") == 0 && lua_type(L, -1) == LUA_TTABLE) {
                lua_pushliteral(L, "id");
                lua_rawget(L, -2);
                if (lua_type(L, -1) == LUA_TSTRING) {
                    snprintf(check, sizeof check, "%s", lua_tostring(L, -1));
                    have_check = 1;
                }
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
        if (have_check)
            break;
    }
}

/* Armed on every instruction until the run ends, so a policy's pcall
 * cannot swallow the stop: the next instruction raises again. */
static void cpu_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    if (!described) {
        described = 1;
        describe(L);
    }
    if (stop_why != NULL)
        lua_pushfstring(L, "%s at %s", stop_why, where);
    else
        lua_pushfstring(L, "CPU budget of %dms exceeded at %s",
                        (int)atomic_load_explicit(&op__watchdog.budget_ms, memory_order_relaxed),
                        where);
    lua_error(L);
}

/* On the loop thread, interrupting the run the watchdog timed. */
static void on_signal(int signum)
{
    (void)signum;
    int saved = errno;
    uint64_t s = atomic_load_explicit(&op__watchdog.seq, memory_order_relaxed);
    if ((s & 1) && s == atomic_load(&kill_seq) && !op__watchdog.hooked) {
        described = 0;
        stop_why = NULL;
        op__watchdog.hooked = 1;
        lua_sethook(atomic_load_explicit(&op__watchdog.L, memory_order_relaxed), cpu_hook,
                    LUA_MASKCOUNT, 1);
    }
    errno = saved;
}

void op_watchdog_stop_run(const char *why)
{
    if (op__watchdog.hooked)
        return;
    described = 0;
    stop_why = why;
    op__watchdog.hooked = 1;
    lua_sethook(atomic_load_explicit(&op__watchdog.L, memory_order_relaxed), cpu_hook,
                LUA_MASKCOUNT, 1);
}

const char *op_watchdog_why(void)
{
    return stop_why;
}

void op__watchdog_unhook(void)
{
    lua_sethook(atomic_load_explicit(&op__watchdog.L, memory_order_relaxed), NULL, 0, 0);
    op__watchdog.hooked = 0;
}

const char *op_watchdog_where(void)
{
    return where;
}

const char *op_watchdog_check(void)
{
    return check;
}

static void *watch(void *arg)
{
    (void)arg;
    uint64_t last = 0, since = 0;
    int asked = 0;
    struct timespec tick = {0, TICK_MS * 1000000L};
    while (!atomic_load(&stopping)) {
        nanosleep(&tick, NULL);
        uint64_t s = atomic_load_explicit(&op__watchdog.seq, memory_order_acquire);
        uint32_t budget = atomic_load_explicit(&op__watchdog.budget_ms, memory_order_relaxed);
        if (!(s & 1) || budget == 0) {
            last = s;
            continue;
        }
        uint64_t now = mono_ms();
        if (s != last) {
            last = s;
            since = now;
            asked = 0;
            continue;
        }
        uint64_t ran = now - since + TICK_MS / 2;
        uint64_t hard = 2u * budget > budget + 1000u ? 2u * budget : budget + 1000u;
        if (!asked && ran >= budget) {
            asked = 1;
            atomic_store(&kill_seq, s);
            pthread_kill(loop_thread, SIGXCPU);
        } else if (asked && ran >= hard) {
            const char *svc = atomic_load_explicit(&op__watchdog.service, memory_order_relaxed);
            op_error("req=%llu service=%s: its Lua has run %llums, past its CPU budget of %ums, "
                    "and cannot be stopped (a compiled loop or one long C call): exiting with "
                    "status %d so that the supervisor starts outpostd again; counters lose "
                    "nothing",
                    (unsigned long long)atomic_load_explicit(&op__watchdog.serial, memory_order_relaxed),
                    svc ? svc : "?", (unsigned long long)ran, budget, STUCK_EXIT);
            _exit(STUCK_EXIT);
        }
    }
    return NULL;
}

int op_watchdog_start(void)
{
    if (started)
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGXCPU, &sa, NULL) != 0)
        return -1;
    loop_thread = pthread_self();
    /* The thread takes no signal: SIGHUP and SIGTERM go to the loop. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    atomic_store(&stopping, 0);
    int rc = pthread_create(&thread, NULL, watch, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -1;
    started = 1;
    return 0;
}

void op_watchdog_stop(void)
{
    if (!started)
        return;
    atomic_store(&stopping, 1);
    pthread_join(thread, NULL);
    started = 0;
}
