/* Postfix action texts as milter replies. */
#include "ctest.h"
#include "proto/milter_verdict.h"
#include "proto/proto_milter.h"

static const struct {
    const char *action;
    char reply;
    int code;
    const char *status, *text, *quarantine, *header, *ignored;
    int rc;
} cases[] = {
    {"DUNNO", 'c', 0, NULL, NULL, NULL, NULL, NULL, 0},
    {"dunno", 'c', 0, NULL, NULL, NULL, NULL, NULL, 0},
    {"WARN looked odd", 'c', 0, NULL, NULL, NULL, NULL, NULL, 0},
    {"OK", 'a', 0, NULL, NULL, NULL, NULL, NULL, 0},
    {"REJECT 5.7.1 header From is not yours", 'y', 550, "5.7.1", "header From is not yours", NULL, NULL, NULL, 0},
    {"REJECT", 'y', 550, "5.7.1", "", NULL, NULL, NULL, 0},
    {"REJECT no status here", 'y', 550, "5.7.1", "no status here", NULL, NULL, NULL, 0},
    {"DEFER 4.4.3 try later", 'y', 451, "4.4.3", "try later", NULL, NULL, NULL, 0},
    {"DEFER_IF_PERMIT 4.7.1 x", 'y', 451, "4.7.1", "x", NULL, NULL, NULL, 0},
    {"451 4.3.5 policy service unavailable", 'y', 451, "4.3.5", "policy service unavailable", NULL, NULL, NULL, 0},
    {"554 5.7.1 go away", 'y', 554, "5.7.1", "go away", NULL, NULL, NULL, 0},
    {"550 4.7.1 wrong class", 'y', 550, "5.7.1", "4.7.1 wrong class", NULL, NULL, NULL, 0},
    {"DISCARD silently", 'd', 0, NULL, NULL, NULL, NULL, NULL, 0},
    {"HOLD PO8: check this", 'c', 0, NULL, NULL, "PO8: check this", NULL, NULL, 0},
    {"PREPEND X-Outpost: checked", 'c', 0, NULL, NULL, NULL, "X-Outpost: checked", NULL, 0},
    {"REDIRECT a@b.example", 'c', 0, NULL, NULL, NULL, NULL, "REDIRECT", 0},
    {"FILTER smtp:[127.0.0.1]:10025", 'c', 0, NULL, NULL, NULL, NULL, "FILTER", 0},
    {"FROBNICATE", 'y', 451, "4.3.5", "policy answer is not a valid action", NULL, NULL, NULL, -1},
};

CTEST(verdicts)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        op_milter_verdict_t v;
        int rc = op_milter_verdict(cases[i].action, strlen(cases[i].action), &v);
        if (rc != cases[i].rc || v.reply != cases[i].reply)
            fprintf(stderr, "  case %s\n", cases[i].action);
        CHECK_INT(rc, cases[i].rc);
        CHECK_INT(v.reply, cases[i].reply);
        if (cases[i].reply == 'y') {
            CHECK_INT(v.code, cases[i].code);
            CHECK_STR(v.status, cases[i].status);
            CHECK_MEM(v.text, v.text_len, cases[i].text);
        }
        if (cases[i].quarantine)
            CHECK(v.quarantine && v.quarantine_len == strlen(cases[i].quarantine) &&
                  memcmp(v.quarantine, cases[i].quarantine, v.quarantine_len) == 0);
        else
            CHECK(v.quarantine == NULL);
        if (cases[i].header)
            CHECK(v.header && v.header_len == strlen(cases[i].header) &&
                  memcmp(v.header, cases[i].header, v.header_len) == 0);
        else
            CHECK(v.header == NULL);
        CHECK_STR(v.ignored, cases[i].ignored);
    }
}

int main(int argc, char **argv) { return ctest_main(argc, argv); }
