package rivetpg

import "strings"

// queries holds the driver's SQL with the schema name filled in.
type queries struct {
	createActor, idTaken, lookupActor, getActor, listActors string
	activate, isDestroyed, readState                        string

	kvGet                             string
	kvList, kvListReverse             string // bounded above by $3
	kvListOpen, kvListOpenReverse     string // no upper bound
	allAlarms, actorAlarms            string
	lockActors, xactID, xactStatus    string
	kvClear, kvDelete, kvPut          string
	alarmClear, alarmDelete, alarmPut string
	updateActors                      string
}

func newQueries(schema string) queries {
	s := func(q string) string { return strings.ReplaceAll(q, "{{s}}", schema) }
	const alarmCols = "actor_id, id, at, at_ns, action, args, created_at, created_at_ns"
	kvList := func(bounded bool, order string) string {
		q := "SELECT key, value FROM {{s}}.kv WHERE actor_id = $1 AND key >= $2"
		if bounded {
			q += " AND key < $3 ORDER BY key " + order + " LIMIT $4::bigint"
		} else {
			q += " ORDER BY key " + order + " LIMIT $3::bigint"
		}
		return s(q)
	}
	return queries{
		// ON CONFLICT DO NOTHING covers both unique indexes (id, live
		// key); CreateActor then tells them apart.
		createActor: s(`INSERT INTO {{s}}.actors (id, namespace, name, key, key_hash, input, created_at, created_at_ns, generation, initialized)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`),
		idTaken:     s("SELECT id FROM {{s}}.actors WHERE id = $1"),
		lookupActor: s("SELECT " + recordColumns + " FROM {{s}}.actors WHERE key_hash = $1 AND NOT destroyed AND namespace = $2 AND name = $3 AND key = $4"),
		getActor:    s("SELECT " + recordColumns + " FROM {{s}}.actors WHERE id = $1"),
		listActors:  s("SELECT " + recordColumns + " FROM {{s}}.actors WHERE true"), // ListActors adds the filters
		activate: s("UPDATE {{s}}.actors SET generation = generation + 1 WHERE id = $1 AND NOT destroyed RETURNING " +
			recordColumns + ", state"),
		isDestroyed: s("SELECT destroyed FROM {{s}}.actors WHERE id = $1"),
		readState:   s("SELECT destroyed, state FROM {{s}}.actors WHERE id = $1"),

		kvGet:             s("SELECT key, value FROM {{s}}.kv WHERE actor_id = $1 AND key = ANY($2::bytea[])"),
		kvList:            kvList(true, "ASC"),
		kvListReverse:     kvList(true, "DESC"),
		kvListOpen:        kvList(false, "ASC"),
		kvListOpenReverse: kvList(false, "DESC"),
		allAlarms:         s("SELECT " + alarmCols + " FROM {{s}}.alarms ORDER BY at, at_ns, id"),
		actorAlarms:       s("SELECT " + alarmCols + " FROM {{s}}.alarms WHERE actor_id = $1 ORDER BY at, at_ns, id"),

		// Rows are locked in id order, so two batches never deadlock.
		lockActors: s("SELECT id, generation, destroyed FROM {{s}}.actors WHERE id = ANY($1::bytea[]) ORDER BY id FOR NO KEY UPDATE"),
		xactID:     "SELECT pg_current_xact_id()::text",
		xactStatus: "SELECT pg_xact_status($1::text::xid8)",
		kvClear:    s("DELETE FROM {{s}}.kv WHERE actor_id = ANY($1::bytea[])"),
		kvDelete: s(`DELETE FROM {{s}}.kv k USING unnest($1::bytea[], $2::bytea[]) AS d(actor_id, key)
			WHERE k.actor_id = d.actor_id AND k.key = d.key`),
		kvPut: s(`INSERT INTO {{s}}.kv (actor_id, key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[])
			ON CONFLICT (actor_id, key) DO UPDATE SET value = excluded.value`),
		alarmClear: s("DELETE FROM {{s}}.alarms WHERE actor_id = ANY($1::bytea[])"),
		alarmDelete: s(`DELETE FROM {{s}}.alarms a USING unnest($1::bytea[], $2::bytea[]) AS d(actor_id, id)
			WHERE a.actor_id = d.actor_id AND a.id = d.id`),
		alarmPut: s(`INSERT INTO {{s}}.alarms (` + alarmCols + `)
			SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::timestamptz[], $4::int2[], $5::bytea[], $6::bytea[], $7::timestamptz[], $8::int2[])
			ON CONFLICT (actor_id, id) DO UPDATE SET at = excluded.at, at_ns = excluded.at_ns, action = excluded.action,
				args = excluded.args, created_at = excluded.created_at, created_at_ns = excluded.created_at_ns`),
		updateActors: s(`UPDATE {{s}}.actors a SET
				state = CASE WHEN u.destroy THEN NULL WHEN u.set_state THEN u.state ELSE a.state END,
				initialized = a.initialized OR u.init,
				destroyed = u.destroy
			FROM unnest($1::bytea[], $2::boolean[], $3::bytea[], $4::boolean[], $5::boolean[]) AS u(id, set_state, state, init, destroy)
			WHERE a.id = u.id`),
	}
}
