package rivetpg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rivetgo/rivet/rivetdriver"
)

// ErrCommitUnknown is wrapped by Commit's error when the connection failed
// after the batch's COMMIT was sent and the outcome could not be learned
// from the server: the batch may or may not have been applied. The runtime
// treats it as a failed commit and restarts the actors from what is
// stored, so the store stays consistent either way.
var ErrCommitUnknown = errors.New("rivetpg: commit outcome unknown")

// actorRow is an actor's row as the batch's lock query read it, and as the
// batch's accepted commits leave it.
type actorRow struct {
	generation int64
	destroyed  bool
}

// effect is the net change of one actor's accepted commits in a batch.
type effect struct {
	id         []byte
	setState   bool
	state      []byte
	initialize bool
	destroy    bool
	kvClear    bool
	kv         map[string][]byte // nil value: delete
	kvOrder    []string
	alarms     map[string]*rivetdriver.Alarm // nil: delete
	alarmOrder []string
}

func (e *effect) putKV(k string, v []byte) {
	if _, ok := e.kv[k]; !ok {
		e.kvOrder = append(e.kvOrder, k)
	}
	e.kv[k] = v
}

func (e *effect) putAlarm(id string, a *rivetdriver.Alarm) {
	if _, ok := e.alarms[id]; !ok {
		e.alarmOrder = append(e.alarmOrder, id)
	}
	e.alarms[id] = a
}

// apply adds one accepted commit to the effect.
func (e *effect) apply(c *rivetdriver.Commit) {
	if c.Initialize {
		e.initialize = true
	}
	if c.Destroy {
		e.destroy, e.setState, e.state = true, false, nil
		e.kvClear, e.kv, e.kvOrder = true, map[string][]byte{}, nil
		e.alarms, e.alarmOrder = map[string]*rivetdriver.Alarm{}, nil
		return
	}
	if c.State != nil {
		e.setState, e.state = true, c.State
	}
	if c.KVClear {
		e.kvClear, e.kv, e.kvOrder = true, map[string][]byte{}, nil
	}
	for _, k := range c.KVDelete {
		e.putKV(string(k), nil)
	}
	for _, kv := range c.KVPut {
		v := kv.Value
		if v == nil {
			v = []byte{}
		}
		e.putKV(string(kv.Key), v)
	}
	for _, id := range c.AlarmDelete {
		e.putAlarm(id, nil)
	}
	for i := range c.AlarmPut {
		e.putAlarm(c.AlarmPut[i].ID, &c.AlarmPut[i])
	}
}

// Commit implements rivetdriver.Driver. The batch is one transaction in two
// round trips: the first begins it and locks the batch's actor rows (in id
// order, FOR NO KEY UPDATE) to read their generations; the driver then
// decides each commit's fate in batch order and sends the net writes of the
// accepted ones as a fixed number of multi-row statements (unnest arrays),
// followed by COMMIT. Commit returns once PostgreSQL acknowledged the
// COMMIT, which is durable as the server's synchronous_commit setting
// makes it (see the package doc).
func (d *Driver) Commit(ctx context.Context, batch []*rivetdriver.Commit) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	for _, c := range batch {
		c.Err = nil
	}
	if len(batch) == 0 {
		return nil
	}
	ctx, cancel := d.bound(ctx)
	defer cancel()
	err := d.commit(ctx, batch)
	if err != nil {
		for _, c := range batch {
			c.Err = nil
		}
	}
	return err
}

func (d *Driver) commit(ctx context.Context, batch []*rivetdriver.Commit) error {
	seen := make(map[string]bool, len(batch))
	var ids [][]byte
	for _, c := range batch {
		if !seen[c.ActorID] {
			seen[c.ActorID] = true
			ids = append(ids, []byte(c.ActorID))
		}
	}
	pc, err := d.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("rivetpg: commit batch of %d: connect to %s: %w", len(batch), d.where, err)
	}
	conn := pc.Conn()
	committing := false // COMMIT was sent
	var xid string
	fail := func(err error) error {
		err = fmt.Errorf("rivetpg: commit batch of %d: %w", len(batch), err)
		if !conn.IsClosed() && conn.PgConn().TxStatus() != 'I' {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_, _ = conn.Exec(rctx, "ROLLBACK")
			cancel()
		}
		broken := conn.IsClosed()
		if broken && ctx.Err() != nil {
			cancelBackend(conn)
		}
		pc.Release()
		if committing && broken {
			return d.resolve(ctx, xid, err)
		}
		return err
	}

	// Round trip 1: begin, learn the transaction id, lock the rows.
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(d.q.xactID)
	b.Queue(d.q.lockActors, ids)
	br := conn.SendBatch(ctx, b)
	rows := make(map[string]*actorRow, len(ids))
	err = func() error {
		if _, err := br.Exec(); err != nil {
			return err
		}
		if err := br.QueryRow().Scan(&xid); err != nil {
			return err
		}
		q, err := br.Query()
		if err != nil {
			return err
		}
		var id []byte
		var r actorRow
		_, err = pgx.ForEachRow(q, []any{&id, &r.generation, &r.destroyed}, func() error {
			row := r
			rows[string(id)] = &row
			return nil
		})
		return err
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}

	// Decide, in batch order, as the contract specifies.
	effects := map[string]*effect{}
	var order []*effect
	for _, c := range batch {
		r := rows[c.ActorID]
		switch {
		case r == nil:
			c.Err = fmt.Errorf("rivetpg: commit to actor %q: %w", c.ActorID, rivetdriver.ErrNotFound)
			continue
		case r.destroyed:
			c.Err = fmt.Errorf("rivetpg: commit to actor %q: %w", c.ActorID, rivetdriver.ErrDestroyed)
			continue
		case c.Generation != uint64(r.generation):
			c.Err = fmt.Errorf("rivetpg: commit to actor %q at generation %d, current generation is %d: %w",
				c.ActorID, c.Generation, r.generation, rivetdriver.ErrFenced)
			continue
		}
		e := effects[c.ActorID]
		if e == nil {
			e = &effect{id: []byte(c.ActorID), kv: map[string][]byte{}, alarms: map[string]*rivetdriver.Alarm{}}
			effects[c.ActorID] = e
			order = append(order, e)
		}
		e.apply(c)
		if c.Destroy {
			r.destroyed = true
		}
	}

	// Round trip 2: the writes and COMMIT.
	b = &pgx.Batch{}
	queueWrites(b, &d.q, order)
	if b.Len() == 0 {
		// Nothing to write: end the transaction without a WAL flush.
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			return fail(err)
		}
		pc.Release()
		return nil
	}
	b.Queue("COMMIT")
	committing = true
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return fail(err)
	}
	if conn.PgConn().TxStatus() != 'I' {
		// COMMIT of an aborted transaction reports ROLLBACK, not an error.
		return fail(errors.New("transaction did not commit"))
	}
	pc.Release()
	return nil
}

// queueWrites adds the statements that apply effects to b: at most nine,
// whatever the batch size, each given its rows as arrays.
func queueWrites(b *pgx.Batch, q *queries, effects []*effect) {
	var (
		kvClear, alarmClear         [][]byte
		kvDelA, kvDelK              [][]byte
		kvPutA, kvPutK, kvPutV      [][]byte
		alDelA, alDelID             [][]byte
		alA, alID, alAction, alArgs [][]byte
		alAt, alCreated             []time.Time
		alAtNs, alCreatedNs         []int16
		upID, upState               [][]byte
		upSet, upInit, upDestroy    []bool
	)
	for _, e := range effects {
		if e.kvClear {
			kvClear = append(kvClear, e.id)
		}
		if e.destroy {
			alarmClear = append(alarmClear, e.id)
		}
		for _, k := range e.kvOrder {
			v := e.kv[k]
			if v == nil {
				if !e.kvClear {
					kvDelA, kvDelK = append(kvDelA, e.id), append(kvDelK, []byte(k))
				}
				continue
			}
			kvPutA, kvPutK, kvPutV = append(kvPutA, e.id), append(kvPutK, []byte(k)), append(kvPutV, v)
		}
		for _, id := range e.alarmOrder {
			a := e.alarms[id]
			if a == nil {
				alDelA, alDelID = append(alDelA, e.id), append(alDelID, []byte(id))
				continue
			}
			at, atNs := splitTime(a.At)
			created, createdNs := splitTime(a.CreatedAt)
			alA, alID, alAction, alArgs = append(alA, e.id), append(alID, []byte(id)), append(alAction, []byte(a.Action)), append(alArgs, a.Args)
			alAt, alAtNs, alCreated, alCreatedNs = append(alAt, at), append(alAtNs, atNs), append(alCreated, created), append(alCreatedNs, createdNs)
		}
		if e.setState || e.initialize || e.destroy {
			state := e.state
			if e.setState && state == nil {
				state = []byte{}
			}
			upID, upState = append(upID, e.id), append(upState, state)
			upSet, upInit, upDestroy = append(upSet, e.setState), append(upInit, e.initialize), append(upDestroy, e.destroy)
		}
	}
	if len(kvClear) > 0 {
		b.Queue(q.kvClear, kvClear)
	}
	if len(kvDelA) > 0 {
		b.Queue(q.kvDelete, kvDelA, kvDelK)
	}
	if len(kvPutA) > 0 {
		b.Queue(q.kvPut, kvPutA, kvPutK, kvPutV)
	}
	if len(alarmClear) > 0 {
		b.Queue(q.alarmClear, alarmClear)
	}
	if len(alDelA) > 0 {
		b.Queue(q.alarmDelete, alDelA, alDelID)
	}
	if len(alA) > 0 {
		b.Queue(q.alarmPut, alA, alID, alAt, alAtNs, alAction, alArgs, alCreated, alCreatedNs)
	}
	if len(upID) > 0 {
		b.Queue(q.updateActors, upID, upSet, upState, upInit, upDestroy)
	}
}

// resolveTimeout bounds how long resolve tries to learn a transaction's
// outcome.
const resolveTimeout = 10 * time.Second

// resolve learns the outcome of a transaction whose connection failed after
// COMMIT was sent, from pg_xact_status on a fresh connection. It returns
// nil if the transaction committed (the commits' Err fields, decided before
// COMMIT, stand), cause if it aborted, and an error wrapping
// ErrCommitUnknown if the outcome cannot be learned within resolveTimeout.
// It runs even when ctx was canceled (a canceled context is one way to
// lose the connection), since the answer decides what the caller may
// acknowledge.
func (d *Driver) resolve(ctx context.Context, xid string, cause error) error {
	unknown := func(why error) error {
		return fmt.Errorf("%w: %v (after: %w)", ErrCommitUnknown, why, cause)
	}
	if xid == "" {
		return unknown(errors.New("the transaction id was never read"))
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resolveTimeout)
	defer cancel()
	wait := 5 * time.Millisecond
	for {
		var status *string
		conn, err := d.pool.Acquire(ctx)
		if err == nil {
			err = conn.QueryRow(ctx, d.q.xactStatus, xid).Scan(&status)
			conn.Release()
		}
		var pe *pgconn.PgError
		switch {
		case errors.As(err, &pe):
			return unknown(fmt.Errorf("pg_xact_status(%s): %w", xid, err))
		case err != nil:
			// The server is unreachable; keep trying.
		case status == nil:
			return unknown(fmt.Errorf("transaction %s is too old for pg_xact_status", xid))
		case *status == "committed":
			return nil
		case *status == "aborted":
			return cause
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("transaction %s still in progress", xid)
			}
			return unknown(err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}
