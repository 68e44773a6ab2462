/*
 * wavry.relay._fastpath: the relay's FORWARD fast path in C (see docs/relay.md, "Native fast path").
 *
 * A FastPath object mirrors, per session, the two bound peers (address, lease expiry, soft and
 * hard byte budgets) that RelayCore owns, and owns the state FORWARD needs (replay window and
 * bandwidth window per sender, the session's last activity). It decides a FORWARD from a bound
 * peer exactly as RelayCore._forward does (same checks, same order, same counters) and sends it
 * byte-identical; everything else goes back to Python.
 *
 * drain(fd, now, budget, raw) reads the socket with recvmmsg (batches of BATCH) and sends the
 * forwards of each batch with sendmmsg. The first datagram of a batch that it cannot decide (and
 * every later one of that batch) is returned to Python as (bytes, addr) and the drain stops, so
 * Python sees them in arrival order after everything C decided before them.
 *
 * No third-party dependencies; Linux (recvmmsg/sendmmsg). Every table is bounded by the Python
 * side (max_sessions); the replay bitmap is at most 65536 bits per peer.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h> /* defines _GNU_SOURCE (recvmmsg, sendmmsg) */

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define HEADER_SIZE 20
#define MAX_DATAGRAM 1500
#define BUF_SIZE 2048
#define BATCH 64
#define MAX_WINDOW 65536

/* relay wire */
#define W_MAGIC 0x57
#define W_VERSION 1
#define W_FORWARD 0x10

enum {
    C_PACKETS_RX,
    C_BYTES_RX,
    C_PACKETS_FORWARDED,
    C_BYTES_FORWARDED,
    C_INVALID,
    C_NOT_ACTIVE,
    C_REPLAY,
    C_BANDWIDTH,
    C_SOFT,
    C_COUNT
};

typedef struct {
    int present;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    double expires;
    long long soft_bytes;
    long long hard_bytes;
    double bw_start;
    long long bw_bytes;
    int has_highest;
    uint64_t highest;
    uint64_t *bitmap;
} Peer;

typedef struct Sess {
    uint8_t sid[16];
    struct Sess *next;
    double last_activity;
    Peer peer[2]; /* 0 client, 1 server */
} Sess;

typedef struct {
    PyObject_HEAD
    Sess **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    uint64_t seed;
    uint64_t window; /* replay window size */
    size_t nwords;   /* bitmap words per peer */
    uint64_t nbits;
    unsigned long long counters[C_COUNT];
    int dirty;
    unsigned long long tx_dropped;
    /* receive/send buffers, allocated once */
    uint8_t *bufs;
    struct mmsghdr rmsgs[BATCH];
    struct iovec riov[BATCH];
    struct sockaddr_storage raddr[BATCH];
    struct mmsghdr smsgs[BATCH];
    struct iovec siov[BATCH];
} FastPath;

/* ---- CRC-16/KERMIT (reflected 0x1021, init 0) -------------------------------------------- */

static uint16_t crc_table[256];

static void crc_init(void) {
    for (int i = 0; i < 256; i++) {
        uint16_t c = (uint16_t)i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (uint16_t)((c >> 1) ^ 0x8408) : (uint16_t)(c >> 1);
        crc_table[i] = c;
    }
}

static uint16_t crc16_kermit(const uint8_t *p, size_t n) {
    uint16_t crc = 0;
    while (n--) crc = (uint16_t)((crc >> 8) ^ crc_table[(crc ^ *p++) & 0xFF]);
    return crc;
}

static inline uint64_t be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

static inline uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* ---- session table ----------------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static inline size_t sid_hash(const FastPath *self, const uint8_t *sid) {
    uint64_t a, b;
    memcpy(&a, sid, 8);
    memcpy(&b, sid + 8, 8);
    return (size_t)(mix64(a ^ self->seed) ^ mix64(b + 0x9e3779b97f4a7c15ULL));
}

static Sess *sess_find(const FastPath *self, const uint8_t *sid) {
    Sess *s = self->buckets[sid_hash(self, sid) & (self->nbuckets - 1)];
    while (s != NULL && memcmp(s->sid, sid, 16) != 0) s = s->next;
    return s;
}

static int table_grow(FastPath *self) {
    size_t n = self->nbuckets * 2;
    Sess **nb = PyMem_Calloc(n, sizeof(Sess *));
    if (nb == NULL) return -1;
    for (size_t i = 0; i < self->nbuckets; i++) {
        Sess *s = self->buckets[i];
        while (s != NULL) {
            Sess *next = s->next;
            size_t j = sid_hash(self, s->sid) & (n - 1);
            s->next = nb[j];
            nb[j] = s;
            s = next;
        }
    }
    PyMem_Free(self->buckets);
    self->buckets = nb;
    self->nbuckets = n;
    return 0;
}

static void sess_free(Sess *s) {
    PyMem_Free(s->peer[0].bitmap);
    PyMem_Free(s->peer[1].bitmap);
    PyMem_Free(s);
}

/* ---- addresses --------------------------------------------------------------------------- */

static int addr_from_tuple(PyObject *addr, struct sockaddr_storage *out, socklen_t *len) {
    if (!PyTuple_Check(addr) || PyTuple_GET_SIZE(addr) < 2) {
        PyErr_SetString(PyExc_ValueError, "address must be a (host, port, ...) tuple");
        return -1;
    }
    const char *host = PyUnicode_AsUTF8(PyTuple_GET_ITEM(addr, 0));
    if (host == NULL) return -1;
    long port = PyLong_AsLong(PyTuple_GET_ITEM(addr, 1));
    if (port == -1 && PyErr_Occurred()) return -1;
    if (port < 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "port out of range");
        return -1;
    }
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (PyTuple_GET_SIZE(addr) == 2 && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof(*v4);
        return 0;
    }
    if (PyTuple_GET_SIZE(addr) == 4 && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        unsigned long flow = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(addr, 2));
        if (flow == (unsigned long)-1 && PyErr_Occurred()) return -1;
        unsigned long scope = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(addr, 3));
        if (scope == (unsigned long)-1 && PyErr_Occurred()) return -1;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        v6->sin6_flowinfo = htonl((uint32_t)flow);
        v6->sin6_scope_id = (uint32_t)scope;
        *len = sizeof(*v6);
        return 0;
    }
    PyErr_SetString(PyExc_ValueError, "not a numeric IPv4 (host, port) or IPv6 4-tuple address");
    return -1;
}

/* The tuple uvloop hands to datagram_received: (host, port) or (host, port, flowinfo, scope). */
static PyObject *addr_to_tuple(const struct sockaddr *sa) {
    char host[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
        return Py_BuildValue("(si)", host, (int)ntohs(v4->sin_port));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
        return Py_BuildValue("(siIk)", host, (int)ntohs(v6->sin6_port),
                             (unsigned int)ntohl(v6->sin6_flowinfo),
                             (unsigned long)v6->sin6_scope_id);
    }
    Py_RETURN_NONE;
}

static inline int addr_eq(const Peer *p, const struct sockaddr *sa) {
    if (!p->present || p->addr.ss_family != sa->sa_family) return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&p->addr;
        const struct sockaddr_in *b = (const struct sockaddr_in *)sa;
        return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&p->addr;
        const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)sa;
        return a->sin6_port == b->sin6_port && a->sin6_flowinfo == b->sin6_flowinfo &&
               a->sin6_scope_id == b->sin6_scope_id &&
               memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0;
    }
    return 0;
}

/* ---- replay window (same semantics as wavry.rift.replay.ReplayWindow) ------------------- */

static inline int bit_get(const Peer *p, uint64_t i) { return (p->bitmap[i >> 6] >> (i & 63)) & 1; }

static inline int replay_check(const FastPath *self, const Peer *p, uint64_t pid) {
    if (!p->has_highest || pid > p->highest) return 1;
    uint64_t off = p->highest - pid;
    if (off >= self->window) return 0;
    return !bit_get(p, pid % self->nbits);
}

static void replay_update(const FastPath *self, Peer *p, uint64_t pid) {
    uint64_t nbits = self->nbits;
    if (!p->has_highest) {
        memset(p->bitmap, 0, self->nwords * 8);
        p->has_highest = 1;
        p->highest = pid;
    } else if (pid > p->highest) {
        uint64_t shift = pid - p->highest;
        if (shift >= nbits) {
            memset(p->bitmap, 0, self->nwords * 8);
        } else {
            uint64_t k = 0;
            while (k < shift) {
                uint64_t i = (p->highest + 1 + k) % nbits;
                if ((i & 63) == 0 && shift - k >= 64) {
                    p->bitmap[i >> 6] = 0;
                    k += 64;
                } else {
                    p->bitmap[i >> 6] &= ~(1ULL << (i & 63));
                    k += 1;
                }
            }
        }
        p->highest = pid;
    }
    uint64_t i = pid % nbits;
    p->bitmap[i >> 6] |= 1ULL << (i & 63);
}

/* ---- the FORWARD decision (RelayCore._forward) -------------------------------------------- */

/* 1 forward to *dest, 0 dropped (counted); the caller matched the sender to a bound peer. */
static int decide(FastPath *self, Sess *s, int from, const uint8_t *d, size_t n, double now,
                  Peer **dest) {
    unsigned long long *c = self->counters;
    Peer *snd = &s->peer[from];
    Peer *rcv = &s->peer[1 - from];
    self->dirty = 1;
    if (!rcv->present || now >= snd->expires || now >= rcv->expires) {
        c[C_NOT_ACTIVE]++;
        return 0;
    }
    uint64_t pid;
    if (n > HEADER_SIZE + 1 && d[HEADER_SIZE] == 0x52 && d[HEADER_SIZE + 1] == 0x49) {
        const uint8_t *h = d + HEADER_SIZE;
        size_t hn = n - HEADER_SIZE;
        if (hn > 30) hn = 30;
        if (hn < 18 || h[2] != 0 || h[3] != 1) goto invalid;
        if (hn >= 30 && h[4] == 0 && h[5] == 0 && h[6] == 0 && h[7] == 0) {
            if (crc16_kermit(h, 28) != (uint16_t)((h[28] << 8) | h[29])) goto invalid;
            pid = be64(h + 20);
        } else {
            if (crc16_kermit(h, 16) != (uint16_t)((h[16] << 8) | h[17])) goto invalid;
            if (be32(h + 4) == 0) goto invalid;
            pid = be64(h + 8);
        }
    } else if (n >= HEADER_SIZE + 8) {
        pid = be64(d + HEADER_SIZE);
    } else {
        goto invalid;
    }
    if (pid != 0 && !replay_check(self, snd, pid)) {
        c[C_REPLAY]++;
        return 0;
    }
    if (now - snd->bw_start >= 1.0) {
        snd->bw_start = now;
        snd->bw_bytes = 0;
    }
    long long used = snd->bw_bytes + (long long)n;
    if (used > snd->hard_bytes) {
        c[C_BANDWIDTH]++;
        return 0;
    }
    if (used > snd->soft_bytes) c[C_SOFT]++;
    snd->bw_bytes = used;
    if (pid != 0) replay_update(self, snd, pid);
    s->last_activity = now;
    c[C_PACKETS_FORWARDED]++;
    c[C_BYTES_FORWARDED] += n;
    *dest = rcv;
    return 1;
invalid:
    c[C_INVALID]++;
    return 0;
}

/* The bound peer (0/1) of the session this FORWARD names that sent it, or -1. */
static inline int match(const FastPath *self, const uint8_t *d, const struct sockaddr *sa,
                        Sess **out) {
    Sess *s = sess_find(self, d + 4);
    if (s == NULL) return -1;
    *out = s;
    if (addr_eq(&s->peer[0], sa)) return 0;
    if (addr_eq(&s->peer[1], sa)) return 1;
    return -1;
}

static inline int is_forward(const uint8_t *d, size_t n) {
    return n >= HEADER_SIZE && n <= MAX_DATAGRAM && d[0] == W_MAGIC && d[1] == W_VERSION &&
           d[2] == W_FORWARD && d[3] == 0;
}

/* ---- the type ---------------------------------------------------------------------------- */

static int FastPath_init(FastPath *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"replay_window", NULL};
    long window = 1024;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|l", kwlist, &window)) return -1;
    if (window < 1 || window > MAX_WINDOW) {
        PyErr_Format(PyExc_ValueError, "replay_window must be in 1..%d", MAX_WINDOW);
        return -1;
    }
    if (self->buckets != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "FastPath is already initialised");
        return -1;
    }
    self->window = (uint64_t)window;
    self->nwords = ((size_t)window + 63) / 64;
    self->nbits = (uint64_t)self->nwords * 64;
    self->nbuckets = 64;
    self->buckets = PyMem_Calloc(self->nbuckets, sizeof(Sess *));
    self->bufs = PyMem_Malloc((size_t)BATCH * BUF_SIZE);
    if (self->buckets == NULL || self->bufs == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    uint64_t seed = (uint64_t)(uintptr_t)self;
    PyObject *os = PyImport_ImportModule("os");
    if (os != NULL) {
        PyObject *rnd = PyObject_CallMethod(os, "urandom", "i", 8);
        if (rnd != NULL && PyBytes_Check(rnd) && PyBytes_GET_SIZE(rnd) == 8)
            memcpy(&seed, PyBytes_AS_STRING(rnd), 8);
        Py_XDECREF(rnd);
        Py_DECREF(os);
    }
    PyErr_Clear();
    self->seed = seed;
    return 0;
}

static void FastPath_dealloc(FastPath *self) {
    if (self->buckets != NULL) {
        for (size_t i = 0; i < self->nbuckets; i++) {
            Sess *s = self->buckets[i];
            while (s != NULL) {
                Sess *next = s->next;
                sess_free(s);
                s = next;
            }
        }
        PyMem_Free(self->buckets);
    }
    PyMem_Free(self->bufs);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int get_sid(PyObject *obj, const uint8_t **sid) {
    if (!PyBytes_Check(obj) || PyBytes_GET_SIZE(obj) != 16) {
        PyErr_SetString(PyExc_ValueError, "session id must be 16 bytes");
        return -1;
    }
    *sid = (const uint8_t *)PyBytes_AS_STRING(obj);
    return 0;
}

static int ready(FastPath *self) {
    if (self->buckets == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "FastPath is not initialised");
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(set_peer_doc,
             "set_peer(sid, role, addr, expires, soft_bytes, hard_bytes)\n\n"
             "Mirror a bound peer (role 0 client, 1 server) after a LEASE_ACK. A peer that exists "
             "keeps its replay and bandwidth windows (a NAT rebind or a renew).");

static PyObject *FastPath_set_peer(FastPath *self, PyObject *args) {
    PyObject *sid_obj, *addr;
    int role;
    double expires;
    long long soft, hard;
    const uint8_t *sid;
    if (!ready(self)) return NULL;
    if (!PyArg_ParseTuple(args, "OiOdLL", &sid_obj, &role, &addr, &expires, &soft, &hard))
        return NULL;
    if (get_sid(sid_obj, &sid) < 0) return NULL;
    if (role != 0 && role != 1) {
        PyErr_SetString(PyExc_ValueError, "role must be 0 (client) or 1 (server)");
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t len;
    if (addr_from_tuple(addr, &ss, &len) < 0) return NULL;
    Sess *s = sess_find(self, sid);
    if (s == NULL) {
        if (self->count >= self->nbuckets && table_grow(self) < 0) return PyErr_NoMemory();
        s = PyMem_Calloc(1, sizeof(Sess));
        if (s == NULL) return PyErr_NoMemory();
        memcpy(s->sid, sid, 16);
        s->last_activity = -INFINITY;
        size_t j = sid_hash(self, sid) & (self->nbuckets - 1);
        s->next = self->buckets[j];
        self->buckets[j] = s;
        self->count++;
    }
    Peer *p = &s->peer[role];
    if (!p->present) {
        p->bitmap = PyMem_Calloc(self->nwords, 8);
        if (p->bitmap == NULL) return PyErr_NoMemory();
        p->present = 1;
        p->bw_start = -INFINITY;
        p->bw_bytes = 0;
        p->has_highest = 0;
    }
    p->addr = ss;
    p->addrlen = len;
    p->expires = expires;
    p->soft_bytes = soft;
    p->hard_bytes = hard;
    Py_RETURN_NONE;
}

static PyObject *FastPath_remove_session(FastPath *self, PyObject *arg) {
    const uint8_t *sid;
    if (!ready(self) || get_sid(arg, &sid) < 0) return NULL;
    Sess **link = &self->buckets[sid_hash(self, sid) & (self->nbuckets - 1)];
    while (*link != NULL) {
        if (memcmp((*link)->sid, sid, 16) == 0) {
            Sess *s = *link;
            *link = s->next;
            sess_free(s);
            self->count--;
            Py_RETURN_TRUE;
        }
        link = &(*link)->next;
    }
    Py_RETURN_FALSE;
}

static PyObject *FastPath_last_activity(FastPath *self, PyObject *arg) {
    const uint8_t *sid;
    if (!ready(self) || get_sid(arg, &sid) < 0) return NULL;
    Sess *s = sess_find(self, sid);
    if (s == NULL) Py_RETURN_NONE;
    return PyFloat_FromDouble(s->last_activity);
}

PyDoc_STRVAR(take_counters_doc,
             "take_counters() -> tuple | None\n\n"
             "Counter increments since the last call (COUNTER_NAMES order), or None if none.");

static PyObject *FastPath_take_counters(FastPath *self, PyObject *Py_UNUSED(ignored)) {
    if (!self->dirty) Py_RETURN_NONE;
    PyObject *t = PyTuple_New(C_COUNT);
    if (t == NULL) return NULL;
    for (int i = 0; i < C_COUNT; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(self->counters[i]);
        if (v == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, v);
        self->counters[i] = 0;
    }
    self->dirty = 0;
    return t;
}

PyDoc_STRVAR(forward_one_doc,
             "forward_one(data, addr, now) -> addr | None | False\n\n"
             "Decide one FORWARD datagram (already counted as received by the caller): the "
             "receiver's address to send it to, None when dropped (counted here), False when it is "
             "not a FORWARD from a peer bound here.");

static PyObject *FastPath_forward_one(FastPath *self, PyObject *args) {
    Py_buffer buf;
    PyObject *addr;
    double now;
    if (!ready(self)) return NULL;
    if (!PyArg_ParseTuple(args, "y*Od", &buf, &addr, &now)) return NULL;
    struct sockaddr_storage ss;
    socklen_t len;
    PyObject *res = NULL;
    const uint8_t *d = buf.buf;
    size_t n = (size_t)buf.len;
    if (!is_forward(d, n)) {
        res = Py_NewRef(Py_False);
        goto out;
    }
    if (addr_from_tuple(addr, &ss, &len) < 0) {
        /* an address C cannot represent is never bound here */
        PyErr_Clear();
        res = Py_NewRef(Py_False);
        goto out;
    }
    Sess *s;
    int from = match(self, d, (struct sockaddr *)&ss, &s);
    if (from < 0) {
        res = Py_NewRef(Py_False);
        goto out;
    }
    Peer *dest;
    if (decide(self, s, from, d, n, now, &dest))
        res = addr_to_tuple((struct sockaddr *)&dest->addr);
    else
        res = Py_NewRef(Py_None);
out:
    PyBuffer_Release(&buf);
    return res;
}

static void send_batch(FastPath *self, int fd, unsigned int cnt) {
    unsigned int off = 0;
    while (off < cnt) {
        int sent = sendmmsg(fd, self->smsgs + off, cnt - off, MSG_DONTWAIT);
        if (sent < 0 && errno == EINTR) continue;
        if (sent <= 0) {
            /* EAGAIN (the kernel's send buffer is full) or a per-destination error: drop one */
            self->tx_dropped++;
            off++;
        } else {
            off += (unsigned int)sent;
        }
    }
}

PyDoc_STRVAR(drain_doc,
             "drain(fd, now, budget, raw) -> list[(bytes, addr)]\n\n"
             "Read up to budget batches of datagrams from the non-blocking UDP socket fd. FORWARDs "
             "from bound peers are decided and sent here; the first datagram of a batch that is "
             "not (and all after it in that batch) are returned, in order, and the drain stops. "
             "raw=True returns every datagram (the relay is paused). Oversize datagrams are "
             "counted invalid here.");

static PyObject *FastPath_drain(FastPath *self, PyObject *args) {
    int fd, budget, raw;
    double now;
    if (!ready(self)) return NULL;
    if (!PyArg_ParseTuple(args, "idip", &fd, &now, &budget, &raw)) return NULL;
    PyObject *slow = PyList_New(0);
    if (slow == NULL) return NULL;
    unsigned long long *c = self->counters;
    for (int b = 0; b < budget; b++) {
        for (int i = 0; i < BATCH; i++) {
            self->riov[i].iov_base = self->bufs + (size_t)i * BUF_SIZE;
            self->riov[i].iov_len = BUF_SIZE;
            memset(&self->rmsgs[i].msg_hdr, 0, sizeof(struct msghdr));
            self->rmsgs[i].msg_hdr.msg_iov = &self->riov[i];
            self->rmsgs[i].msg_hdr.msg_iovlen = 1;
            self->rmsgs[i].msg_hdr.msg_name = &self->raddr[i];
            self->rmsgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        }
        int got = recvmmsg(fd, self->rmsgs, BATCH, MSG_DONTWAIT | MSG_TRUNC, NULL);
        if (got < 0) {
            if (errno == EINTR) continue;
            break; /* EAGAIN: drained; any other error: the loop calls again */
        }
        if (got == 0) break;
        unsigned int nsend = 0;
        int slowmode = raw;
        for (int i = 0; i < got; i++) {
            const uint8_t *d = self->bufs + (size_t)i * BUF_SIZE;
            size_t n = self->rmsgs[i].msg_len;
            const struct sockaddr *sa = (const struct sockaddr *)&self->raddr[i];
            if (n > MAX_DATAGRAM || (self->rmsgs[i].msg_hdr.msg_flags & MSG_TRUNC)) {
                /* RelayCore counts these invalid before anything else: so do we */
                c[C_PACKETS_RX]++;
                c[C_BYTES_RX] += n;
                c[C_INVALID]++;
                self->dirty = 1;
                continue;
            }
            if (!slowmode && is_forward(d, n)) {
                Sess *s;
                int from = match(self, d, sa, &s);
                if (from >= 0) {
                    Peer *dest;
                    c[C_PACKETS_RX]++;
                    c[C_BYTES_RX] += n;
                    if (decide(self, s, from, d, n, now, &dest)) {
                        self->siov[nsend].iov_base = (void *)d;
                        self->siov[nsend].iov_len = n;
                        struct msghdr *h = &self->smsgs[nsend].msg_hdr;
                        memset(h, 0, sizeof(*h));
                        h->msg_iov = &self->siov[nsend];
                        h->msg_iovlen = 1;
                        h->msg_name = &dest->addr;
                        h->msg_namelen = dest->addrlen;
                        nsend++;
                    }
                    continue;
                }
            }
            slowmode = 1;
            PyObject *data = PyBytes_FromStringAndSize((const char *)d, (Py_ssize_t)n);
            PyObject *addr = data ? addr_to_tuple(sa) : NULL;
            PyObject *item = addr ? PyTuple_Pack(2, data, addr) : NULL;
            Py_XDECREF(data);
            Py_XDECREF(addr);
            if (item == NULL || PyList_Append(slow, item) < 0) {
                Py_XDECREF(item);
                if (nsend) send_batch(self, fd, nsend);
                Py_DECREF(slow);
                return NULL;
            }
            Py_DECREF(item);
        }
        if (nsend) send_batch(self, fd, nsend);
        if (slowmode || got < BATCH) break;
    }
    return slow;
}

static PyObject *FastPath_get_sessions(FastPath *self, void *Py_UNUSED(closure)) {
    return PyLong_FromSize_t(self->count);
}

static PyObject *FastPath_get_tx_dropped(FastPath *self, void *Py_UNUSED(closure)) {
    return PyLong_FromUnsignedLongLong(self->tx_dropped);
}

static PyMethodDef FastPath_methods[] = {
    {"set_peer", (PyCFunction)FastPath_set_peer, METH_VARARGS, set_peer_doc},
    {"remove_session", (PyCFunction)FastPath_remove_session, METH_O,
     "remove_session(sid) -> bool: forget a session (cleanup)."},
    {"last_activity", (PyCFunction)FastPath_last_activity, METH_O,
     "last_activity(sid) -> float | None: monotonic time of the session's last forward here."},
    {"take_counters", (PyCFunction)FastPath_take_counters, METH_NOARGS, take_counters_doc},
    {"forward_one", (PyCFunction)FastPath_forward_one, METH_VARARGS, forward_one_doc},
    {"drain", (PyCFunction)FastPath_drain, METH_VARARGS, drain_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef FastPath_getset[] = {
    {"sessions", (getter)FastPath_get_sessions, NULL, "sessions mirrored here", NULL},
    {"tx_dropped", (getter)FastPath_get_tx_dropped, NULL,
     "forwards the kernel did not take (send buffer full)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FastPathType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "wavry.relay._fastpath.FastPath",
    .tp_basicsize = sizeof(FastPath),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The relay's FORWARD fast path (see the module source).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)FastPath_init,
    .tp_dealloc = (destructor)FastPath_dealloc,
    .tp_methods = FastPath_methods,
    .tp_getset = FastPath_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "wavry.relay._fastpath", "Relay FORWARD fast path (C).", -1, NULL,
};

PyMODINIT_FUNC PyInit__fastpath(void) {
    crc_init();
    if (PyType_Ready(&FastPathType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    PyObject *names = Py_BuildValue(
        "(sssssssss)", "packets_rx", "bytes_rx", "packets_forwarded", "bytes_forwarded",
        "invalid_packets", "session_not_active_packets", "replay_dropped_packets",
        "bandwidth_dropped_packets", "soft_limit_exceeded_packets");
    if (names == NULL || PyModule_AddObject(m, "COUNTER_NAMES", names) < 0) {
        Py_XDECREF(names);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&FastPathType);
    if (PyModule_AddObject(m, "FastPath", (PyObject *)&FastPathType) < 0) {
        Py_DECREF(&FastPathType);
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "BATCH", BATCH);
    return m;
}
