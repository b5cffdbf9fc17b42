/*  causal: live events in causal order (see causal.h).

    The ids passed on are kept as hashes in a ring, the last CAUSAL_RECENT,
    and indexed by a small open-addressing set (linear probing, at most half
    full) so that asking whether a cause passed costs a probe or two, not a
    scan of the ring, for every event. The held events are few and short
    lived: a plain array, oldest first.
*/
#include "causal.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define S_SLOTS (2 * CAUSAL_RECENT) /* the set over the ring: a power of two */

/*  An event waiting for its cause: its envelope's bytes. */
typedef struct {
    zframe_t *body;
    int lane;
    int64_t until; /* zclock_mono: then it is passed on, marked */
    char id[EDA_NAME_MAX + 1];
    char cause[EDA_NAME_MAX + 1];
} s_held_t;

/*  What one lane has sent: its epoch and the highest seq received in it. */
typedef struct {
    char epoch[EDA_NAME_MAX + 1];
    uint64_t received;
} s_lane_t;

struct causal {
    int nlanes;
    int hold_ms;
    causal_emit_fn *emit;
    void *arg;
    eda_decoder_t *decoder;
    s_lane_t *lanes;
    uint64_t recent[CAUSAL_RECENT]; /* hashes of the ids passed on, a ring; 0 empty */
    size_t recent_next;
    uint16_t slots[S_SLOTS]; /* 1 + an index into recent, or 0: empty */
    s_held_t held[CAUSAL_HELD];
    size_t nheld;
};

/* --- ids ----------------------------------------------------------------------- */

static uint64_t s_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a: ids are short, a hash is enough */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ? h : 1; /* 0 marks an empty slot */
}

/*  Whether `id` is an event id, "<16 hex>-<seq>": then it is in some
    service's log. Fills epoch and seq. */
static bool s_event_id(const char *id, char *epoch, uint64_t *seq)
{
    for (int i = 0; i < 16; i++)
        if (!isxdigit((unsigned char)id[i]))
            return false;
    if (id[16] != '-' || !isdigit((unsigned char)id[17]))
        return false;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(id + 17, &end, 10);
    if (errno || *end)
        return false;
    memcpy(epoch, id, 16);
    epoch[16] = '\0';
    *seq = n;
    return true;
}

/* --- the ids passed on: a ring, and a set over it -------------------------------- */

static size_t s_home(uint64_t h)
{
    return (size_t)(h ^ (h >> 32)) & (S_SLOTS - 1);
}

static bool s_recent(const causal_t *self, const char *id)
{
    uint64_t h = s_hash(id);
    for (size_t i = s_home(h); self->slots[i]; i = (i + 1) & (S_SLOTS - 1))
        if (self->recent[self->slots[i] - 1] == h)
            return true;
    return false;
}

/*  Takes ring entry `r` out of the set. Its slot is refilled by shifting
    back the entries after it that may sit there, so that no probe for them
    stops at a hole (linear probing needs no tombstones that way). */
static void s_unindex(causal_t *self, size_t r)
{
    size_t i = s_home(self->recent[r]);
    while (self->slots[i] != r + 1)
        i = (i + 1) & (S_SLOTS - 1);
    for (size_t j = i;;) {
        j = (j + 1) & (S_SLOTS - 1);
        if (!self->slots[j])
            break;
        size_t k = s_home(self->recent[self->slots[j] - 1]);
        /* The entry at j stays when its home lies cyclically in (i, j]. */
        if (i < j ? (i < k && k <= j) : (i < k || k <= j))
            continue;
        self->slots[i] = self->slots[j];
        i = j;
    }
    self->slots[i] = 0;
}

/*  Remembers `id` as passed on, forgetting the oldest past CAUSAL_RECENT. */
static void s_remember(causal_t *self, const char *id)
{
    size_t r = self->recent_next;
    if (self->recent[r])
        s_unindex(self, r);
    self->recent[r] = s_hash(id);
    size_t i = s_home(self->recent[r]);
    while (self->slots[i])
        i = (i + 1) & (S_SLOTS - 1);
    self->slots[i] = (uint16_t)(r + 1);
    self->recent_next = (r + 1) % CAUSAL_RECENT;
}

/* --- passing on ------------------------------------------------------------------ */

static void s_release(causal_t *self, zframe_t *body, int lane, const char *mark);

/*  Passes on the events held for `id`, now that it has passed. */
static void s_release_effects(causal_t *self, const char *id)
{
    for (size_t i = 0; i < self->nheld;) {
        if (!streq(self->held[i].cause, id)) {
            i++;
            continue;
        }
        s_held_t h = self->held[i];
        memmove(&self->held[i], &self->held[i + 1], (self->nheld - i - 1) * sizeof h);
        self->nheld--;
        s_release(self, h.body, h.lane, NULL); /* may take more out: rescan */
        zframe_destroy(&h.body);
        i = 0;
    }
}

/*  Passes one event on: emitted, remembered, and what waited for it
    follows. */
static void s_release(causal_t *self, zframe_t *body, int lane, const char *mark)
{
    eda_envelope_t env;
    if (eda_decode(self->decoder, zframe_data(body), zframe_size(body), &env, NULL, 0))
        return;
    self->emit(self->arg, lane, &env, eda_decoder_root(self->decoder), mark);
    /* env's strings are copies: the decodes of the effects leave them be. */
    s_remember(self, env.id);
    s_release_effects(self, env.id);
}

/*  Passes on the oldest held event, marked. */
static void s_give_up_oldest(causal_t *self)
{
    s_held_t h = self->held[0];
    memmove(&self->held[0], &self->held[1], (self->nheld - 1) * sizeof h);
    self->nheld--;
    s_release(self, h.body, h.lane, CAUSAL_MARK);
    zframe_destroy(&h.body);
}

static bool s_is_held(const causal_t *self, const char *id)
{
    for (size_t i = 0; i < self->nheld; i++)
        if (streq(self->held[i].id, id))
            return true;
    return false;
}

/*  Whether the event `id` (not passed on) may still come: held itself, of
    an epoch no lane has sent, or beyond what its lane has sent. */
static bool s_may_come(const causal_t *self, const char *id, const char *epoch,
                       uint64_t seq)
{
    if (s_is_held(self, id))
        return true;
    int known = -1;
    for (int i = 0; i < self->nlanes; i++)
        if (streq(self->lanes[i].epoch, epoch))
            known = i;
    return known < 0 || seq > self->lanes[known].received;
}

/*  Holds the event of `env` (takes *body) until its cause, or hold_ms. */
static void s_hold(causal_t *self, int lane, zframe_t **body, const eda_envelope_t *env)
{
    if (self->nheld == CAUSAL_HELD)
        s_give_up_oldest(self);
    s_held_t *h = &self->held[self->nheld++];
    h->body = *body;
    *body = NULL;
    h->lane = lane;
    h->until = zclock_mono() + self->hold_ms;
    snprintf(h->id, sizeof h->id, "%s", env->id);
    snprintf(h->cause, sizeof h->cause, "%s", env->causation_id);
}

/* --- causal ---------------------------------------------------------------------- */

causal_t *causal_new(int lanes, int hold_ms, causal_emit_fn *emit, void *arg)
{
    assert(lanes > 0 && emit);
    causal_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->nlanes = lanes;
    self->hold_ms = hold_ms;
    self->emit = emit;
    self->arg = arg;
    self->lanes = calloc((size_t)lanes, sizeof *self->lanes);
    self->decoder = eda_decoder_new();
    if (!self->lanes || !self->decoder)
        causal_destroy(&self);
    return self;
}

void causal_destroy(causal_t **self_p)
{
    causal_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nheld; i++)
        zframe_destroy(&self->held[i].body);
    eda_decoder_destroy(&self->decoder);
    free(self->lanes);
    free(self);
    *self_p = NULL;
}

void causal_offer(causal_t *self, int lane, zframe_t **body, const eda_envelope_t *env,
                  bool hold)
{
    assert(lane >= 0 && lane < self->nlanes);
    s_lane_t *l = &self->lanes[lane];
    if (!streq(env->epoch, l->epoch)) {
        snprintf(l->epoch, sizeof l->epoch, "%s", env->epoch);
        l->received = 0;
    }
    if (env->seq > l->received)
        l->received = env->seq;
    char epoch[EDA_NAME_MAX + 1];
    uint64_t seq;
    const char *mark = NULL;
    if (hold && s_event_id(env->causation_id, epoch, &seq) &&
        !s_recent(self, env->causation_id)) {
        if (s_may_come(self, env->causation_id, epoch, seq)) {
            s_hold(self, lane, body, env);
            return;
        }
        mark = CAUSAL_MARK; /* it passed before we looked, or was dropped */
    }
    s_release(self, *body, lane, mark);
    zframe_destroy(body);
}

int64_t causal_expire(causal_t *self, int64_t now)
{
    while (self->nheld && self->held[0].until <= now)
        s_give_up_oldest(self);
    return causal_next(self);
}

int64_t causal_next(const causal_t *self)
{
    return self->nheld ? self->held[0].until : INT64_MAX;
}
