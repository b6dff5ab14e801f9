#include "lib/names.h"

#include <idn2.h>
#include <stdlib.h>
#include <string.h>

static int is_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 0;
    return 1;
}

/* Letters, digits, '-' and '_' in every label; labels of 1..63 bytes. */
static int valid_ascii_name(const char *s, size_t len)
{
    if (len == 0 || len > OP_NAME_MAX)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
            return 0;
        if (++label > 63)
            return 0;
    }
    return label > 0;
}

int op_name_normalize(const char *in, size_t len, char *out, size_t cap)
{
    if (len > 0 && in[len - 1] == '.')
        len--;
    if (len == 0 || len > 1024 || memchr(in, '\0', len) != NULL || cap < OP_NAME_MAX + 1)
        return -1;
    char buf[1025];
    memcpy(buf, in, len);
    buf[len] = '\0';
    if (is_ascii(buf, len)) {
        for (size_t i = 0; i < len; i++)
            if (buf[i] >= 'A' && buf[i] <= 'Z')
                buf[i] = (char)(buf[i] - 'A' + 'a');
        if (!valid_ascii_name(buf, len))
            return -1;
        memcpy(out, buf, len + 1);
        return 0;
    }
    char *ace = NULL;
    /* NFC input, UTS#46 mapping (which also lower-cases), non-transitional. */
    if (idn2_to_ascii_8z(buf, &ace, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) != IDN2_OK)
        return -1;
    size_t alen = strlen(ace);
    int ok = valid_ascii_name(ace, alen);
    if (ok)
        memcpy(out, ace, alen + 1);
    idn2_free(ace);
    return ok ? 0 : -1;
}
