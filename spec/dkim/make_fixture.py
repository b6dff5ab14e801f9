#!/usr/bin/python3
"""Test keys and DKIM-signed messages for the verifier's tests (MO8).

    /usr/bin/python3 spec/dkim/make_fixture.py OUTDIR

Keys are new on every run (Debian's dknewkey: RSA 2048, Ed25519); messages
are signed by Debian's python3-dkim (dkimpy), never by outpost's code.
Writes into OUTDIR:
  keys.txt      NAME<TAB>TXT RECORD, one key record a line (what the DNS zone
                and the C tests publish)
  <case>.eml    a message, CRLF line ends
  verdicts.txt  CASE<TAB>dkimpy's verdict per signature, top first
                ("pass"/"fail"), for the interoperability check
  zones.conf    the key records as unbound local-data (spec/harness/svc_dns.sh)
Domains: inst.test (the institution's signing domain), foreign.test;
sel._domainkey.slow.inst.test is asked of a server that never answers.
"""
import os
import subprocess
import sys

import dkim

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

def newkey(name, ktype):
    subprocess.run(["/usr/bin/dknewkey", "--ktype", ktype, name], cwd=out,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(out, name + ".key"), "rb") as f:
        priv = f.read()
    with open(os.path.join(out, name + ".dns")) as f:
        rec = f.read().strip()
    return priv, rec

rsa, rsa_rec = newkey("rsa", "rsa")
ed, ed_rec = newkey("ed", "ed25519")
frsa, frsa_rec = newkey("frsa", "rsa")
_, other_rec = newkey("other", "rsa")
pubonly = lambda rec: rec.split("p=")[1]

records = {
    "rsa2026._domainkey.inst.test": rsa_rec,
    "ed2026._domainkey.inst.test": ed_rec,
    "sel._domainkey.foreign.test": frsa_rec,
    # the same RSA key with flags: t=y (testing), s=email, s= of another service
    "testing._domainkey.inst.test": "v=DKIM1; k=rsa; t=y; p=" + pubonly(rsa_rec),
    "semail._domainkey.inst.test": "v=DKIM1; k=rsa; s=email; p=" + pubonly(rsa_rec),
    "sother._domainkey.inst.test": "v=DKIM1; k=rsa; s=tlsrpt; p=" + pubonly(rsa_rec),
    # revoked: an empty p=
    "revoked._domainkey.inst.test": "v=DKIM1; k=rsa; p=",
    # a key that is not the signer's
    "wrongkey._domainkey.inst.test": other_rec,
    # a record that is no key at all
    "garbage._domainkey.inst.test": "v=DKIM1; k=rsa; p=!!!notbase64",
}
with open(os.path.join(out, "keys.txt"), "w") as f:
    for name, rec in records.items():
        f.write(name + "\t" + rec + "\n")

def txt_strings(rec):
    # TXT character-strings hold at most 255 bytes each
    return " ".join('"%s"' % rec[i:i + 255] for i in range(0, len(rec), 255))

with open(os.path.join(out, "zones.conf"), "w") as f:
    for name, rec in records.items():
        f.write("local-data: '%s. 300 IN TXT %s'\n" % (name, txt_strings(rec)))

BODY = b"".join(b"Line %d of the test body, some text to hash.\r\n" % i for i in range(40))

def message(frm=b"alice@inst.test", body=BODY, subject=b"MO8 test"):
    return (b"From: Alice <" + frm + b">\r\n"
            b"To: bob@example.net\r\n"
            b"Subject: " + subject + b"\r\n"
            b"Date: Mon, 07 Dec 2026 12:00:00 +0000\r\n"
            b"Message-ID: <mo8-" + subject.replace(b" ", b"-") + b"@inst.test>\r\n"
            b"\r\n" + body)

def sign(msg, sel, dom, key, alg=b"rsa-sha256", canon=(b"relaxed", b"simple"), length=False):
    sig = dkim.sign(msg, sel, dom, key, signature_algorithm=alg, canonicalize=canon,
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
                    length=length)
    return sig + msg

# t= and x=: dkimpy writes t= from time.time() and has no x= of its own;
# these cases sign at another clock and add x= to the tag list dkimpy
# signs (its gen_header), so the signature is still entirely dkimpy's.
import time as _time
_real_time = dkim.time.time
_gen_header = dkim.DKIM.gen_header

def sign_at(msg, t, x=None, **kw):
    def gen_header(self, fields, *args, **kwargs):
        if x is not None and not any(f[0] == b"x" for f in fields):
            fields.insert(len(fields) - 3, (b"x", str(int(x)).encode()))
        return _gen_header(self, fields, *args, **kwargs)
    dkim.time.time = lambda: t
    dkim.DKIM.gen_header = gen_header
    try:
        return sign(msg, b"rsa2026", b"inst.test", rsa, **kw)
    finally:
        dkim.time.time = _real_time
        dkim.DKIM.gen_header = _gen_header

now = _time.time()
cases = {}
cases["expires_later"] = sign_at(message(subject=b"x later"), now - 60, now + 86400)
cases["expired"] = sign_at(message(subject=b"x past"), now - 2 * 86400, now - 86400)
cases["future_t"] = sign_at(message(subject=b"t future"), now + 86400)
cases["rsa_relaxed"] = sign(message(), b"rsa2026", b"inst.test", rsa)
cases["rsa_simple"] = sign(message(subject=b"simple"), b"rsa2026", b"inst.test", rsa,
                           canon=(b"simple", b"simple"))
cases["rsa_relaxed_relaxed"] = sign(message(subject=b"rr"), b"rsa2026", b"inst.test", rsa,
                                    canon=(b"relaxed", b"relaxed"))
cases["ed25519"] = sign(message(subject=b"ed"), b"ed2026", b"inst.test", ed,
                        alg=b"ed25519-sha256", canon=(b"relaxed", b"relaxed"))
good = sign(message(subject=b"altered"), b"rsa2026", b"inst.test", rsa)
cases["body_altered"] = good.replace(b"Line 7 of", b"Line 8 of")
good = sign(message(subject=b"hdr altered"), b"rsa2026", b"inst.test", rsa)
cases["header_altered"] = good.replace(b"Subject: hdr altered", b"Subject: hdr changed")
# l=: the signed length covers the body as signed; text appended after it
# leaves the signature valid
cases["length_appended"] = sign(message(subject=b"length"), b"rsa2026", b"inst.test", rsa,
                                length=True) + b"Appended after signing.\r\n"
cases["foreign"] = sign(message(subject=b"foreign"), b"sel", b"foreign.test", frsa)
# two signatures: the institution's over a foreign one (top first)
cases["two_sigs"] = sign(sign(message(subject=b"two"), b"sel", b"foreign.test", frsa),
                         b"rsa2026", b"inst.test", rsa)
# a bad one over a good one
cases["bad_then_good"] = sign(sign(message(subject=b"bad good"), b"rsa2026", b"inst.test", rsa),
                              b"wrongkey", b"inst.test", rsa)
cases["testing_key"] = sign(message(subject=b"testing"), b"testing", b"inst.test", rsa)
cases["s_email"] = sign(message(subject=b"semail"), b"semail", b"inst.test", rsa)
cases["s_other"] = sign(message(subject=b"sother"), b"sother", b"inst.test", rsa)
cases["revoked"] = sign(message(subject=b"revoked"), b"revoked", b"inst.test", rsa)
cases["garbage_key"] = sign(message(subject=b"garbage"), b"garbage", b"inst.test", rsa)
cases["no_key"] = sign(message(subject=b"nokey"), b"missing", b"inst.test", rsa)
# slow.inst.test is delegated to the harness's silent DNS server
cases["timeout_key"] = sign(message(subject=b"timeout", frm=b"alice@slow.inst.test"), b"sel", b"slow.inst.test", rsa)
# servfail.test: the harness's unbound answers SERVFAIL for it
cases["servfail_key"] = sign(message(subject=b"servfail", frm=b"alice@servfail.test"), b"sel", b"servfail.test", rsa)
cases["unsigned"] = message(subject=b"unsigned")
cases["outsider"] = message(subject=b"outsider", frm=b"carol@foreign.test")

def dnsfunc(name, timeout=5):
    rec = records.get(name.decode().rstrip("."))
    return rec.encode() if rec is not None else None

with open(os.path.join(out, "verdicts.txt"), "w") as vf:
    for name, msg in cases.items():
        with open(os.path.join(out, name + ".eml"), "wb") as f:
            f.write(msg)
        d = dkim.DKIM(msg, minkey=1024)
        nsig = sum(1 for h in d.headers if h[0].lower() == b"dkim-signature")
        verdicts = []
        for i in range(nsig):
            try:
                ok = d.verify(idx=i, dnsfunc=dnsfunc)
            except Exception:
                ok = False
            verdicts.append("pass" if ok else "fail")
        vf.write(name + "\t" + " ".join(verdicts) + "\n")
